"""Pure acceptance cases for the core mapping (issue 2): output of Gemini servers not ours."""

from __future__ import annotations

import pytest

from gemini_gateway.translate.response import candidate_indices
from gemini_gateway.upstream.sse import SSEParser


@pytest.mark.parametrize(("candidates", "expected"), [
    pytest.param([{}], [0], id="single-no-index"),
    pytest.param([{}, {}, {}], [0, 1, 2], id="none-have-index"),
    pytest.param([{"index": 1}, {}], [1, 0], id="proto3-omits-zero"),
    pytest.param([{}, {"index": 1}], [0, 1], id="in-order"),
    pytest.param([{"index": 2}, {}, {"index": 0}], [2, 1, 0], id="gap-filled"),
    pytest.param([{"index": 0}, {"index": 1}], [0, 1], id="all-explicit"),
])
def test_candidate_indices(candidates: list[dict[str, int]], expected: list[int]) -> None:
    assert candidate_indices(candidates) == expected


@pytest.mark.parametrize(("stream", "expected"), [
    pytest.param(b'data: {"a":1}\n', [b'{"a":1}'], id="lf-line-no-blank"),
    pytest.param(b'data: {"a":1}\r\n', [b'{"a":1}'], id="crlf-line-no-blank"),
    pytest.param(b'data:{"a":1}', [b'{"a":1}'], id="no-line-end-no-space"),
    pytest.param(b'data: {"a":1}\r\n\r\n', [], id="complete-nothing-left"),
    pytest.param(b'data: {"a":1}\n\n: keep-alive', [], id="trailing-comment"),
    pytest.param(b'data: {"a":1}\n\ndat', [b"dat"], id="cut-line-kept-for-the-caller"),
])
def test_sse_flush_at_end_of_stream(stream: bytes, expected: list[bytes]) -> None:
    parser = SSEParser()
    parser.feed(stream)
    assert parser.flush() == expected
    assert not parser.pending
