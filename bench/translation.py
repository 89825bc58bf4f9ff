"""CPU of the gateway's pure translation alone: no sockets, no framework, no storage.

For one request of the benchmark, plain and streamed: the OpenAI body → Gemini request, and
Gemini's answer (the simulator's own bytes) → the OpenAI answer, JSON parsing and dumping
included. This is work no relay does and no server can save; set beside the leanest relay's CPU
(target b'), it bounds from below what any Python gateway doing this job costs on the machine.
The part that only reads Gemini's stream (split the SSE, parse each event's JSON) is timed apart:
no translator, however fast, can skip it.

Measured in the benchmark's own process with ``time.process_time`` over many rounds.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gemini_gateway.translate.call import ResponseContext
from gemini_gateway.translate.request import chat_request_to_gemini
from gemini_gateway.translate.response import gemini_response_to_chat
from gemini_gateway.translate.stream import ChatStreamTranslator
from gemini_gateway.upstream.sse import SSEParser


def _plain(body: dict[str, Any], answer: bytes) -> bytes:
    call = chat_request_to_gemini(body)
    orjson.dumps(call.body)
    chat = gemini_response_to_chat(orjson.loads(answer), call, ResponseContext("chatcmpl-b", 1))
    return orjson.dumps(chat)


def _stream(body: dict[str, Any], events: bytes) -> bytes:
    call = chat_request_to_gemini(body)
    orjson.dumps(call.body)
    translator = ChatStreamTranslator(call, ResponseContext("chatcmpl-b", 1))
    out = [
        b"data: " + orjson.dumps(chunk) + b"\n\n"
        for data in SSEParser().feed(events)
        for chunk in translator.feed(orjson.loads(data))
    ]
    out += [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in translator.finish()]
    return b"".join(out)


def _parse_only(body: dict[str, Any], events: bytes) -> None:
    """Only reading Gemini's stream: split the SSE, parse each event's JSON. Any gateway must."""
    for data in SSEParser().feed(events):
        orjson.loads(data)


def _cpu_ms(work: Any, body: dict[str, Any], upstream: bytes, rounds: int = 2000) -> float:
    for _ in range(200):  # warm up
        work(body, upstream)
    started = time.process_time()
    for _ in range(rounds):
        work(body, upstream)
    return (time.process_time() - started) / rounds * 1000


def translation_cpu_ms(
    plain_body: dict[str, Any], answer: bytes, stream_body: dict[str, Any], events: bytes
) -> tuple[float, float, float]:
    """CPU milliseconds per request: translation alone (plain, streamed), and of the streamed
    figure the part that only parses Gemini's events."""
    return (
        _cpu_ms(_plain, plain_body, answer),
        _cpu_ms(_stream, stream_body, events),
        _cpu_ms(_parse_only, stream_body, events),
    )
