"""OpenAI chat completion request → Gemini ``generateContent`` request (a ``GeminiCall``).

Follows OpenAI's CreateChatCompletionRequest (shared/schemas/openai-chat-completions.subset.json)
and Gemini's GenerateContentRequest (shared/schemas/gemini-v1beta.*). The pieces:

- ``model`` → models.py (suffixes, families);
- ``messages`` → content.py (systemInstruction, contents, media by position);
- parameters → generation.py (generationConfig);
- Google's own extras, sent by OpenAI SDKs as ``extra_body={"google": {...}}`` (they arrive as a
  top-level ``google`` key; a literal ``extra_body.google`` is accepted too): thinking_config,
  cached_content, safety_settings, image_config, speech_config, response_modalities
  (ai.google.dev/gemini-api/docs/openai#extra-body);
- safety: every harm category at the operator's threshold (default OFF), a request's
  ``safety_settings`` overriding per category;
- function calling, built-in tools and response_format: tools.py, toolcalls.py, schema.py, through
  the two functions at the end.

Unknown OpenAI parameters are ignored; a known one with a wrong type or range is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.call import GeminiCall, ModelSpec
from gemini_gateway.translate.content import ToolParts, messages_to_contents
from gemini_gateway.translate.generation import (
    audio_format,
    output_config,
    sampling_config,
    thinking_config,
)
from gemini_gateway.translate.models import is_gemini3, parse_model
from gemini_gateway.translate.schema import response_format_to_gemini
from gemini_gateway.translate.toolcalls import message_tool_parts, tool_call_names
from gemini_gateway.translate.tools import ToolPlan, check_tools_with_json_output, tools_to_gemini
from gemini_gateway.translate.types import GenerateContentRequest, Part, SafetySetting

HARM_CATEGORIES: tuple[str, ...] = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)


@dataclass(frozen=True)
class RequestOptions:
    """Operator settings the translation needs (from ``Settings``)."""

    safety_threshold: str = "OFF"


def chat_request_to_gemini(
    request: Mapping[str, Any],
    *,
    media: Sequence[dict[str, Any]] | None = None,
    options: RequestOptions = RequestOptions(),
) -> GeminiCall:
    """Translate one chat completion request; ``media`` are the resolved media parts, in the
    order content.media_parts listed them (None: media is refused with a 400)."""
    if not isinstance(request, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    spec = parse_model(request.get("model"))
    check_passed_over_parameters(request)
    google = google_extras(request)
    if not request.get("messages"):
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    system, contents = messages_to_contents(
        request["messages"], media, tool_parts=_tool_message_parts(request["messages"], spec)
    )
    _check_conversation(contents)

    body: GenerateContentRequest = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    generation = sampling_config(request)
    generation.update(output_config(spec.upstream, request, google))
    if thinking := thinking_config(spec, request, google):
        generation["thinkingConfig"] = thinking
    if generation:
        body["generationConfig"] = generation
    body["safetySettings"] = safety_settings(options.safety_threshold, google)
    cached = google.get("cached_content", google.get("cachedContent"))
    if cached is not None:
        if not isinstance(cached, str) or not cached:
            raise InvalidRequest("cached_content must be a cache name such as cachedContents/…",
                                 param="google.cached_content")
        body["cachedContent"] = cached
    tools = _apply_tools(request, body, spec.upstream)

    stream = _flag(request, "stream")
    stream_options = request.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, Mapping):
        raise InvalidRequest("stream_options must be an object", param="stream_options")
    include_usage = _flag(stream_options or {}, "include_usage", "stream_options.include_usage")
    extra: dict[str, Any] = {}
    if (fmt := audio_format(request)) is not None:
        extra["audio_format"] = fmt
    if tools.single_call:
        extra["single_tool_call"] = True
    return GeminiCall(
        model=spec,
        body=dict(body),
        stream=stream,
        include_usage=stream and include_usage,
        n=generation.get("candidateCount", 1),
        show_thoughts=bool(thinking.get("includeThoughts")),
        want_logprobs=bool(generation.get("responseLogprobs")),
        tool_names=tools.function_names,
        extra=extra,
    )


# OpenAI parameters Gemini has no use for, or reads only loosely: ignored, but refused with the
# wrong JSON type as OpenAI refuses them (CreateChatCompletionRequest, shared/schemas/).
_PASSED_OVER: dict[str, tuple[type, str]] = {
    **dict.fromkeys(("user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
                     "service_tier", "verbosity"), (str, "a string")),
    **dict.fromkeys(("store", "parallel_tool_calls"), (bool, "a boolean")),
    **dict.fromkeys(("metadata", "logit_bias", "prediction", "web_search_options",
                     "prompt_cache_options"), (dict, "an object")),
}


def check_passed_over_parameters(request: Mapping[str, Any]) -> None:
    """A 400 naming an ignored OpenAI parameter sent with the wrong type (null is absent)."""
    for name, (kind, described) in _PASSED_OVER.items():
        value = request.get(name)
        if value is not None and not isinstance(value, kind):
            raise InvalidRequest(f"{name} must be {described}", param=name)


def google_extras(request: Mapping[str, Any]) -> dict[str, Any]:
    """Google's ``extra_body.google`` object: top-level ``google`` over literal ``extra_body``."""
    merged: dict[str, Any] = {}
    extra_body = request.get("extra_body")
    if isinstance(extra_body, Mapping) and extra_body.get("google") is not None:
        if not isinstance(extra_body["google"], Mapping):
            raise InvalidRequest("extra_body.google must be an object", param="extra_body.google")
        merged.update(extra_body["google"])
    google = request.get("google")
    if google is not None:
        if not isinstance(google, Mapping):
            raise InvalidRequest("google must be an object", param="google")
        merged.update(google)
    return merged


def safety_settings(threshold: str, google: Mapping[str, Any]) -> list[SafetySetting]:
    """Every harm category at the operator's threshold; the request's settings win per category."""
    by_category = dict.fromkeys(HARM_CATEGORIES, threshold)
    requested = google.get("safety_settings", google.get("safetySettings"))
    if requested is not None:
        if not isinstance(requested, list):
            raise InvalidRequest("safety_settings must be an array of {category, threshold}",
                                 param="google.safety_settings")
        for index, setting in enumerate(requested):
            param = f"google.safety_settings[{index}]"
            if not isinstance(setting, Mapping) or not all(
                isinstance(setting.get(key), str) and setting[key]
                for key in ("category", "threshold")
            ):
                raise InvalidRequest("each safety setting needs string category and threshold",
                                     param=param)
            by_category[setting["category"].upper()] = setting["threshold"].upper()
    return [{"category": cat, "threshold": value} for cat, value in by_category.items()]


def _check_conversation(contents: list[Any]) -> None:
    """Refuse here, with a clear message, the conversations Gemini would refuse."""
    if not contents:
        raise InvalidRequest(
            "messages must include a user message with content (system messages alone are "
            "not a conversation)",
            param="messages",
        )
    if contents[-1]["role"] != "user":
        raise InvalidRequest(
            "the last message must be from the user (or a tool result): Gemini does not "
            "accept a conversation that ends with an assistant turn",
            param="messages",
        )


def _flag(mapping: Mapping[str, Any], key: str, param: str | None = None) -> bool:
    value = mapping.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{param or key} must be a boolean", param=param or key)
    return value


# --- Function calling and response_format: the single place tools.py / schema.py plug in. ----


def _tool_message_parts(messages: Any, spec: ModelSpec) -> ToolParts:
    """Parts for ``tool``/``function`` messages and assistants' tool calls (toolcalls.py)."""
    names = tool_call_names(
        [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []
    )
    gemini3 = is_gemini3(spec.upstream)

    def parts(message: Mapping[str, Any], index: int) -> list[Part]:
        found = message_tool_parts(message, names, gemini3=gemini3, param=f"messages[{index}]")
        return found  # type: ignore[return-value]

    return parts


def _apply_tools(request: Mapping[str, Any], body: GenerateContentRequest, model: str
                 ) -> ToolPlan:
    """tools, tool_choice, web_search_options and response_format → body (tools.py, schema.py)."""
    plan = tools_to_gemini(request, model)
    plan.apply(body)  # type: ignore[arg-type]
    output = response_format_to_gemini(request.get("response_format"), model)
    if output:
        body.setdefault("generationConfig", {}).update(output)  # type: ignore[typeddict-item]
    check_tools_with_json_output(plan, body.get("generationConfig") or {}, model)
    return plan
