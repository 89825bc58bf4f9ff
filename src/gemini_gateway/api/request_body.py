"""Request bodies that may carry large media: read once, parsed without extra full copies.

``request.read()`` grows a bytearray, copies it to bytes and keeps them on the request; then
``orjson.loads`` copies its input before parsing. With a 27 MB base64 video that is five copies at
the peak. ``read_body`` reads into one buffer sized from Content-Length that the request does not
keep, and ``parse_json`` lifts long plain strings (base64, data: URLs) out of the raw JSON, parses
the small rest and puts the strings back: the raw bytes and the parsed strings are then the only
two copies, and the raw bytes go as soon as the caller drops them.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.errors import InvalidRequest, PayloadTooLarge

LARGE_BODY = 1 << 20  # smaller bodies take aiohttp's and orjson's ordinary paths
LARGE_STRING = 256 * 1024  # strings from this length are lifted out before parsing


async def read_body(request: web.Request, max_bytes: int) -> bytes | bytearray:
    """The body in one buffer; a 413 when Content-Length says it is over ``max_bytes``."""
    size = request.content_length
    if size is None or size < LARGE_BODY or request.headers.get("Content-Encoding"):
        return await request.read()  # aiohttp enforces client_max_size here
    if size > max_bytes:
        raise PayloadTooLarge(f"The request body is larger than the {max_bytes}-byte limit.")
    buffer = bytearray(size)
    filled = 0
    with memoryview(buffer) as view:
        async for chunk in request.content.iter_any():
            end = filled + len(chunk)
            if end > size:
                raise InvalidRequest("The request body is longer than its Content-Length.")
            view[filled:end] = chunk
            filled = end
    if filled != size:
        raise InvalidRequest("The request body is shorter than its Content-Length.")
    return buffer


def parse_json(raw: bytes | bytearray) -> Any:
    """``orjson.loads(raw)``, but long plain strings are not copied twice; same errors."""
    if len(raw) < LARGE_BODY:
        return orjson.loads(raw)
    spans = _long_base64_strings(raw)
    if not spans:
        return orjson.loads(raw)
    token = "gg-lifted-" + secrets.token_hex(16)
    pieces: list[bytes] = []
    start = 0
    for i, (begin, end) in enumerate(spans):
        pieces.append(bytes(raw[start:begin]))
        pieces.append(f"{token}-{i}".encode())
        start = end
    pieces.append(bytes(raw[start:]))
    skeleton = orjson.loads(b"".join(pieces))
    strings = {f"{token}-{i}": span for i, span in enumerate(spans)}
    return _put_back(skeleton, strings, raw)


def _long_base64_strings(raw: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of the contents of long string values that are base64 or base64 data: URLs.

    Looks for quote-free windows (``rfind`` jumps over every quote of a window at once, so this
    takes about len(raw) / LARGE_STRING steps); a run of base64 characters between two quotes can
    only be the inside of a string in valid JSON. Anything else is left to orjson.
    """
    spans: list[tuple[int, int]] = []
    size = len(raw)
    at = 0
    while at + LARGE_STRING <= size:
        last = raw.rfind(b'"', at, at + LARGE_STRING)
        if last >= 0:
            at = last + 1
            continue
        begin = raw.rfind(b'"', 0, at) + 1
        end = raw.find(b'"', at + LARGE_STRING)
        if begin <= 0 or end < 0:
            break  # not inside a string: orjson will say what is wrong
        if _is_value(raw, begin, end) and _base64_like(raw, begin, end):
            spans.append((begin, end))
        at = end + 1
    return spans


def _is_value(raw: bytes | bytearray, begin: int, end: int) -> bool:
    """The quotes open and close a string value: not escaped, not an object key."""
    if begin >= 2 and raw[begin - 2] == 0x5C:  # \" opens it: it sits inside another string
        return False
    after = end + 1
    while after < len(raw) and raw[after] in b" \t\r\n":
        after += 1
    return after >= len(raw) or raw[after] != 0x3A  # ':' would make it a key


_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"
_PREFIX = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
_STEP = 1 << 20


def _base64_like(raw: bytes | bytearray, begin: int, end: int) -> bool:
    """Only base64 characters, after a ``data:…,`` prefix if there is one."""
    with memoryview(raw) as view:
        if bytes(view[begin : begin + 5]).lower() == b"data:":
            comma = raw.find(b",", begin, min(end, begin + 256))
            if comma < 0 or bytes(view[begin:comma]).translate(None, _PREFIX):
                return False
            begin = comma + 1
        for start in range(begin, end, _STEP):
            if bytes(view[start : min(end, start + _STEP)]).translate(None, _BASE64):
                return False
    return True


def _put_back(value: Any, strings: dict[str, tuple[int, int]], raw: bytes | bytearray) -> Any:
    if isinstance(value, str):
        span = strings.get(value)
        if span is None:
            return value
        with memoryview(raw) as view:
            return str(view[span[0] : span[1]], "ascii")  # decoded from the buffer, no copy
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (str, dict, list)):
                value[key] = _put_back(item, strings, raw)
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (str, dict, list)):
                value[index] = _put_back(item, strings, raw)
    return value
