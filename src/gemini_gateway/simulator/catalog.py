"""The simulator's model list and the family rules that decide how each model behaves.

Entries mirror the shape of Google's ``Model`` resource (``GET /v1beta/models``). Names outside the
list are still served when they start with a family Google uses (``gemini-``, ``gemma-``,
``imagen-``, ``learnlm-``), so preview names the list lacks behave like their family; anything
else is a 404 as Google answers it. The simulator keeps its own rules on purpose: it must not
share the gateway's ``translate/models.py``, or both would agree on the same mistake.
"""

from __future__ import annotations

import re
from typing import Any

KNOWN_PREFIXES = ("gemini-", "gemma-", "imagen-", "learnlm-")
# "-thinking", "-nothinking", "-thinking-<budget>" are the gateway's names; Google has none of them,
# so a request that still carries one upstream must fail here as it would at Google.
_GATEWAY_SUFFIX = re.compile(r"-(?:no)?thinking(?:-\d+)?$")

_GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
_TTS = ["countTokens", "generateContent"]
_PREDICT = ["predict"]

# name, display name, input limit, output limit, methods, thinking
_MODELS: tuple[tuple[str, str, int, int, list[str], bool], ...] = (
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 1048576, 8192, _GENERATE, False),
    ("gemini-2.0-flash-001", "Gemini 2.0 Flash 001", 1048576, 8192, _GENERATE, False),
    ("gemini-2.0-flash-lite", "Gemini 2.0 Flash-Lite", 1048576, 8192, _GENERATE, False),
    (
        "gemini-2.0-flash-preview-image-generation",
        "Gemini 2.0 Flash Preview Image Generation",
        32000,
        8192,
        ["countTokens", "generateContent"],
        False,
    ),
    (
        "gemini-2.0-flash-exp-image-generation",
        "Gemini 2.0 Flash (Image Generation) Experimental",
        1048576,
        8192,
        ["countTokens", "generateContent"],
        False,
    ),
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1048576, 65536, _GENERATE, True),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", 1048576, 65536, _GENERATE, True),
    (
        "gemini-2.5-flash-preview-05-20",
        "Gemini 2.5 Flash Preview 05-20",
        1048576,
        65536,
        _GENERATE,
        True,
    ),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1048576, 65536, _GENERATE, True),
    ("gemini-2.5-flash-preview-tts", "Gemini 2.5 Flash Preview TTS", 8192, 16384, _TTS, False),
    ("gemini-2.5-pro-preview-tts", "Gemini 2.5 Pro Preview TTS", 8192, 16384, _TTS, False),
    ("gemini-2.5-flash-image", "Nano Banana", 32768, 32768, _GENERATE, False),
    ("gemini-3-pro-preview", "Gemini 3 Pro Preview", 1048576, 65536, _GENERATE, True),
    ("gemini-3-flash-preview", "Gemini 3 Flash Preview", 1048576, 65536, _GENERATE, True),
    ("gemini-3-pro-image-preview", "Nano Banana Pro", 131072, 32768, _GENERATE, True),
    ("gemma-3-27b-it", "Gemma 3 27B", 131072, 8192, ["generateContent", "countTokens"], False),
    ("imagen-4.0-generate-001", "Imagen 4", 480, 8192, _PREDICT, False),
    ("imagen-4.0-fast-generate-001", "Imagen 4 Fast", 480, 8192, _PREDICT, False),
)


def model_resource(name: str) -> dict[str, Any]:
    """Google's ``Model`` resource for a name, made up from its family when not listed."""
    for entry in _MODELS:
        if entry[0] == name:
            return _resource(*entry)
    methods = _PREDICT if is_imagen(name) else _TTS if is_tts(name) else _GENERATE
    return _resource(name, name, 1048576, 65536, methods, thinks(name))


def list_models() -> list[dict[str, Any]]:
    return [_resource(*entry) for entry in _MODELS]


def _resource(
    name: str, display: str, limit_in: int, limit_out: int, methods: list[str], thinking: bool
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": f"models/{name}",
        "version": "001" if name.endswith("-001") else "2.0",
        "displayName": display,
        "description": f"{display} (simulated)",
        "inputTokenLimit": limit_in,
        "outputTokenLimit": limit_out,
        "supportedGenerationMethods": list(methods),
    }
    if not is_imagen(name):
        resource.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2})
    if thinking:
        resource["thinking"] = True
    return resource


def is_known_family(name: str) -> bool:
    """Served names: a Google family prefix, and none of the gateway's own thinking suffixes."""
    return name.startswith(KNOWN_PREFIXES) and _GATEWAY_SUFFIX.search(name) is None


def is_imagen(name: str) -> bool:
    return name.startswith("imagen-")


def is_tts(name: str) -> bool:
    return "-tts" in name


def is_gemini3(name: str) -> bool:
    return name.startswith("gemini-3")


def is_image_model(name: str) -> bool:
    return name.startswith("gemini-") and "image" in name


def thinks(name: str) -> bool:
    """2.5 and 3 text models think by default; TTS and the 2.5 image model do not."""
    if is_tts(name) or (is_image_model(name) and not is_gemini3(name)):
        return False
    return name.startswith(("gemini-2.5", "gemini-3"))


def requires_thinking(name: str) -> bool:
    """Models that reject ``thinkingBudget: 0`` (Google: "only works in thinking mode")."""
    return name.startswith("gemini-2.5-pro") or (is_gemini3(name) and "pro" in name)


def signs_parts(name: str) -> bool:
    """2.5 and 3 models put a ``thoughtSignature`` on the first part they answer with."""
    return name.startswith(("gemini-2.5", "gemini-3")) and not is_tts(name)
