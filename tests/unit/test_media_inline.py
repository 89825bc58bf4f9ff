"""data: URLs (RFC 2397) and bare base64 as OpenAI clients send them, decoded once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gemini_gateway.errors import InvalidRequest, PayloadTooLarge
from gemini_gateway.media.inline import (
    decode_base64,
    decode_data_url,
    encoded_size,
    split_data_url,
)

PNG = (Path(__file__).parent.parent / "data" / "media" / "image.png").read_bytes()
# A tail whose base64 holds "+" and "/", so its URL-safe form differs from the standard one.
PNG_TAILED = PNG + b"\xfb\xff\xbf"
LIMIT = 1024 * 1024


def test_standard_base64_is_kept_for_reuse() -> None:
    text = base64.b64encode(PNG).decode()
    decoded = decode_base64(text, LIMIT)
    assert decoded.data == PNG
    assert decoded.base64_text is text  # the very same string: no second copy


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(base64.urlsafe_b64encode(PNG_TAILED).decode(), id="url-safe"),
        pytest.param(base64.b64encode(PNG_TAILED).decode().rstrip("="), id="unpadded"),
        pytest.param(base64.encodebytes(PNG_TAILED).decode(), id="line-wrapped"),
    ],
)
def test_lenient_base64_decodes_but_is_re_encoded(text: str) -> None:
    assert text != base64.b64encode(PNG_TAILED).decode()
    decoded = decode_base64(text, LIMIT)
    assert decoded.data == PNG_TAILED
    assert decoded.base64_text is None


@pytest.mark.parametrize("text", ["not base64 at all!", "abcde", "é"])
def test_undecodable_base64_is_400(text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_base64(text, LIMIT)
    assert info.value.status == 400
    assert text not in info.value.message


def test_too_large_is_413_before_and_after_decoding() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        decode_base64(base64.b64encode(b"x" * 3000).decode(), 2000)
    assert info.value.status == 413
    # Just over the limit: caught by the exact check after decoding.
    with pytest.raises(PayloadTooLarge):
        decode_base64(base64.b64encode(b"x" * 2001).decode(), 2000)
    assert decode_base64(base64.b64encode(b"x" * 2000).decode(), 2000).data == b"x" * 2000


def test_data_url_declared_type_is_reported_but_not_used() -> None:
    text = base64.b64encode(PNG).decode()
    mime, payload, is_base64 = split_data_url("data:image/GIF;name=a.gif;base64," + text)
    assert (mime, payload, is_base64) == ("image/gif", text, True)
    decoded = decode_data_url("data:application/octet-stream;base64," + text, LIMIT)
    assert decoded.data == PNG and decoded.base64_text == text


def test_percent_encoded_data_url() -> None:
    decoded = decode_data_url("data:text/plain,%25PDF-1.4%0A", LIMIT)
    assert decoded.data == b"%PDF-1.4\n"
    assert decoded.base64_text is None


def test_data_url_without_comma_is_400() -> None:
    with pytest.raises(InvalidRequest):
        decode_data_url("data:image/png;base64", LIMIT)


def test_encoded_size_matches_base64() -> None:
    for size in range(0, 10):
        assert encoded_size(size) == len(base64.b64encode(b"x" * size))
