"""The simulator's answers: deterministic, shaped like GenerateContentResponse, honest usage."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest

from gemini_gateway.simulator.generation import answer_events, answer_response, build_answer
from gemini_gateway.simulator.synth_media import PCM_RATE, pcm_tone, png_for
from gemini_gateway.simulator.validation import signature_is_ours


def _body(text: str = "What model are you?", **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        body["generationConfig"] = config
    return body


def _respond(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return answer_response(build_answer(model, body))


def _parts(response: dict[str, Any], index: int = 0) -> list[dict[str, Any]]:
    return response["candidates"][index]["content"]["parts"]


def test_answer_mentions_the_last_user_text_and_is_deterministic() -> None:
    first = _respond("gemini-2.0-flash", _body("Tell me about otters"))
    assert first == _respond("gemini-2.0-flash", _body("Tell me about otters"))
    assert "Tell me about otters" in _parts(first)[0]["text"]
    assert first["candidates"][0]["finishReason"] == "STOP"
    assert first["modelVersion"] == "gemini-2.0-flash"
    usage = first["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert "thoughtsTokenCount" not in usage


def test_thoughts_only_when_asked_but_thinking_is_always_counted() -> None:
    hidden = _respond("gemini-2.5-flash", _body())
    assert not any(p.get("thought") for p in _parts(hidden))
    usage = hidden["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    shown = _respond("gemini-2.5-flash", _body(thinkingConfig={"includeThoughts": True}))
    assert _parts(shown)[0]["thought"] is True
    off = _respond("gemini-2.5-flash", _body(thinkingConfig={"thinkingBudget": 0}))
    assert "thoughtsTokenCount" not in off["usageMetadata"]
    assert all("thoughtSignature" not in p for p in _parts(off))


def test_thinking_models_sign_their_first_answer_part() -> None:
    parts = _parts(_respond("gemini-2.5-pro", _body()))
    assert signature_is_ours(parts[0]["thoughtSignature"])
    assert "thoughtSignature" not in _parts(_respond("gemini-2.0-flash", _body()))[0]


def test_stop_sequence_and_max_tokens() -> None:
    stopped = _respond("gemini-2.0-flash", _body("one two HALT three", stopSequences=["HALT"]))
    assert "HALT" not in _parts(stopped)[0]["text"]
    assert stopped["candidates"][0]["finishReason"] == "STOP"
    short = _respond("gemini-2.0-flash", _body(maxOutputTokens=3))
    assert len(_parts(short)[0]["text"].split()) == 3
    assert short["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert short["usageMetadata"]["candidatesTokenCount"] == 3


def test_candidate_count() -> None:
    response = _respond("gemini-2.0-flash", _body(candidateCount=3))
    assert [c["index"] for c in response["candidates"]] == [0, 1, 2]
    assert len({_parts(response, i)[0]["text"] for i in range(3)}) == 3


def test_blockme_blocks_the_prompt_and_safetystop_stops_the_answer() -> None:
    blocked = _respond("gemini-2.0-flash", _body("please BLOCKME"))
    assert "candidates" not in blocked
    assert blocked["promptFeedback"]["blockReason"] == "SAFETY"
    stopped = _respond("gemini-2.0-flash", _body("please SAFETYSTOP"))
    assert stopped["candidates"][0]["finishReason"] == "SAFETY"
    assert "content" not in stopped["candidates"][0]


def test_stream_events_rebuild_the_whole_answer() -> None:
    answer = build_answer("gemini-2.5-flash", _body(thinkingConfig={"includeThoughts": True}))
    whole = answer_response(answer)
    events = answer_events(answer, 5)
    assert len(events) == 5
    assert all("usageMetadata" in e for e in events)
    finals = [c for e in events for c in e["candidates"] if "finishReason" in c]
    assert len(finals) == 1 and "finishReason" in events[-1]["candidates"][0]
    assert events[-1]["usageMetadata"] == whole["usageMetadata"]
    counts = [e["usageMetadata"]["candidatesTokenCount"] for e in events]
    assert counts == sorted(counts)
    streamed = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    assert streamed[0]["thought"] is True
    text = "".join(p["text"] for p in streamed if not p.get("thought"))
    assert text == "".join(p["text"] for p in _parts(whole) if not p.get("thought"))


def test_stream_chunks_setting_controls_the_event_count() -> None:
    answer = build_answer("gemini-2.0-flash", _body())
    assert len(answer_events(answer, 1)) == 1
    assert len(answer_events(answer, 8)) == 8


WEATHER_TOOL = [
    {
        "functionDeclarations": [
            {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {
                        "location": {"type": "STRING"},
                        "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
                    },
                    "required": ["location", "unit"],
                },
            },
            {
                "name": "get_time",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {
                        "zone": {"type": ["string", "null"]},
                        "count": {"type": "integer"},
                    },
                    "required": ["count"],
                },
            },
        ]
    }
]


def test_function_call_with_arguments_from_the_schema() -> None:
    body = _body("What is the weather like in Boston today?")
    body["tools"] = WEATHER_TOOL
    parts = _parts(_respond("gemini-2.5-flash", body))
    call = parts[0]["functionCall"]
    assert call == {
        "name": "get_current_weather",
        "args": {"location": "sample location", "unit": "celsius"},
    }
    assert "thoughtSignature" in parts[0]


def test_tool_config_mode_and_allowed_names() -> None:
    body = _body("What time is it?")
    body["tools"] = WEATHER_TOOL
    body["toolConfig"] = {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }
    assert _parts(_respond("gemini-2.0-flash", body))[0]["functionCall"] == {
        "name": "get_time",
        "args": {"count": 1},
    }
    body["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    assert "text" in _parts(_respond("gemini-2.0-flash", body))[0]
    body = _body("Weather and time, PARALLEL please")
    body["tools"] = WEATHER_TOOL
    names = [p["functionCall"]["name"] for p in _parts(_respond("gemini-2.0-flash", body))]
    assert names == ["get_current_weather", "get_time"]


def test_function_response_is_quoted() -> None:
    body = _body("Weather?")
    body["tools"] = WEATHER_TOOL
    body["contents"] += [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_current_weather", "args": {"location": "Boston"}}}
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_current_weather", "response": {"temp": 21}}}
            ],
        },
    ]
    text = _parts(_respond("gemini-2.0-flash", body))[0]["text"]
    assert 'get_current_weather returned {"temp":21}' in text


def test_code_execution_parts() -> None:
    body = _body("Sum the first 50 primes")
    body["tools"] = [{"codeExecution": {}}]
    parts = _parts(_respond("gemini-2.0-flash", body))
    assert [next(iter(p)) for p in parts] == [
        "text",
        "executableCode",
        "codeExecutionResult",
        "text",
    ]
    assert parts[1]["executableCode"]["language"] == "PYTHON"
    assert parts[2]["codeExecutionResult"]["outcome"] == "OUTCOME_OK"


def test_google_search_grounding() -> None:
    body = _body("Who won euro 2024?")
    body["tools"] = [{"googleSearch": {}}]
    candidate = _respond("gemini-2.5-flash", body)["candidates"][0]
    grounding = candidate["groundingMetadata"]
    assert grounding["groundingChunks"][0]["web"]["uri"].startswith("https://")
    support = grounding["groundingSupports"][0]
    text = candidate["content"]["parts"][0]["text"].encode()
    assert text[: support["segment"]["endIndex"]].decode() == support["segment"]["text"]


def test_json_answers_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        },
        "required": ["name"],
    }
    response = _respond(
        "gemini-2.0-flash", _body(responseMimeType="application/json", responseJsonSchema=schema)
    )
    assert json.loads(_parts(response)[0]["text"]) == {
        "name": "sample name",
        "age": 1,
        "tags": ["a"],
    }
    plain = _respond("gemini-2.0-flash", _body(responseMimeType="application/json"))
    assert "answer" in json.loads(_parts(plain)[0]["text"])


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, payload = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        chunks[kind] = payload
        offset += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)
    return width, height


def test_image_output_is_a_valid_png_per_prompt() -> None:
    body = _body("Draw a kitten", responseModalities=["TEXT", "IMAGE"])
    parts = _parts(_respond("gemini-2.0-flash-preview-image-generation", body))
    assert "text" in parts[0]
    image = parts[1]["inlineData"]
    assert image["mimeType"] == "image/png"
    data = base64.b64decode(image["data"])
    assert _png_size(data) == (32, 32)
    assert data == png_for("Draw a kitten") != png_for("Draw a puppy")


def test_tts_output_is_pcm() -> None:
    body = _body("Say cheerfully: have a wonderful day", responseModalities=["AUDIO"])
    parts = _parts(_respond("gemini-2.5-flash-preview-tts", body))
    audio = parts[0]["inlineData"]
    assert audio["mimeType"] == "audio/L16;codec=pcm;rate=24000"
    pcm = base64.b64decode(audio["data"])
    assert len(pcm) == 2 * PCM_RATE // 10 * 6 == len(pcm_tone(6))
    assert max(struct.unpack(f"<{len(pcm) // 2}h", pcm)) > 1000


@pytest.mark.parametrize("model", ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"])
def test_image_models_draw_without_asking(model: str) -> None:
    parts = _parts(_respond(model, _body("Draw a kitten")))
    assert any(p.get("inlineData", {}).get("mimeType") == "image/png" for p in parts)


def test_cached_content_is_reported() -> None:
    body = _body()
    body["cachedContent"] = "cachedContents/abc"
    assert "cachedContentTokenCount" in _respond("gemini-2.0-flash", body)["usageMetadata"]
