"""Gemini ``usageMetadata`` → OpenAI ``usage`` (``CompletionUsage``).

Gemini counts thinking apart from the answer (``thoughtsTokenCount`` next to
``candidatesTokenCount``) and bills both as output, so OpenAI's ``completion_tokens`` is their sum
and ``completion_tokens_details.reasoning_tokens`` is the thought part, as OpenAI reports its own
reasoning models. Tokens of tool results Gemini fetched itself (``toolUsePromptTokenCount``) are
billed as input, so they count as prompt tokens. ``totalTokenCount`` wins when present, since it is
what Google bills.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) else 0


def _by_modality(details: Sequence[Mapping[str, Any]] | None) -> dict[str, int]:
    """``[{"modality": "TEXT", "tokenCount": 5}, ...]`` → ``{"TEXT": 5, ...}``."""
    counts: dict[str, int] = {}
    for item in details or ():
        modality = str(item.get("modality", "")).upper()
        counts[modality] = counts.get(modality, 0) + _count(item, "tokenCount")
    return counts


def usage_to_openai(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Map ``usageMetadata`` to OpenAI usage; missing counts are 0."""
    usage = usage or {}
    prompt = _count(usage, "promptTokenCount") + _count(usage, "toolUsePromptTokenCount")
    thoughts = _count(usage, "thoughtsTokenCount")
    completion = _count(usage, "candidatesTokenCount") + thoughts
    total = _count(usage, "totalTokenCount") or prompt + completion

    prompt_modalities = _by_modality(usage.get("promptTokensDetails"))
    prompt_details: dict[str, int] = {"cached_tokens": _count(usage, "cachedContentTokenCount")}
    for modality, key in (("AUDIO", "audio_tokens"), ("TEXT", "text_tokens"),
                          ("IMAGE", "image_tokens")):
        if modality in prompt_modalities:
            prompt_details[key] = prompt_modalities[modality]

    output_modalities = _by_modality(usage.get("candidatesTokensDetails"))
    completion_details: dict[str, int] = {"reasoning_tokens": thoughts}
    if "AUDIO" in output_modalities:
        completion_details["audio_tokens"] = output_modalities["AUDIO"]
    if "TEXT" in output_modalities:
        completion_details["text_tokens"] = output_modalities["TEXT"]

    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": completion_details,
    }
