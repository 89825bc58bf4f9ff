"""The rules Google applies once a request has parsed: contents, roles, thinking, modalities.

Messages are Google's own, as quoted in public bug reports: "Please use a valid role: user,
model.", "* GenerateContentRequest.contents: contents is not specified", "Budget 0 is invalid.
This model only works in thinking mode.", "Thinking level is not supported for this model.", and
Gemini 3's "Function call is missing a thought_signature in functionCall parts. ...". Signatures
the simulator issues carry a private prefix, so a forged or mangled one is "Corrupted".
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gemini_gateway.simulator import catalog
from gemini_gateway.simulator.google_errors import GoogleError

SIGNATURE_PREFIX = b"simsig:"
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
# Values Google documents as accepted in place of a real signature (thought-signatures guide).
DUMMY_SIGNATURES = frozenset(
    {"context_engineering_is_the_way_to_go", "skip_thought_signature_validator"}
)


def check_generate_request(body: dict[str, Any], model: str) -> None:
    """The rules Google applies after parsing: contents, roles, parts, thinking, modalities."""
    problems = list(_content_problems(body.get("contents") or [], "GenerateContentRequest"))
    if problems:
        raise GoogleError(400, "".join(problems))
    for content in body["contents"]:
        role = content.get("role") or ""
        if role not in ("", "user", "model"):
            raise GoogleError(400, "Please use a valid role: user, model.")
    _check_function_names(body.get("tools") or [])
    config = body.get("generationConfig") or {}
    _check_thinking(config.get("thinkingConfig"), model)
    _check_modalities(config.get("responseModalities"), model)
    if catalog.is_gemini3(model):
        _check_signatures(body["contents"])


def check_count_request(body: dict[str, Any]) -> None:
    inner = body.get("generateContentRequest")
    if inner is not None:
        problems = list(
            _content_problems(
                inner.get("contents") or [], "CountTokensRequest.generate_content_request"
            )
        )
    else:
        problems = list(_content_problems(body.get("contents") or [], "CountTokensRequest"))
    if problems:
        raise GoogleError(400, "".join(problems))


def _content_problems(contents: list[dict[str, Any]], where: str) -> list[str]:
    if not contents:
        return [f"* {where}.contents: contents is not specified\n"]
    problems = []
    for i, content in enumerate(contents):
        parts = content.get("parts") or []
        if not parts:
            problems.append(f"* {where}.contents[{i}].parts: contents.parts must not be empty.\n")
        for j, part in enumerate(parts):
            if not _has_data(part):
                problems.append(
                    f"* {where}.contents[{i}].parts[{j}].data: required oneof field "
                    "'data' must have one initialized field\n"
                )
    return problems


_DATA_FIELDS = (
    "text",
    "inlineData",
    "functionCall",
    "functionResponse",
    "fileData",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
)


def _has_data(part: dict[str, Any]) -> bool:
    return any(name in part for name in _DATA_FIELDS)


def _check_function_names(tools: list[dict[str, Any]]) -> None:
    for t, tool in enumerate(tools):
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            if not _FUNCTION_NAME.fullmatch(str(declaration.get("name") or "")):
                raise GoogleError(
                    400,
                    f"* GenerateContentRequest.tools[{t}].function_declarations[{d}].name: "
                    "Invalid function name. Must start with a letter or an underscore. Must be "
                    "alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes "
                    "(-), with a maximum length of 64.\n",
                )


def _check_thinking(thinking: dict[str, Any] | None, model: str) -> None:
    if not thinking:
        return
    level = thinking.get("thinkingLevel")
    budget = thinking.get("thinkingBudget")
    if level is not None and budget is not None:
        raise GoogleError(400, "You can only set only one of thinking budget and thinking level.")
    if level is not None and not catalog.is_gemini3(model):
        raise GoogleError(400, "Thinking level is not supported for this model.")
    if level == "MINIMAL" and catalog.is_gemini3(model) and "pro" in model:
        raise GoogleError(400, "Thinking level MINIMAL is not supported for this model.")
    if budget == 0 and catalog.requires_thinking(model):
        raise GoogleError(400, "Budget 0 is invalid. This model only works in thinking mode.")


def _check_modalities(modalities: list[str] | None, model: str) -> None:
    wanted = set(modalities or [])
    if catalog.is_tts(model):
        bad = wanted != {"AUDIO"}
    elif "AUDIO" in wanted:
        bad = True
    elif model.startswith("gemini-2.0") and catalog.is_image_model(model):
        bad = wanted != {"TEXT", "IMAGE"}  # 2.0 image generation needs both, in any order
    elif "IMAGE" in wanted:
        bad = not catalog.is_image_model(model)
    else:
        bad = False
    if bad:
        asked = ", ".join(m.lower() for m in (modalities or ["TEXT"]))
        raise GoogleError(400, f"Model does not support the requested response modalities: {asked}")


def _check_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3: each model step of the current turn must sign its first function call."""
    turn_start = 0
    for i, content in enumerate(contents):
        parts = content.get("parts") or []
        if content.get("role", "user") != "model" and any(
            "functionResponse" not in p for p in parts
        ):
            turn_start = i
    for i in range(turn_start, len(contents)):
        content = contents[i]
        if content.get("role") != "model":
            continue
        calls = [p for p in content.get("parts") or [] if "functionCall" in p]
        if not calls:
            continue
        first = calls[0]
        signature = first.get("thoughtSignature")
        if not signature:
            name = first["functionCall"].get("name", "")
            raise GoogleError(
                400,
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead to "
                f"degraded model performance. Additional data, function call `default_api:{name}`"
                f" , position {i + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
            )
        for part in content.get("parts") or []:
            if part.get("thoughtSignature") and not signature_is_ours(part["thoughtSignature"]):
                raise GoogleError(400, "Corrupted thought signature.")


def make_signature(seed: bytes) -> str:
    return base64.b64encode(SIGNATURE_PREFIX + seed).decode()


def signature_is_ours(signature: str) -> bool:
    if signature in DUMMY_SIGNATURES:
        return True
    padded = signature + "=" * (-len(signature) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(SIGNATURE_PREFIX)
