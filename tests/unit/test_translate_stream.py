"""Gemini SSE events → chat.completion.chunk objects; every chunk checked against OpenAI's schema.

Events follow Google's streamGenerateContent output (``alt=sse``): each ``data:`` line is a whole
GenerateContentResponse with the next parts, usageMetadata on every event (counts only at the end
on some backends), finishReason on the last, often with an empty text part carrying a signature.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

from gemini_gateway.translate.call import GeminiCall, ModelSpec, ResponseContext
from gemini_gateway.translate.stream import ChatStreamTranslator
from tests.unit.openai_schema import assert_valid


def make_call(requested: str = "gemini-2.5-flash", **kwargs: Any) -> GeminiCall:
    return GeminiCall(model=ModelSpec(requested=requested, upstream="gemini-2.5-flash"), body={},
                      stream=True, **kwargs)


def make_ctx(**kwargs: Any) -> ResponseContext:
    return ResponseContext(completion_id="chatcmpl-stream1", created=1_750_000_123, **kwargs)


def run(events: list[dict[str, Any]], call: GeminiCall | None = None,
        ctx: ResponseContext | None = None) -> tuple[list[dict[str, Any]], ChatStreamTranslator]:
    translator = ChatStreamTranslator(call or make_call(), ctx or make_ctx())
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks += translator.feed(event)
    chunks += translator.finish()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        json.dumps(chunk)
        assert chunk["id"] == "chatcmpl-stream1"
        assert chunk["created"] == 1_750_000_123
        assert chunk["object"] == "chat.completion.chunk"
    return chunks, translator


def choice_chunks(chunks: list[dict[str, Any]], index: int = 0) -> list[dict[str, Any]]:
    return [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index]


def joined(chunks: list[dict[str, Any]], field: str, index: int = 0) -> str:
    return "".join(c["delta"].get(field) or "" for c in choice_chunks(chunks, index))


def event(*parts: dict[str, Any], finish: str | None = None, index: int | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        candidate["finishReason"] = finish
    if index is not None:
        candidate["index"] = index
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


# A real stream (gemini-3.1-flash-lite via Vertex): partial usageMetadata until the last event,
# whose only part is an empty text with a thoughtSignature.
REAL_STREAM = [
    event({"text": "Hello!"}, usage={"trafficType": "ON_DEMAND"}),
    event({"text": " How can I help you today"}, usage={"trafficType": "ON_DEMAND"}),
    event({"text": "?"}, usage={"trafficType": "ON_DEMAND"}),
    event({"text": "", "thoughtSignature": "AY89a18iOcFus5wr5bW5xN6zZ4aUiCyhgmg6HE2YjtYDV/dwZ5o="},
          finish="STOP",
          usage={"promptTokenCount": 1, "candidatesTokenCount": 9, "totalTokenCount": 10,
                 "trafficType": "ON_DEMAND",
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1}],
                 "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]}),
]


def test_text_stream_relays_each_event() -> None:
    chunks, translator = run(REAL_STREAM, make_call("gemini-3.1-flash-lite-preview"))
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": "Hello!"},
        {"content": " How can I help you today"},
        {"content": "?"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert all(c["model"] == "gemini-3.1-flash-lite-preview" for c in chunks)
    assert all("usage" not in c for c in chunks)  # include_usage off: no usage field at all
    assert "AY89a18" not in json.dumps(chunks)
    assert translator.usage is not None
    assert translator.usage["total_tokens"] == 10


def test_each_feed_returns_at_once() -> None:
    translator = ChatStreamTranslator(make_call(), make_ctx())
    first = translator.feed(REAL_STREAM[0])
    assert len(first) == 1 and first[0]["choices"][0]["delta"]["content"] == "Hello!"


def test_include_usage_adds_final_usage_chunk() -> None:
    chunks, _ = run(REAL_STREAM, make_call(include_usage=True))
    *body, last = chunks
    assert all(c["usage"] is None for c in body)
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 1
    assert last["usage"]["completion_tokens"] == 9
    assert last["usage"]["total_tokens"] == 10


def test_usage_uses_last_event_with_counts() -> None:
    events = [
        event({"text": "a"}, usage={"promptTokenCount": 5, "candidatesTokenCount": 1,
                                    "totalTokenCount": 6}),
        event({"text": "b"}, finish="STOP",
              usage={"promptTokenCount": 5, "candidatesTokenCount": 2,
                     "thoughtsTokenCount": 10, "totalTokenCount": 17}),
        {"usageMetadata": {"trafficType": "ON_DEMAND"}},  # no counts: keeps the previous
    ]
    chunks, translator = run(events, make_call(include_usage=True))
    assert translator.usage is not None
    assert translator.usage["completion_tokens"] == 12
    assert translator.usage["completion_tokens_details"]["reasoning_tokens"] == 10
    assert chunks[-1]["usage"] == translator.usage


THINKING_STREAM = [
    event({"text": "**Weighing** the options", "thought": True}),
    event({"text": ", then deciding.", "thought": True}),
    event({"text": "The answer"}),
    event({"text": " is 42."}, finish="STOP",
          usage={"promptTokenCount": 4, "candidatesTokenCount": 5, "thoughtsTokenCount": 60,
                 "totalTokenCount": 69}),
]


def test_stream_thoughts_as_reasoning_content() -> None:
    chunks, _ = run(THINKING_STREAM, make_call(show_thoughts=True))
    assert joined(chunks, "reasoning_content") == "**Weighing** the options, then deciding."
    assert joined(chunks, "content") == "The answer is 42."
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant", "reasoning_content": "**Weighing** the options"}


def test_stream_thoughts_as_think_tags_across_chunks() -> None:
    chunks, _ = run(THINKING_STREAM, make_call(show_thoughts=True), make_ctx(think_tags=True))
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert contents == [
        "<think>\n**Weighing** the options",
        ", then deciding.",
        "\n</think>\n\nThe answer",
        " is 42.",
    ]
    assert joined(chunks, "reasoning_content") == ""


def test_stream_thoughts_hidden_by_default() -> None:
    chunks, _ = run(THINKING_STREAM)
    assert joined(chunks, "content") == "The answer is 42."
    assert "Weighing" not in json.dumps(chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "The answer"}


def test_open_think_tag_closed_at_finish() -> None:
    chunks, _ = run([event({"text": "still thinking", "thought": True})],
                    make_call(show_thoughts=True), make_ctx(think_tags=True))
    assert joined(chunks, "content") == "<think>\nstill thinking\n</think>\n\n"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_without_finish_reason_is_closed_by_finish() -> None:
    chunks, _ = run([event({"text": "abc"})])
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]
    assert chunks[-1]["choices"][0]["delta"] == {}


def test_stream_function_call() -> None:
    events = [
        event({"functionCall": {"name": "get_current_weather",
                                "args": {"location": "Boston, MA"}}}),
        event({"functionCall": {"name": "get_time", "args": {}}}, finish="STOP"),
    ]
    chunks, _ = run(events)
    first, second, ending = (c["choices"][0] for c in chunks)
    assert first["delta"]["role"] == "assistant"
    [call_a] = first["delta"]["tool_calls"]
    [call_b] = second["delta"]["tool_calls"]
    assert (call_a["index"], call_b["index"]) == (0, 1)
    assert call_a["function"]["name"] == "get_current_weather"
    assert json.loads(call_a["function"]["arguments"]) == {"location": "Boston, MA"}
    assert call_a["id"].startswith("call_") and call_a["id"] != call_b["id"]
    assert second["finish_reason"] is None  # as OpenAI: the finish comes in a chunk of its own
    assert ending["delta"] == {} and ending["finish_reason"] == "tool_calls"


def test_stream_blocked_prompt() -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
               "usageMetadata": {"promptTokenCount": 12559, "totalTokenCount": 12559}}
    chunks, translator = run([blocked], make_call(include_usage=True))
    assert len(chunks) == 2
    choice = chunks[0]["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["delta"]["role"] == "assistant"
    assert "PROHIBITED_CONTENT" in choice["delta"]["refusal"]
    assert chunks[1]["usage"]["prompt_tokens"] == 12559


def test_empty_stream_still_ends_a_choice() -> None:
    chunks, _ = run([])
    assert len(chunks) == 1
    assert chunks[0]["choices"][0]["finish_reason"] == "content_filter"


def test_safety_stop_mid_stream() -> None:
    events = [event({"text": "Step one is"}),
              {"candidates": [{"finishReason": "SAFETY", "index": 0}]}]
    chunks, _ = run(events)
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "content_filter"
    assert "SAFETY" in last["delta"]["refusal"]
    assert len(chunks) == 2  # finish() adds nothing to a finished choice


def test_malformed_function_call_in_stream() -> None:
    events = [{"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL",
                               "finishMessage": "Malformed function call: foo(", "index": 0}]}]
    chunks, _ = run(events)
    choice = chunks[0]["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert "MALFORMED_FUNCTION_CALL" in choice["delta"]["refusal"]
    assert "foo(" in choice["delta"]["refusal"]


def test_several_candidates_keep_their_index() -> None:
    events = [
        {"candidates": [
            {"content": {"parts": [{"text": "A1"}]}},
            {"content": {"parts": [{"text": "B1"}]}, "index": 1},
        ]},
        {"candidates": [
            {"content": {"parts": [{"text": "A2"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "B2"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ]},
    ]
    chunks, _ = run(events, make_call(n=2))
    assert all(len(c["choices"]) == 1 for c in chunks)
    for index, text, finish in ((0, "A1A2", "stop"), (1, "B1B2", "length")):
        mine = choice_chunks(chunks, index)
        assert joined(chunks, "content", index) == text
        assert mine[0]["delta"]["role"] == "assistant"
        assert all("role" not in c["delta"] for c in mine[1:])
        assert [c["finish_reason"] for c in mine] == [None, finish]


def test_stream_image() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    events = [event({"text": "A cat:"}),
              event({"inlineData": {"mimeType": "image/png", "data": png}}, finish="STOP")]
    chunks, _ = run(events, ctx=make_ctx(media_url=lambda mime, b64: "https://gw.example/f/1"))
    delta = chunks[1]["choices"][0]["delta"]
    assert delta["content"] == "\n\n![image](https://gw.example/f/1)"
    assert delta["images"] == [{"type": "image_url",
                                "image_url": {"url": "https://gw.example/f/1"}}]


def test_stream_tts_audio() -> None:
    mime = "audio/L16;codec=pcm;rate=24000"
    pieces = [b"\x01\x00\x02\x00", b"\x03\x00\x04\x00"]
    events = [event({"inlineData": {"mimeType": mime, "data": base64.b64encode(p).decode()}},
                    finish="STOP" if i else None) for i, p in enumerate(pieces)]
    chunks, _ = run(events, make_call(extra={"generated_media_ttl": 60}))
    audios = [c["choices"][0]["delta"]["audio"] for c in chunks if "audio" in
              c["choices"][0]["delta"]]
    assert len(audios) == 1  # one WAV of all the pieces, when the choice ends (docs/media-out.md)
    assert audios[0]["expires_at"] == 1_750_000_123 + 60
    with wave.open(io.BytesIO(base64.b64decode(audios[0]["data"])), "rb") as reader:
        assert reader.getframerate() == 24000
        assert reader.readframes(reader.getnframes()) == b"".join(pieces)
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert [c for c in contents if c] == [contents[-1]]
    assert contents[-1].startswith("[audio](data:audio/wav;")


def test_stream_logprobs() -> None:
    logprobs = {"chosenCandidates": [{"token": "Hi", "logProbability": -0.5}],
                "topCandidates": [{"candidates": [{"token": "Hi", "logProbability": -0.5}]}]}
    source = [{"candidates": [{"content": {"parts": [{"text": "Hi"}]},
                               "logprobsResult": logprobs, "finishReason": "STOP"}]}]
    chunks, _ = run(source, make_call(want_logprobs=True))
    content = chunks[0]["choices"][0]["logprobs"]["content"]
    assert content[0]["token"] == "Hi" and content[0]["logprob"] == -0.5
    chunks, _ = run(source)
    assert chunks[0]["choices"][0]["logprobs"] is None


def test_usage_only_event_produces_no_chunk() -> None:
    translator = ChatStreamTranslator(make_call(), make_ctx())
    assert translator.feed({"usageMetadata": {"promptTokenCount": 3}}) == []
    assert translator.feed(event({"text": ""})) == []
    assert translator.usage is not None and translator.usage["prompt_tokens"] == 3
