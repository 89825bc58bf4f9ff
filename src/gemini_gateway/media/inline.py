"""Inline media as clients send it: data: URLs and bare base64, decoded once.

Gemini's ``inlineData.data`` wants standard base64 again, so ``decode_base64`` also says whether
the client's text already *is* standard, padded base64: then the resolver sends the client's own
string on and never re-encodes a 20 MB video (one decode, no second copy of the text).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from gemini_gateway.errors import InvalidRequest, PayloadTooLarge

_CHECK_CHUNK = 1 << 20  # a multiple of 4: padding can only end the last chunk
_HEAD_BYTES = 64 * 1024  # more than sniff.py reads


@dataclass(frozen=True)
class DecodedMedia:
    data: bytes
    base64_text: str | None  # the client's string when it is standard base64 of ``data``


def split_data_url(url: str) -> tuple[str, str, bool]:
    """``data:[<mime>][;…][;base64],<payload>`` → (declared mime, payload, is_base64) (RFC 2397)."""
    comma = url.find(",")
    if not url[:5].lower() == "data:" or comma < 0:
        raise InvalidRequest("A data: URL must look like data:<type>;base64,<data>.",
                             param="messages")
    header = url[5:comma]
    params = [p.strip() for p in header.split(";")]
    is_base64 = len(params) > 1 and params[-1].lower() == "base64"
    return params[0].lower(), url[comma + 1 :], is_base64


def decode_data_url(url: str, max_bytes: int) -> DecodedMedia:
    """The bytes of a data: URL, base64 or percent-encoded; the declared type is ignored."""
    _, payload, is_base64 = split_data_url(url)
    if is_base64:
        return decode_base64(payload, max_bytes)
    data = unquote_to_bytes(payload)
    _check_size(len(data), max_bytes)
    return DecodedMedia(data, None)


def decode_base64(text: str, max_bytes: int) -> DecodedMedia:
    """Standard base64 fast; URL-safe, unpadded or line-wrapped base64 accepted too; else 400."""
    # Refuse clearly oversized text before decoding it; line breaks may pad it a little.
    _check_size(len(text) // 4 * 3, max_bytes + max_bytes // 16)
    try:
        # binascii reads an ASCII str in place; base64.b64decode would first copy it to bytes.
        data = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    else:
        _check_size(len(data), max_bytes)
        return DecodedMedia(data, text)
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        data = binascii.a2b_base64(cleaned, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(
            "Media data is neither a data: URL, an http(s) URL nor valid base64.",
            param="messages",
        ) from exc
    _check_size(len(data), max_bytes)
    return DecodedMedia(data, None)


def check_base64(text: str, max_bytes: int) -> bytes | None:
    """The first decoded bytes when ``text`` is standard padded base64 within the limit, else None.

    Checks the text a megabyte at a time and keeps none of it: when the text is sent on as
    ``inlineData`` as it is, the decoded copy was only ever needed for its first bytes.
    """
    _check_size(len(text) // 4 * 3, max_bytes + max_bytes // 16)
    if len(text) % 4:
        return None
    head = b""
    size = 0
    try:
        for start in range(0, len(text), _CHECK_CHUNK):
            end = start + _CHECK_CHUNK
            if end < len(text) and text[end - 1] == "=":
                return None  # padding before the end: the whole text is not strict base64
            decoded = binascii.a2b_base64(text[start:end], strict_mode=True)
            size += len(decoded)
            if not start:
                head = decoded[:_HEAD_BYTES]
    except (binascii.Error, ValueError):
        return None
    _check_size(size, max_bytes)
    return head


def encoded_size(size: int) -> int:
    """Length of the standard base64 text of ``size`` bytes."""
    return (size + 2) // 3 * 4


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(
            f"A media item is larger than the {max_bytes}-byte limit.", param="messages"
        )
