"""SSEParser against the WHATWG event-stream rules Gemini's alt=sse output relies on."""

from __future__ import annotations

import orjson
import pytest

from gemini_gateway.upstream.sse import SSEParser

# Two events as streamGenerateContent?alt=sse sends them: one JSON object per `data:` line,
# each event ended by a blank line, CRLF line ends.
GEMINI_STREAM = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},'
    b'"index": 0}],"modelVersion": "gemini-2.5-flash"}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": "lo"}],"role": "model"},'
    b'"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 3,'
    b'"candidatesTokenCount": 2,"totalTokenCount": 5}}\r\n\r\n'
)


def _texts(events: list[bytes]) -> list[str]:
    return [orjson.loads(e)["candidates"][0]["content"]["parts"][0]["text"] for e in events]


def test_gemini_stream_in_one_read() -> None:
    parser = SSEParser()
    assert _texts(parser.feed(GEMINI_STREAM)) == ["Hel", "lo"]
    assert not parser.pending


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64], ids=lambda s: f"reads-of-{s}")
def test_any_split_gives_the_same_events(size: int) -> None:
    parser = SSEParser()
    events: list[bytes] = []
    for i in range(0, len(GEMINI_STREAM), size):
        events += parser.feed(GEMINI_STREAM[i : i + size])
    assert _texts(events) == ["Hel", "lo"]
    assert not parser.pending


def test_lf_line_ends() -> None:
    assert SSEParser().feed(b'data: {"a":1}\n\ndata: {"a":2}\n\n') == [b'{"a":1}', b'{"a":2}']


def test_crlf_split_between_reads() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a":1}\r') == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [b'{"a":1}']


def test_multi_line_data_joins_with_newline() -> None:
    events = SSEParser().feed(b'data: {"a":\ndata: 1}\n\n')
    assert events == [b'{"a":\n1}']
    assert orjson.loads(events[0]) == {"a": 1}


def test_comments_and_other_fields_are_ignored() -> None:
    stream = b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\nretry: 10\r\ndata: {}\r\n\r\n"
    assert SSEParser().feed(stream) == [b"{}"]


def test_no_space_after_colon_and_bare_data_field() -> None:
    # "data:x" keeps x whole; a "data" line with no colon is an empty data line.
    assert SSEParser().feed(b"data:x\n\n") == [b"x"]
    assert SSEParser().feed(b"data\ndata: y\n\n") == [b"\ny"]
    assert SSEParser().feed(b"data:  two spaces\n\n") == [b" two spaces"]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert SSEParser().feed(b"\r\n\r\n\n") == []


def test_large_event_in_many_reads() -> None:
    payload = b'{"inlineData": "' + b"A" * 3_000_000 + b'"}'
    parser = SSEParser()
    stream = b"data: " + payload + b"\r\n\r\n"
    events: list[bytes] = []
    for i in range(0, len(stream), 16384):
        events += parser.feed(stream[i : i + 16384])
    assert events == [payload]


def test_pending_marks_a_cut_event() -> None:
    parser = SSEParser()
    parser.feed(b'data: {"a":1}\r\n\r\ndata: {"candid')
    assert parser.pending
    parser = SSEParser()
    parser.feed(b'data: {"a":1}\r\n')  # a data line without its blank line
    assert parser.pending
