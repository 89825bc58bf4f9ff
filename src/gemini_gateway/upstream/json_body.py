"""Gemini request bodies as JSON without one more copy of their large inline media.

``orjson.dumps(body)`` of a body carrying a 20 MB video makes a 27 MB bytes object next to the
27 MB base64 string it came from. ``encode_json_body`` serialises the body with each large
``inlineData.data`` string swapped for a placeholder, and returns the JSON around them plus the
strings themselves as a ``SplicedJsonPayload``: aiohttp sends it piece by piece (base64 encoded to
ASCII a megabyte at a time), with a Content-Length, and can send it again on a retry. Bodies
without such strings take the plain ``orjson.dumps`` path.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

SPLICE_MIN_CHARS = 1 << 20  # below this the copy costs less than the bookkeeping
_WRITE_CHUNK = 1 << 20
# ASCII bytes that JSON carries without escaping: a string made only of these is spliced as is.
_JSON_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')

Piece = bytes | str


class SplicedJsonPayload(Payload):
    """A JSON document as small bytes pieces and large ASCII strings, written in order."""

    _autoclose = True  # nothing to close: it only holds references

    def __init__(self, pieces: list[Piece]) -> None:
        super().__init__(pieces, content_type="application/json")
        self.pieces = pieces
        self._size = sum(len(piece) for piece in pieces)  # str pieces are ASCII: chars = bytes

    def chunks(self) -> Iterator[bytes]:
        """The document's bytes, no chunk larger than a megabyte beyond the small pieces."""
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            for start in range(0, len(piece), _WRITE_CHUNK):
                yield piece[start : start + _WRITE_CHUNK].encode("ascii")

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self.chunks()).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        left = self._size if content_length is None else content_length
        for chunk in self.chunks():
            if left <= 0:
                break
            if len(chunk) > left:
                chunk = chunk[:left]
            left -= len(chunk)
            await writer.write(chunk)


def encode_json_body(body: dict[str, Any]) -> bytes | SplicedJsonPayload:
    """``body`` as JSON: plain bytes, or a spliced payload when it carries large inline data."""
    if not _may_carry_large_inline(body):
        return orjson.dumps(body)
    large: list[str] = []
    swapped = _swap_large_inline(body, large)
    if not large:
        return orjson.dumps(body)
    token = "gg-splice-" + secrets.token_hex(16)
    placeholders = [f"{token}-{i}" for i in range(len(large))]
    document = orjson.dumps(swapped, default=lambda item: placeholders[item.index])
    found = sorted(
        (document.index(b'"' + placeholder.encode() + b'"'), i)
        for i, placeholder in enumerate(placeholders)
    )
    pieces: list[Piece] = []
    start = 0
    for at, i in found:
        pieces.append(document[start : at + 1])  # up to and including the opening quote
        pieces.append(large[i])
        start = at + 1 + len(placeholders[i])  # the closing quote starts the next piece
    pieces.append(document[start:])
    return SplicedJsonPayload(pieces)


def _may_carry_large_inline(body: dict[str, Any]) -> bool:
    """A quick look through the turns (where media are) before any copying."""
    try:
        system = body.get("systemInstruction")
        for content in (*(body.get("contents") or ()), *((system,) if system else ())):
            for part in content.get("parts") or ():
                inline = part.get("inlineData")
                if inline is not None and len(inline.get("data") or "") >= SPLICE_MIN_CHARS:
                    return True
    except (AttributeError, TypeError):
        return True  # an unusual shape: let the careful walk decide
    return False


class _Large:
    """Stands for one large string in the copy that orjson serialises (via ``default``)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _swap_large_inline(body: dict[str, Any], large: list[str]) -> dict[str, Any]:
    """A shallow copy of ``body`` with large inlineData strings replaced; ``large`` gets them."""
    copy: dict[str, Any] | None = None
    for field in ("systemInstruction", "contents"):
        value = body.get(field)
        contents = [value] if field == "systemInstruction" else value
        if not isinstance(contents, list):
            continue
        new_contents = []
        changed = False
        for content in contents:
            new_content = _swap_in_content(content, large)
            changed |= new_content is not content
            new_contents.append(new_content)
        if changed:
            copy = copy if copy is not None else dict(body)
            copy[field] = new_contents[0] if field == "systemInstruction" else new_contents
    return copy if copy is not None else body


def _swap_in_content(content: Any, large: list[str]) -> Any:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return content
    new_parts: list[Any] | None = None
    for index, part in enumerate(parts):
        inline = part.get("inlineData") if isinstance(part, dict) else None
        data = inline.get("data") if isinstance(inline, dict) else None
        if not isinstance(data, str) or len(data) < SPLICE_MIN_CHARS or not _plain_json(data):
            continue
        if new_parts is None:
            new_parts = list(parts)
        new_parts[index] = {**part, "inlineData": {**inline, "data": _Large(len(large))}}
        large.append(data)
    return content if new_parts is None else {**content, "parts": new_parts}


def _plain_json(text: str) -> bool:
    """True when ``text`` is ASCII that JSON writes unescaped (base64 always is)."""
    if not text.isascii():
        return False
    for start in range(0, len(text), _WRITE_CHUNK):
        if text[start : start + _WRITE_CHUNK].encode("ascii").translate(None, _JSON_PLAIN):
            return False
    return True
