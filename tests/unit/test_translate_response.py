"""Gemini generateContent responses → chat.completion, each result checked against OpenAI's schema.

Inputs follow Google's documented response shapes (GenerateContentResponse in the v1beta
reference; examples from the thinking, function-calling, image-generation, speech-generation and
logprobs guides, and a blocked prompt as reported in vercel/ai#4235).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from typing import Any

import pytest

from gemini_gateway.translate.call import GeminiCall, ModelSpec, ResponseContext
from gemini_gateway.translate.response import (
    finish_reason_to_openai,
    gemini_response_to_chat,
    logprobs_to_openai,
    usage_to_openai,
)
from tests.unit.openai_schema import assert_valid

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def make_call(requested: str = "gemini-2.5-flash", **kwargs: Any) -> GeminiCall:
    upstream = requested.removesuffix("-thinking")
    return GeminiCall(model=ModelSpec(requested=requested, upstream=upstream), body={}, **kwargs)


def make_ctx(**kwargs: Any) -> ResponseContext:
    return ResponseContext(completion_id="chatcmpl-test123", created=1_750_000_000, **kwargs)


def translate(response: dict[str, Any], call: GeminiCall | None = None,
              ctx: ResponseContext | None = None) -> dict[str, Any]:
    result = gemini_response_to_chat(response, call or make_call(), ctx or make_ctx())
    assert_valid(result, "CreateChatCompletionResponse")
    json.dumps(result)  # plain JSON types only
    return result


def text_response(*parts: dict[str, Any], finish: str | None = "STOP",
                  **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, **extra}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12,
                          "totalTokenCount": 20},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }


# A basic answer, shaped like the text-generation quickstart's REST output.
BASIC = {
    "candidates": [{
        "content": {"parts": [{"text": "AI learns patterns from data to make predictions."}],
                    "role": "model"},
        "finishReason": "STOP",
        "avgLogprobs": -0.21,
    }],
    "usageMetadata": {
        "promptTokenCount": 8, "candidatesTokenCount": 10, "totalTokenCount": 18,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
    },
    "modelVersion": "gemini-2.0-flash",
    "responseId": "mS1xaL6nAYa9nvgP8Yq90Aw",
}


def test_basic_completion() -> None:
    result = translate(BASIC, make_call("models/gemini-2.0-flash"))
    assert result["id"] == "chatcmpl-test123"
    assert result["object"] == "chat.completion"
    assert result["created"] == 1_750_000_000
    assert result["model"] == "models/gemini-2.0-flash"  # what the client asked for
    assert "system_fingerprint" not in result
    [choice] = result["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert choice["message"] == {
        "role": "assistant",
        "content": "AI learns patterns from data to make predictions.",
        "refusal": None,
    }
    assert result["usage"]["prompt_tokens"] == 8
    assert result["usage"]["completion_tokens"] == 10
    assert result["usage"]["total_tokens"] == 18
    assert result["usage"]["prompt_tokens_details"]["text_tokens"] == 8


def test_text_parts_are_joined_in_order() -> None:
    result = translate(text_response({"text": "Hello"}, {"text": ", "}, {"text": "world"}))
    assert result["choices"][0]["message"]["content"] == "Hello, world"


# Thinking guide: includeThoughts gives parts with thought: true before the answer.
THINKING = {
    "candidates": [{
        "content": {"parts": [
            {"text": "**Planning**\nThe user wants 2+2.", "thought": True},
            {"text": "2 + 2 = 4", "thoughtSignature": "CiQBVKhc7u8AAAA="},
        ], "role": "model"},
        "finishReason": "STOP",
        "index": 0,
    }],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 7,
                      "thoughtsTokenCount": 120, "totalTokenCount": 137},
}


def test_thoughts_hidden_without_show_thoughts() -> None:
    result = translate(THINKING, make_call("gemini-2.5-flash"))
    message = result["choices"][0]["message"]
    assert message["content"] == "2 + 2 = 4"
    assert "reasoning_content" not in message
    assert "Planning" not in json.dumps(result)
    assert "CiQBVKhc7u8AAAA=" not in json.dumps(result)  # text signatures are dropped
    # Hidden thoughts are still billed: completion = candidates + thoughts.
    assert result["usage"]["completion_tokens"] == 127
    assert result["usage"]["completion_tokens_details"]["reasoning_tokens"] == 120
    assert result["usage"]["total_tokens"] == 137


def test_thoughts_as_reasoning_content() -> None:
    result = translate(THINKING, make_call("gemini-2.5-flash-thinking", show_thoughts=True))
    message = result["choices"][0]["message"]
    assert message["reasoning_content"] == "**Planning**\nThe user wants 2+2."
    assert message["content"] == "2 + 2 = 4"


def test_thoughts_as_think_tags() -> None:
    result = translate(THINKING, make_call(show_thoughts=True), make_ctx(think_tags=True))
    message = result["choices"][0]["message"]
    assert message["content"] == (
        "<think>\n**Planning**\nThe user wants 2+2.\n</think>\n\n2 + 2 = 4"
    )
    assert "reasoning_content" not in message


def test_think_tag_closed_when_only_thoughts_arrive() -> None:
    response = text_response({"text": "Cut short", "thought": True}, finish="MAX_TOKENS")
    result = translate(response, make_call(show_thoughts=True), make_ctx(think_tags=True))
    assert result["choices"][0]["message"]["content"] == "<think>\nCut short\n</think>\n\n"
    assert result["choices"][0]["finish_reason"] == "length"


# Function-calling guide: a functionCall part (with a thought signature on thinking models).
FUNCTION_CALL = {
    "candidates": [{
        "content": {"parts": [
            {"text": "I need to check the weather for Boston.", "thought": True},
            {"functionCall": {"name": "get_current_weather",
                              "args": {"location": "Boston, MA", "unit": "fahrenheit"}},
             "thoughtSignature": "FUNC_CALL_SIG_A"},
        ], "role": "model"},
        "finishReason": "STOP",
    }],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 15,
                      "thoughtsTokenCount": 4, "totalTokenCount": 31},
}


def test_function_call_becomes_tool_call() -> None:
    result = translate(FUNCTION_CALL)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    [tool_call] = message["tool_calls"]
    assert tool_call["type"] == "function"
    assert tool_call["id"].startswith("call_")
    assert tool_call["function"]["name"] == "get_current_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {
        "location": "Boston, MA", "unit": "fahrenheit"}


def test_parallel_function_calls_get_distinct_ids() -> None:
    response = text_response(
        {"functionCall": {"name": "turn_on_the_lights", "args": {}}},
        {"functionCall": {"name": "start_music", "args": {"energetic": True, "loud": True}}},
    )
    calls = translate(response)["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["turn_on_the_lights", "start_music"]
    assert calls[0]["function"]["arguments"] == "{}"
    assert calls[0]["id"] != calls[1]["id"]


FINISH_REASONS = [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("LANGUAGE", "stop"),
    ("OTHER", "stop"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"),
    ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
    ("IMAGE_OTHER", "content_filter"),
    ("NO_IMAGE", "content_filter"),
    ("IMAGE_RECITATION", "content_filter"),
    ("UNEXPECTED_TOOL_CALL", "content_filter"),
    ("TOO_MANY_TOOL_CALLS", "content_filter"),
    ("MISSING_THOUGHT_SIGNATURE", "content_filter"),
    ("FINISH_REASON_UNSPECIFIED", "stop"),
    ("SOMETHING_NEW", "stop"),
]


@pytest.mark.parametrize(("gemini", "openai"), FINISH_REASONS, ids=[g for g, _ in FINISH_REASONS])
def test_every_finish_reason(gemini: str, openai: str) -> None:
    assert finish_reason_to_openai(gemini) == openai
    choice = translate(text_response({"text": "partial"}, finish=gemini))["choices"][0]
    assert choice["finish_reason"] == openai
    refusal = choice["message"]["refusal"]
    if openai == "content_filter":
        assert gemini in refusal  # the client can see Gemini's own reason
    else:
        assert refusal is None
    assert choice["message"]["content"] == "partial"


def test_missing_finish_reason_is_stop() -> None:
    assert finish_reason_to_openai(None) is None
    choice = translate(text_response({"text": "x"}, finish=None))["choices"][0]
    assert choice["finish_reason"] == "stop"


def test_malformed_function_call_is_surfaced_with_its_message() -> None:
    response = {
        "candidates": [{
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: print(default_api.get_weather(city=))",
            "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 50, "totalTokenCount": 50},
    }
    choice = translate(response)["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert "MALFORMED_FUNCTION_CALL" in choice["message"]["refusal"]
    assert "get_weather(city=)" in choice["message"]["refusal"]


def test_safety_stop_without_content() -> None:
    response = {"candidates": [{
        "finishReason": "SAFETY",
        "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                           "probability": "HIGH", "blocked": True}],
    }]}
    result = translate(response)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert "SAFETY" in choice["message"]["refusal"]
    assert result["usage"] == usage_to_openai(None)


# vercel/ai#4235: a blocked prompt has promptFeedback and no candidates.
BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {"promptTokenCount": 12559, "totalTokenCount": 12559},
    "modelVersion": "gemini-1.5-flash-002",
}


def test_blocked_prompt_is_a_content_filter_choice() -> None:
    result = translate(BLOCKED)
    [choice] = result["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert "PROHIBITED_CONTENT" in choice["message"]["refusal"]
    assert result["usage"]["prompt_tokens"] == 12559
    assert result["usage"]["completion_tokens"] == 0


def test_blocked_prompt_names_blocked_categories() -> None:
    response = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH", "blocked": True},
    ]}}
    refusal = translate(response)["choices"][0]["message"]["refusal"]
    assert "SAFETY" in refusal and "HARM_CATEGORY_HATE_SPEECH" in refusal
    assert "HARASSMENT" not in refusal


def test_empty_response_is_not_an_empty_200() -> None:
    choice = translate({"usageMetadata": {"promptTokenCount": 271}})["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["refusal"]


# Image-generation guide: text and an inlineData PNG in one candidate.
def image_response() -> dict[str, Any]:
    return text_response(
        {"text": "Here is a kitten:"},
        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
    )


def test_generated_image_with_link() -> None:
    seen: list[tuple[str, str]] = []

    def media_url(mime: str, b64: str) -> str:
        seen.append((mime, b64))
        return "https://gw.example/gemini/v1/files/f1"

    result = translate(image_response(), ctx=make_ctx(media_url=media_url))
    message = result["choices"][0]["message"]
    assert seen == [("image/png", PNG_B64)]
    assert message["content"] == (
        "Here is a kitten:\n\n![image](https://gw.example/gemini/v1/files/f1)"
    )
    assert message["images"] == [
        {"type": "image_url", "image_url": {"url": "https://gw.example/gemini/v1/files/f1"}}
    ]


def test_generated_image_as_data_url() -> None:
    result = translate(text_response({"inlineData": {"mimeType": "image/png", "data": PNG_B64}}))
    message = result["choices"][0]["message"]
    url = f"data:image/png;base64,{PNG_B64}"
    assert message["content"] == f"![image]({url})"  # no separator before the first item
    assert message["images"][0]["image_url"]["url"] == url


def _pcm_response(pcm: bytes, mime: str = "audio/L16;codec=pcm;rate=24000") -> dict[str, Any]:
    data = base64.b64encode(pcm).decode()
    return {
        "candidates": [{
            "content": {"parts": [{"inlineData": {"mimeType": mime, "data": data}}],
                        "role": "model"},
            "finishReason": "STOP",
        }],
        "usageMetadata": {
            "promptTokenCount": 9, "candidatesTokenCount": 50, "totalTokenCount": 59,
            "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 50}],
        },
    }


def _wav(b64: str) -> tuple[int, int, bytes]:
    with wave.open(io.BytesIO(base64.b64decode(b64)), "rb") as reader:
        return reader.getframerate(), reader.getnchannels(), reader.readframes(reader.getnframes())


def test_tts_audio_becomes_wav_message_audio() -> None:
    pcm = struct.pack("<6h", 0, 100, -100, 200, -200, 0)
    links: list[str] = []

    def media_url(mime: str, b64: str) -> str:
        links.append(mime)
        return "https://gw.example/gemini/v1/files/a1"

    call = make_call("gemini-2.5-flash-preview-tts", extra={"generated_media_ttl": 3600})
    result = translate(_pcm_response(pcm), call, make_ctx(media_url=media_url))
    message = result["choices"][0]["message"]
    audio = message["audio"]
    assert audio["id"].startswith("audio_")
    assert audio["expires_at"] == 1_750_000_000 + 3600
    assert audio["transcript"] == ""
    assert _wav(audio["data"]) == (24000, 1, pcm)
    assert links == ["audio/wav"]
    assert message["content"] == "[audio](https://gw.example/gemini/v1/files/a1)"
    assert result["usage"]["completion_tokens_details"]["audio_tokens"] == 50


@pytest.mark.parametrize(
    ("fmt", "mime", "magic"),
    [("flac", "audio/flac", b"fLaC"), ("opus", "audio/ogg", b"OggS"), ("mp3", "audio/mpeg", b"")],
)
def test_tts_audio_in_the_format_the_request_asked_for(fmt: str, mime: str, magic: bytes) -> None:
    pcm = struct.pack("<4800h", *range(-2400, 2400))
    links: list[str] = []

    def media_url(mime: str, b64: str) -> str:
        links.append(mime)
        return "https://gw.example/gemini/v1/files/a1"

    call = make_call("gemini-2.5-flash-preview-tts", extra={"audio_format": fmt})
    result = translate(_pcm_response(pcm), call, make_ctx(media_url=media_url))
    data = base64.b64decode(result["choices"][0]["message"]["audio"]["data"])
    assert data.startswith(magic) and len(data) > 100
    assert links == [mime]
    if fmt == "flac":
        soundfile = pytest.importorskip("soundfile")
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
        assert (rate, samples.tobytes()) == (24000, pcm)


def test_audio_rate_comes_from_mime_and_pieces_are_joined() -> None:
    first, second = b"\x01\x00\x02\x00", b"\x03\x00"
    response = _pcm_response(first, "audio/pcm;rate=16000")
    parts = response["candidates"][0]["content"]["parts"]
    parts.append({"inlineData": {"mimeType": "audio/pcm;rate=16000",
                                 "data": base64.b64encode(second).decode()}})
    parts.insert(0, {"text": "Say hi"})
    message = translate(response)["choices"][0]["message"]
    assert _wav(message["audio"]["data"]) == (16000, 1, first + second)
    assert message["audio"]["transcript"] == "Say hi"
    assert message["content"].startswith("Say hi\n\n[audio](data:audio/wav;base64,UklGR")


# Logprobs (responseLogprobs + logprobs=2): chosen token and top alternatives per step.
LOGPROBS = {
    "candidates": [{
        "content": {"parts": [{"text": "Hi there"}], "role": "model"},
        "finishReason": "STOP",
        "avgLogprobs": -0.05,
        "logprobsResult": {
            "topCandidates": [
                {"candidates": [{"token": "Hi", "logProbability": -0.01},
                                {"token": "Hello", "logProbability": -4.6}]},
                {"candidates": [{"token": " there", "logProbability": -0.09}]},
            ],
            "chosenCandidates": [{"token": "Hi", "logProbability": -0.01},
                                 {"token": " there", "logProbability": -0.09}],
        },
    }],
}


def test_logprobs_when_wanted() -> None:
    result = translate(LOGPROBS, make_call(want_logprobs=True))
    content = result["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["Hi", " there"]
    assert content[0]["logprob"] == -0.01
    assert content[1]["bytes"] == list(b" there")
    assert [t["token"] for t in content[0]["top_logprobs"]] == ["Hi", "Hello"]
    assert content[0]["top_logprobs"][1]["logprob"] == -4.6
    assert result["choices"][0]["logprobs"]["refusal"] is None


def test_logprobs_left_out_when_not_wanted() -> None:
    assert translate(LOGPROBS)["choices"][0]["logprobs"] is None


def test_logprobs_without_top_candidates() -> None:
    content = logprobs_to_openai({"chosenCandidates": [{"token": "é", "logProbability": -1}]})
    assert content == [{"token": "é", "logprob": -1.0, "bytes": [0xC3, 0xA9], "top_logprobs": []}]


def test_candidates_become_choices_by_index() -> None:
    response = {"candidates": [
        {"content": {"parts": [{"text": "first"}]}, "finishReason": "STOP"},  # index 0 omitted
        {"content": {"parts": [{"text": "third"}]}, "finishReason": "STOP", "index": 2},
        {"content": {"parts": [{"text": "second"}]}, "finishReason": "MAX_TOKENS", "index": 1},
    ]}
    choices = translate(response, make_call(n=3))["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "first"), (1, "second"), (2, "third")]
    assert choices[1]["finish_reason"] == "length"


def test_usage_cached_and_tool_use_tokens() -> None:
    usage = usage_to_openai({
        "promptTokenCount": 1000, "cachedContentTokenCount": 800,
        "toolUsePromptTokenCount": 50, "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30, "totalTokenCount": 1100,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 700},
                                {"modality": "IMAGE", "tokenCount": 258},
                                {"modality": "AUDIO", "tokenCount": 42}],
    })
    assert usage["prompt_tokens"] == 1050
    assert usage["completion_tokens"] == 50
    assert usage["total_tokens"] == 1100
    assert usage["prompt_tokens_details"] == {
        "cached_tokens": 800, "text_tokens": 700, "image_tokens": 258, "audio_tokens": 42}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 30}


def test_usage_total_computed_when_missing() -> None:
    usage = usage_to_openai({"promptTokenCount": 3, "candidatesTokenCount": 4})
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (3, 4, 7)
