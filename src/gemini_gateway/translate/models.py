"""Model names: the client's name → the upstream Gemini model, and what each family can do.

Names pass through to Gemini (any official model works); the gateway adds suffixes of its own:

    <model>-thinking            ask for thought summaries and show them (includeThoughts)
    <model>-thinking-<budget>   the same, with thinkingBudget = <budget>
    <model>-nothinking          thinkingBudget 0, only where the model can turn thinking off

Family rules follow Google's thinking guide (ai.google.dev/gemini-api/docs/thinking): 2.5 models
take a token budget and only 2.5 Flash / Flash-Lite accept 0; Gemini 3 models always think and
take a ``thinkingLevel`` (3 Pro: low/high; 3.1 Pro adds medium; Flash models: minimal to high).
"""

from __future__ import annotations

import re

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.call import ModelSpec
from gemini_gateway.translate.types import ThinkingConfig

# The list on the product page (shared/spec/gemini-platform.md), in its order.
PRODUCT_MODELS: tuple[str, ...] = (
    "gemini-2.0-flash",
    "gemini-2.0-flash-preview-image-generation",
    "gemini-2.5-flash-preview-05-20",
    "gemini-2.5-flash-preview-tts",
    "gemini-2.5-pro-preview-tts",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-thinking",
    "gemini-2.5-pro-thinking",
)

_GEMINI3 = re.compile(r"^gemini-3(?:\.\d+)?-")
_BUDGET_SUFFIX = re.compile(r"^(?P<base>.+)-thinking-(?P<budget>\d+)$")
# Aliases Google moves between releases; they point at thinking models.
_THINKING_ALIASES = ("gemini-flash-latest", "gemini-flash-lite-latest", "gemini-pro-latest")

# OpenAI reasoning_effort → Gemini 2.5 thinkingBudget, per Google's OpenAI-compatibility page
# (ai.google.dev/gemini-api/docs/openai#thinking): low 1K, medium 8K, high 24K, none off.
# "minimal" shares low's budget; "xhigh"/"max" (newer OpenAI values) cap at high's.
EFFORT_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
_LEVEL_ORDER = ("minimal", "low", "medium", "high")


def bare_model(name: str) -> str:
    """The model id without the ``models/`` resource prefix."""
    return name.removeprefix("models/")


def is_gemini3(model: str) -> bool:
    return bool(_GEMINI3.match(bare_model(model)))


def is_gemini25(model: str) -> bool:
    return bare_model(model).startswith("gemini-2.5-")


def is_imagen(model: str) -> bool:
    return bare_model(model).startswith("imagen")


def is_image_model(model: str) -> bool:
    """Gemini models that answer with images (``...-image...``), not Imagen (a predict API)."""
    return "image" in bare_model(model) and not is_imagen(model)


def is_tts_model(model: str) -> bool:
    return bare_model(model).endswith("-tts")


def supports_thinking(model: str) -> bool:
    """Whether the model accepts a thinkingConfig (2.5 and 3 text models, thinking aliases)."""
    name = bare_model(model)
    if is_tts_model(name) or is_imagen(name):
        return False
    if is_gemini25(name):
        return not is_image_model(name)  # gemini-2.5-flash-image does not think
    return is_gemini3(name) or name in _THINKING_ALIASES or "-thinking" in name


def can_disable_thinking(model: str) -> bool:
    """thinkingBudget 0 is accepted by 2.5 Flash and Flash-Lite; 2.5 Pro and Gemini 3 refuse it."""
    name = bare_model(model)
    return supports_thinking(name) and is_gemini25(name) and "-pro" not in name


def thinking_budget_range(model: str) -> tuple[int, int] | None:
    """The thinkingBudget range Google documents for a 2.5 model (-1, dynamic, is always taken;
    0 where thinking can be turned off); None where no range is known (Gemini 3 takes levels)."""
    name = bare_model(model)
    if not is_gemini25(name) or not supports_thinking(name):
        return None
    if "-pro" in name:
        return (128, 32768)
    if "flash-lite" in name:
        return (512, 24576)
    return (1, 24576)


def check_thinking_budget(model: str, budget: int, param: str) -> None:
    """A 400 naming the range for a budget the model would refuse, instead of Google's terse one."""
    bounds = thinking_budget_range(model)
    if bounds is None or budget == -1 or (budget == 0 and can_disable_thinking(model)):
        return
    low, high = bounds
    if not low <= budget <= high:
        off = ", 0 (off)" if can_disable_thinking(model) else ""
        raise InvalidRequest(
            f"thinking budget {budget} is out of range for {bare_model(model)}: use {low} to "
            f"{high}, -1 (dynamic){off}",
            param=param,
        )


def thinking_levels(model: str) -> tuple[str, ...]:
    """The thinkingLevel values a Gemini 3 model takes (lower case); () for other models."""
    name = bare_model(model)
    if not is_gemini3(name):
        return ()
    if name.startswith("gemini-3-pro"):
        return ("low", "high")
    if "-pro" in name:
        return ("low", "medium", "high")
    return _LEVEL_ORDER


def thinking_for_effort(model: str, effort: str) -> ThinkingConfig:
    """OpenAI ``reasoning_effort`` → thinkingConfig for this model ({} where it cannot think).

    Gemini 3 gets the nearest level the model takes, rounding up; 2.5 gets a budget. ``none`` on a
    model that always thinks is a 400, as Google's compatibility layer answers.
    """
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequest(
            f"reasoning_effort must be one of {', '.join(EFFORT_BUDGETS)}",
            param="reasoning_effort",
        )
    if not supports_thinking(model):
        return {}  # nothing to tune: the model does not think
    if effort == "none":
        if not can_disable_thinking(model):
            raise InvalidRequest(
                f"reasoning_effort 'none' is not supported: {bare_model(model)} cannot turn "
                "thinking off",
                param="reasoning_effort",
            )
        return {"thinkingBudget": 0}
    levels = thinking_levels(model)
    if levels:
        wanted = "high" if effort in ("xhigh", "max") else effort
        rank = _LEVEL_ORDER.index(wanted)
        level = next((lv for lv in levels if _LEVEL_ORDER.index(lv) >= rank), levels[-1])
        return {"thinkingLevel": level.upper()}
    return {"thinkingBudget": EFFORT_BUDGETS[effort]}


def parse_model(name: object) -> ModelSpec:
    """Split a client's model name into the upstream model and its thinking suffix."""
    if not isinstance(name, str) or not (base := bare_model(name.strip())):
        raise InvalidRequest("model must be a non-empty string", param="model")
    match = _BUDGET_SUFFIX.match(base)
    if match:
        upstream = match["base"]
        _require_thinking(upstream, name)
        budget = int(match["budget"])
        check_thinking_budget(upstream, budget, "model")
        return ModelSpec(name, upstream, include_thoughts=True, thinking_budget=budget)
    if base.endswith("-nothinking"):
        upstream = base.removesuffix("-nothinking")
        if not supports_thinking(upstream):
            return ModelSpec(name, upstream)  # it never thinks: nothing to turn off
        if not can_disable_thinking(upstream):
            raise InvalidRequest(
                f"{upstream} cannot turn thinking off; use {upstream} without -nothinking",
                param="model",
            )
        return ModelSpec(name, upstream, thinking_budget=0)
    if base.endswith("-thinking"):
        upstream = base.removesuffix("-thinking")
        _require_thinking(upstream, name)
        return ModelSpec(name, upstream, include_thoughts=True)
    return ModelSpec(name, base)


def _require_thinking(upstream: str, requested: str) -> None:
    if not supports_thinking(upstream):
        raise InvalidRequest(
            f"{requested}: {upstream} is not a thinking model, so it has no -thinking variant",
            param="model",
        )
