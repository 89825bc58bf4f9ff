"""chat_request_to_gemini end to end: every body it builds is a valid Gemini request.

Two independent oracles check each body: Google's compiled protos
(``google.ai.generativelanguage_v1beta.types.GenerateContentRequest.from_json``, which rejects
unknown fields; fields newer than the package, thinkingLevel and imageConfig.imageSize, are
stripped for it) and the community OpenAPI 3.1 schema rev20260717 in shared/schemas, which has
those newer fields. Requests are the product page's examples, OpenAI's request shapes and
Google's OpenAI-compatibility examples.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.ai.generativelanguage_v1beta.types import GenerateContentRequest

from gemini_gateway.errors import InvalidRequest, UnsupportedMedia
from gemini_gateway.translate.content import media_parts
from gemini_gateway.translate.request import (
    HARM_CATEGORIES,
    RequestOptions,
    chat_request_to_gemini,
)

COMMUNITY_SCHEMA = "gemini-v1beta.community-native.openapi3_1.rev20260717.json"
PNG = "data:image/png;base64,iVBORw0KGgo="
INLINE_PNG = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}


def _schemas_dir() -> Path:
    """shared/schemas next to the checkout, or where GEMINI_GATEWAY_SCHEMAS_DIR points."""
    configured = os.environ.get("GEMINI_GATEWAY_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "schemas"


@pytest.fixture(scope="module")
def community_validator() -> jsonschema.Draft202012Validator:
    path = _schemas_dir() / COMMUNITY_SCHEMA
    if not path.is_file():
        pytest.skip(f"{COMMUNITY_SCHEMA} not found (set GEMINI_GATEWAY_SCHEMAS_DIR)")
    spec = json.loads(path.read_text())
    schema = {"$ref": "#/components/schemas/GenerateContentRequest",
              "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def assert_valid_gemini(body: dict[str, Any], validator: jsonschema.Draft202012Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    older = copy.deepcopy(body)  # the proto package predates these fields
    generation = older.get("generationConfig", {})
    generation.get("thinkingConfig", {}).pop("thinkingLevel", None)
    generation.get("imageConfig", {}).pop("imageSize", None)
    for key in ("thinkingConfig", "imageConfig"):
        if generation.get(key) == {}:
            del generation[key]
    GenerateContentRequest.from_json(json.dumps({"model": "models/x", **older}))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


VALID_REQUESTS = [
    pytest.param({"messages": [user("What model are you?")], "model": "gemini-2.0-flash",
                  "stream": True}, id="product-basic"),
    pytest.param({"messages": [user("Draw a kitten")],
                  "model": "gemini-2.0-flash-exp-image-generation", "stream": True},
                 id="product-image-generation"),
    pytest.param({"messages": [{"role": "user", "content": [
                     {"type": "text", "text": "What is in this picture?"},
                     {"type": "image_url", "image_url": {"url": PNG}}]}],
                  "model": "gemini-2.0-flash", "stream": True}, id="product-image-understanding"),
    pytest.param({"model": "gemini-2.5-flash-thinking", "messages": [
                     {"role": "developer", "content": "You are a helpful assistant."},
                     user("Hello!")],
                  "temperature": 1, "top_p": 0.95, "top_k": 64, "max_completion_tokens": 2048,
                  "stop": ["\n\n"], "n": 2, "presence_penalty": 0.1, "frequency_penalty": 0.2,
                  "seed": 7, "logprobs": True, "top_logprobs": 5, "reasoning_effort": "low",
                  "stream": True, "stream_options": {"include_usage": True}},
                 id="all-sampling-parameters"),
    pytest.param({"model": "gemini-3-pro-preview", "messages": [user("Think hard")],
                  "reasoning_effort": "high"}, id="gemini3-level"),
    pytest.param({"model": "gemini-2.5-flash", "messages": [user("Explain to me how AI works")],
                  "extra_body": {"google": {"thinking_config": {"thinking_budget": 800,
                                                                "include_thoughts": True}}}},
                 id="google-compat-thinking"),
    pytest.param({"model": "gemini-2.5-flash-preview-tts",
                  "messages": [user("Say cheerfully: Have a wonderful day!")],
                  "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
                 id="tts-openai-voice"),
    pytest.param({"model": "gemini-2.5-flash-preview-tts",
                  "messages": [user("TTS the following conversation between Joe and Jane: ...")],
                  "google": {"speech_config": {"multi_speaker_voice_config": {
                      "speaker_voice_configs": [
                          {"speaker": "Joe", "voice_config": {
                              "prebuilt_voice_config": {"voice_name": "Kore"}}},
                          {"speaker": "Jane", "voice_config": {
                              "prebuilt_voice_config": {"voice_name": "Puck"}}}]}}}},
                 id="tts-multi-speaker"),
    pytest.param({"model": "gemini-2.5-flash-image", "messages": [user("A cat, wide")],
                  "google": {"image_config": {"aspect_ratio": "16:9", "image_size": "2K"}}},
                 id="image-config"),
    pytest.param({"model": "gemini-2.5-flash", "messages": [user("Summarise the cache")],
                  "extra_body": {"google": {"cached_content": "cachedContents/abc123"}},
                  "google": {"safety_settings": [
                      {"category": "HARM_CATEGORY_HATE_SPEECH",
                       "threshold": "BLOCK_LOW_AND_ABOVE"}]}},
                 id="cached-content-and-safety"),
    pytest.param({"model": "gemini-2.5-flash-image", "messages": [
                     user("Draw a kitten"),
                     {"role": "assistant", "content": f"Here you go\n\n![image]({PNG})"},
                     user("Make it blue")]},
                 id="image-edit-turn"),
    pytest.param({"model": "gemini-2.5-flash-nothinking", "messages": [user("hi")],
                  "response_format": {"type": "text"}, "user": "u-1", "store": False,
                  "metadata": {"a": "b"}, "logit_bias": {"50256": -100}, "tool_choice": "none"},
                 id="unknown-and-harmless-parameters"),
]


@pytest.mark.parametrize("request_", VALID_REQUESTS)
def test_bodies_validate_against_gemini_schemas(
    request_: dict[str, Any], community_validator: jsonschema.Draft202012Validator
) -> None:
    media = [INLINE_PNG] * len(media_parts(request_["messages"]))
    call = chat_request_to_gemini(request_, media=media)
    assert "model" not in call.body
    assert_valid_gemini(call.body, community_validator)


def test_basic_call_body_and_call_fields() -> None:
    call = chat_request_to_gemini({"messages": [user("What model are you?")],
                                   "model": "gemini-2.0-flash", "stream": True})
    assert call.model.requested == "gemini-2.0-flash"
    assert call.model.upstream == "gemini-2.0-flash"
    assert call.body == {
        "contents": [{"role": "user", "parts": [{"text": "What model are you?"}]}],
        "safetySettings": [{"category": c, "threshold": "OFF"} for c in HARM_CATEGORIES],
    }
    assert (call.stream, call.include_usage, call.n, call.show_thoughts, call.want_logprobs) == (
        True, False, 1, False, False)
    assert call.tool_names == ()
    assert call.extra == {}


def test_call_fields_follow_the_request() -> None:
    call = chat_request_to_gemini({
        "model": "gemini-2.5-pro-thinking", "messages": [user("hi")], "n": 3, "logprobs": True,
        "stream": True, "stream_options": {"include_usage": True},
        "audio": {"voice": "alloy", "format": "mp3"},
    })
    assert call.model.upstream == "gemini-2.5-pro"
    assert call.stream and call.include_usage and call.want_logprobs and call.show_thoughts
    assert call.n == 3
    assert call.body["generationConfig"]["candidateCount"] == 3
    assert call.body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert call.extra == {"audio_format": "mp3"}


def test_include_usage_needs_a_stream() -> None:
    call = chat_request_to_gemini({"model": "gemini-2.5-flash", "messages": [user("hi")],
                                   "stream_options": {"include_usage": True}})
    assert not call.stream and not call.include_usage


def test_thoughts_shown_only_when_asked() -> None:
    plain = chat_request_to_gemini({"model": "gemini-2.5-flash", "messages": [user("hi")],
                                    "reasoning_effort": "high"})
    assert not plain.show_thoughts
    assert plain.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
    google = chat_request_to_gemini({"model": "gemini-2.5-flash", "messages": [user("hi")],
                                     "google": {"thinking_config": {"include_thoughts": True}}})
    assert google.show_thoughts


def test_safety_threshold_and_per_category_override() -> None:
    call = chat_request_to_gemini(
        {"model": "gemini-2.5-flash", "messages": [user("hi")],
         "google": {"safety_settings": [
             {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
             {"category": "harm_category_dangerous_content", "threshold": "block_only_high"}]}},
        options=RequestOptions(safety_threshold="BLOCK_MEDIUM_AND_ABOVE"),
    )
    assert call.body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_MEDIUM_AND_ABOVE"},
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_MEDIUM_AND_ABOVE"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"},
        {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_MEDIUM_AND_ABOVE"},
    ]


def test_top_level_google_and_literal_extra_body_are_both_read() -> None:
    body = chat_request_to_gemini({
        "model": "gemini-2.5-flash", "messages": [user("hi")],
        "extra_body": {"google": {"cached_content": "cachedContents/old",
                                  "thinking_config": {"thinking_budget": 100}}},
        "google": {"cached_content": "cachedContents/new"},
    }).body
    assert body["cachedContent"] == "cachedContents/new"
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 100}


def test_image_edit_turn_sends_the_earlier_image_back() -> None:
    request = {"model": "gemini-2.5-flash-image", "messages": [
        user("Draw a kitten"),
        {"role": "assistant", "content": "Here you go\n\n"
                                         "![image](https://gw.example/gemini/v1/files/f1)"},
        user("Make it blue")]}
    assert media_parts(request["messages"])[0]["image_url"]["url"].endswith("/files/f1")
    call = chat_request_to_gemini(request, media=[INLINE_PNG])
    assert call.body["contents"][1] == {"role": "model", "parts": [{"text": "Here you go\n\n"},
                                                                   INLINE_PNG]}
    assert call.body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


def test_media_without_resolution_is_a_clear_400() -> None:
    request = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is said in this audio?"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]}
    with pytest.raises(UnsupportedMedia) as caught:
        chat_request_to_gemini(request)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        pytest.param({"model": "gemini-2.0-flash"}, "messages", id="no-messages"),
        pytest.param({"model": "gemini-2.0-flash", "messages": []}, "messages", id="empty"),
        pytest.param({"model": "gemini-2.0-flash",
                      "messages": [{"role": "system", "content": "Be nice"}]},
                     "messages", id="only-system"),
        pytest.param({"model": "gemini-2.0-flash",
                      "messages": [user("hi"), {"role": "assistant", "content": "Hello"}]},
                     "messages", id="ends-with-assistant"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("")]}, "messages",
                     id="only-empty-content"),
        pytest.param({"messages": [user("hi")]}, "model", id="no-model"),
        pytest.param({"model": "gemini-2.5-pro-nothinking", "messages": [user("hi")]}, "model",
                     id="pro-nothinking"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi"), {"role": "user",
                      "content": 3}]}, "messages[1].content", id="content-type"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")], "stream": "yes"},
                     "stream", id="stream-type"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")],
                      "stream_options": {"include_usage": 1}}, "stream_options.include_usage",
                     id="include-usage-type"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")], "google": "x"},
                     "google", id="google-type"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")],
                      "google": {"safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT"}]}},
                     "google.safety_settings[0]", id="safety-setting-shape"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")],
                      "google": {"cached_content": 5}}, "google.cached_content",
                     id="cached-content-type"),
        pytest.param({"model": "gemini-2.0-flash", "messages": [user("hi")],
                      "stop": ["1", "2", "3", "4", "5", "6"]}, "stop", id="six-stops"),
    ],
)
def test_refusals_name_the_field(request_: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_request_to_gemini(request_)
    assert caught.value.param == param
    assert caught.value.status == 400


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]}}}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        pytest.param({"tools": [WEATHER_TOOL]}, "tools", id="product-function-calling"),
        pytest.param({"tools": [{"type": "function", "function": {"name": "codeExecution"}}]},
                     "tools", id="product-code-execution"),
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "toolConfig",
                     id="tool-choice"),
        pytest.param({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object"}}}}, "generationConfig", id="json-schema"),
        pytest.param({"messages": [user("weather?"), {"role": "assistant", "content": None,
                      "tool_calls": [{"id": "c1", "type": "function", "function": {
                          "name": "get_current_weather", "arguments": "{}"}}]},
                      {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]},
                     "contents", id="assistant-tool-calls"),
    ],
)
def test_function_calling_reaches_the_body(extra: dict[str, Any], key: str) -> None:
    """Function calling is translated by tools.py (its own tests: test_translate_tools*.py)."""
    request = {"model": "gemini-2.0-flash", "messages": [user("What is the weather?")], **extra}
    body = chat_request_to_gemini(request).body
    assert key in body


def test_tool_message_without_its_call_is_refused() -> None:
    request = {"model": "gemini-2.0-flash", "messages": [
        user("weather?"), {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}
    with pytest.raises(InvalidRequest) as caught:
        chat_request_to_gemini(request)
    assert caught.value.param == "messages[1].tool_call_id"
