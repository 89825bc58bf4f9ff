"""Sniffing: every promised format from a real sample file, and refusals that name what was found.

Samples come from tests/data/media/make_samples.sh (ffmpeg, sox, Pillow, pillow-heif). Expected
MIME names are Gemini's, as listed in the project's media issue and Gemini's supported-formats docs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gemini_gateway.errors import UnsupportedMedia
from gemini_gateway.media.sniff import SUPPORTED_MIME_TYPES, sniff_mime_type, supported_summary

SAMPLES = Path(__file__).parent.parent / "data" / "media"

SUPPORTED_SAMPLES = [
    ("image.png", "image/png"),
    ("image.jpg", "image/jpeg"),
    ("image.webp", "image/webp"),
    ("image.heic", "image/heic"),
    ("image.heif", "image/heif"),
    ("audio.wav", "audio/wav"),
    ("audio_sox.wav", "audio/wav"),
    ("audio.mp3", "audio/mp3"),
    ("audio_frames.mp3", "audio/mp3"),
    ("audio.aiff", "audio/aiff"),
    ("audio.aac", "audio/aac"),
    ("audio.ogg", "audio/ogg"),
    ("audio.flac", "audio/flac"),
    ("video.mp4", "video/mp4"),
    ("video.mpeg", "video/mpeg"),
    ("video.mpg", "video/mpeg"),
    ("video.mov", "video/mov"),
    ("video.avi", "video/avi"),
    ("video.flv", "video/x-flv"),
    ("video.webm", "video/webm"),
    ("video.wmv", "video/wmv"),
    ("video.3gp", "video/3gpp"),
    ("document.pdf", "application/pdf"),
]

UNSUPPORTED_SAMPLES = [
    ("image.gif", "GIF image"),
    ("image.bmp", "BMP image"),
    ("image.tiff", "TIFF image"),
    ("video.mkv", "Matroska"),
    ("video.ogv", "Theora"),
    ("video.ts", "transport stream"),
    ("audio.m4a", "M4A audio"),
    ("audio.wma", "WMA audio"),
]


@pytest.mark.parametrize(("name", "mime"), [pytest.param(n, m, id=n) for n, m in SUPPORTED_SAMPLES])
def test_sniffs_every_promised_format(name: str, mime: str) -> None:
    assert sniff_mime_type((SAMPLES / name).read_bytes()) == mime


def test_every_sample_format_is_promised() -> None:
    assert {m for _, m in SUPPORTED_SAMPLES} <= SUPPORTED_MIME_TYPES
    assert len(SUPPORTED_MIME_TYPES) == 21


@pytest.mark.parametrize(
    ("name", "found"), [pytest.param(n, f, id=n) for n, f in UNSUPPORTED_SAMPLES]
)
def test_refuses_other_formats_naming_them(name: str, found: str) -> None:
    with pytest.raises(UnsupportedMedia) as info:
        sniff_mime_type((SAMPLES / name).read_bytes())
    assert info.value.status == 400
    assert info.value.code == "unsupported_media_type"
    assert found in info.value.message
    assert "png, jpeg, webp, heic, heif" in info.value.message
    assert "x-flv" in info.value.message and "pdf" in info.value.message


def test_declared_type_is_irrelevant_only_bytes_count() -> None:
    # A PNG is a PNG whatever its name; a GIF renamed .png is still refused.
    gif = (SAMPLES / "image.gif").read_bytes()
    with pytest.raises(UnsupportedMedia, match="GIF"):
        sniff_mime_type(gif)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        pytest.param(b"", "empty data", id="empty"),
        pytest.param(b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page", id="html"),
        pytest.param(b'{"error": "nope"}', "JSON text", id="json"),
        pytest.param(b"hello world\n", "plain text", id="text"),
        pytest.param(b'<?xml version="1.0"?><svg xmlns="x"/>', "SVG image", id="svg"),
        pytest.param(b"PK\x03\x04rest-of-zip", "ZIP archive", id="zip"),
        pytest.param(b"\x00\x01\x02\x03\xfe\xfd\xfc\xfb", "00 01 02 03", id="unknown-hex"),
        pytest.param(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1", "AVIF", id="avif"),
    ],
)
def test_describes_unsupported_data(data: bytes, found: str) -> None:
    with pytest.raises(UnsupportedMedia) as info:
        sniff_mime_type(data)
    assert found in info.value.message


def test_id3_tag_followed_by_adts_is_aac() -> None:
    adts = (SAMPLES / "audio.aac").read_bytes()
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 10]) + b"\x00" * 10
    assert sniff_mime_type(tag + adts) == "audio/aac"


def test_id3_tag_followed_by_mp3_frames_is_mp3() -> None:
    frames = (SAMPLES / "audio_frames.mp3").read_bytes()
    tag = b"ID3\x03\x00\x00" + bytes([0, 0, 0, 4]) + b"\x00" * 4
    assert sniff_mime_type(tag + frames) == "audio/mp3"


def test_mpeg_layer_two_is_not_mp3() -> None:
    # 0xFFFD: MPEG-1, Layer II, no CRC; bitrate index 9, 44.1 kHz.
    with pytest.raises(UnsupportedMedia, match="layer II"):
        sniff_mime_type(b"\xff\xfd\x90\x00" + b"\x00" * 100)


def test_quicktime_without_ftyp_is_mov() -> None:
    assert sniff_mime_type(b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat") == "video/mov"


def test_heif_with_generic_brand_and_heic_compatible_is_heif() -> None:
    data = (SAMPLES / "image.heif").read_bytes()
    assert data[8:12] == b"mif1"
    assert sniff_mime_type(data) == "image/heif"


def test_sniff_accepts_memoryview_and_bytearray() -> None:
    data = (SAMPLES / "image.png").read_bytes()
    assert sniff_mime_type(memoryview(data)) == "image/png"
    assert sniff_mime_type(bytearray(data)) == "image/png"


def test_summary_lists_every_promised_format() -> None:
    summary = supported_summary()
    for mime in SUPPORTED_MIME_TYPES:
        assert mime.split("/", 1)[1] in summary
