"""Media type from the bytes themselves: magic numbers → the MIME name Gemini expects.

A client's declared MIME type, data-URL prefix, file name or ``input_audio.format`` is never
trusted: the product page promises exactly the formats in ``SUPPORTED``, and Gemini rejects or
misreads anything sent under the wrong name. Container formats are told apart by their inner
markers: the ISO-BMFF ``ftyp`` brand (mp4 / mov / 3gpp / heic / heif), the RIFF form type (wav /
avi / webp), the EBML DocType (webm vs Matroska), the ASF stream type (wmv vs wma) and the first
Ogg packet (audio codecs vs Theora video). Anything else raises ``UnsupportedMedia`` naming what
was found, so a client that sent a GIF or an HTML error page learns why.
"""

from __future__ import annotations

import codecs

from gemini_gateway.errors import UnsupportedMedia

# Gemini's MIME names, grouped as the product page lists them.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "images": ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"),
    "audio": ("audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac"),
    "video": (
        "video/mp4", "video/mpeg", "video/mov", "video/avi", "video/x-flv", "video/mpg",
        "video/webm", "video/wmv", "video/3gpp",
    ),
    "documents": ("application/pdf",),
}
SUPPORTED_MIME_TYPES: frozenset[str] = frozenset(m for group in SUPPORTED.values() for m in group)

# Bytes looked at; ASF headers (wmv vs wma) are the only markers that may sit further in.
HEAD_BYTES = 64 * 1024

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2", b"heif"}
_AVIF_BRANDS = {b"avif", b"avis"}
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
    b"mp42", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"dash", b"MSNV", b"f4v ", b"NDAS",
    b"XAVC", b"iso ",
}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# Top-level QuickTime atoms that may open a .mov written without an ftyp box.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
# ASF stream-type GUIDs (BC19EFC0-5B4D-11CF-… video, F8699E40-5B4D-11CF-… audio), little-endian.
_ASF_VIDEO = bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b")
_ASF_AUDIO = bytes.fromhex("409e69f84d5bcf11a8fd00805f5c442b")

_OGG_AUDIO_CODECS = (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")


def sniff_mime_type(data: bytes | bytearray | memoryview) -> str:
    """Gemini's MIME name for ``data``, or ``UnsupportedMedia`` naming what it looks like."""
    head = bytes(data[:HEAD_BYTES])
    found = _identify(head)
    if found in SUPPORTED_MIME_TYPES:
        return found
    raise UnsupportedMedia(
        f"Unsupported media type: found {found}. Supported: {supported_summary()}.",
        param="messages",
    )


def supported_summary() -> str:
    """The promise, in words: "images png, jpeg, …; audio wav, …; video mp4, …; documents pdf"."""
    groups = []
    for name, mimes in SUPPORTED.items():
        groups.append(name + " " + ", ".join(m.split("/", 1)[1] for m in mimes))
    return "; ".join(groups)


def _identify(head: bytes) -> str:
    """A supported MIME name, or a human description of an unsupported format."""
    if not head:
        return "empty data"
    for check in (_images, _riff_and_iff, _iso_bmff, _audio, _video, _documents):
        found = check(head)
        if found:
            return found
    return _describe_unknown(head)


def _images(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return "a BMP image"
    if head.startswith((b"II*\0", b"MM\0*")):
        return "a TIFF image"
    if head.startswith(b"\0\0\1\0") and len(head) > 6 and head[4] > 0:
        return "an ICO image"
    if head.startswith((b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n")):
        return "a JPEG XL image"
    if head.startswith(b"\0\0\0\x0cjP  \r\n\x87\n"):
        return "a JPEG 2000 image"
    if head.startswith(b"8BPS"):
        return "a Photoshop image"
    return None


def _riff_and_iff(head: bytes) -> str | None:
    if head[:4] in (b"RIFF", b"RF64") and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return "image/webp"
        if form == b"WAVE":
            return "audio/wav"
        if form in (b"AVI ", b"AVIX"):
            return "video/avi"
        return f"a RIFF file of form {_printable(form)}"
    if head.startswith(b"FORM") and len(head) >= 12:
        if head[8:12] in (b"AIFF", b"AIFC"):
            return "audio/aiff"
        return f"an IFF file of form {_printable(head[8:12])}"
    return None


def _iso_bmff(head: bytes) -> str | None:
    """mp4 / mov / 3gpp / heic / heif by the ftyp major brand (compatible brands as a fallback)."""
    if len(head) < 12:
        return None
    if head[4:8] != b"ftyp":
        if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
            return "video/mov"
        return None
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(max(size, 16), len(head)) - 3, 4)}
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS:
        if compatible & _AVIF_BRANDS and not compatible & _HEIC_BRANDS:
            return "an AVIF image"
        return "image/heif"
    if major in _AVIF_BRANDS:
        return "an AVIF image"
    if major == b"qt  ":
        return "video/mov"
    if major.startswith((b"3gp", b"3g2")):
        return "video/3gpp"
    if major in _M4A_BRANDS:
        return "M4A audio (AAC in an MP4 container)"
    if major in _MP4_BRANDS or compatible & _MP4_BRANDS:
        return "video/mp4"
    if major == b"crx ":
        return "a Canon raw image"
    return f"an ISO media file of brand {_printable(major)}"


def _audio(head: bytes) -> str | None:
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        first_page = head[:512]
        if any(codec in first_page for codec in _OGG_AUDIO_CODECS):
            return "audio/ogg"
        if b"\x80theora" in first_page:
            return "Ogg Theora video"
        return "an Ogg stream of an unknown codec"
    if head.startswith(b"ID3") and len(head) >= 10:
        # An ID3v2 tag may precede MP3 frames or (rarely) ADTS AAC: look past it.
        size = _syncsafe(head[6:10]) + 10 + (10 if head[5] & 0x10 else 0)
        after = head[size:].lstrip(b"\0")
        return _mpeg_audio_frame(after) if len(after) >= 4 else "audio/mp3"
    found = _mpeg_audio_frame(head)
    if found:
        return found
    if head.startswith(b"#!AMR"):
        return "AMR audio"
    if head.startswith(b"MThd"):
        return "a MIDI file"
    if head.startswith(b"caff"):
        return "a Core Audio (CAF) file"
    return None


def _mpeg_audio_frame(head: bytes) -> str | None:
    """ADTS (AAC) or an MPEG audio frame header at the start of ``head``."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:  # 12-bit sync, layer 00: ADTS
        return "audio/aac"
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate == 15 or rate == 3:
        return None
    if layer == 1:  # layer bits 01 are Layer III
        return "audio/mp3"
    return f"MPEG audio layer {'I' * (4 - layer)}"


def _video(head: bytes) -> str | None:
    if head.startswith((b"\0\0\1\xba", b"\0\0\1\xb3")):
        # MPEG program stream (.mpeg/.mpg) or a bare MPEG-1/2 video stream: one Gemini name.
        return "video/mpeg"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = _ebml_doctype(head[:256])
        if doctype == b"webm":
            return "video/webm"
        if doctype == b"matroska":
            return "a Matroska (mkv) file"
        return "an EBML file of an unknown type"
    if head.startswith(_ASF_HEADER):
        header_size = int.from_bytes(head[16:24], "little")
        header = head[: max(header_size, 30)]
        if _ASF_AUDIO in header and _ASF_VIDEO not in header:
            return "WMA audio"
        return "video/wmv"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "an MPEG transport stream"
    return None


def _documents(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an Office document)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "a 7-Zip archive"
    if head.startswith(b"Rar!"):
        return "a RAR archive"
    return None


def _describe_unknown(head: bytes) -> str:
    """Text kinds by their first characters; otherwise the first bytes in hex."""
    try:
        # Incremental: a multi-byte character cut at byte 512 is not a decoding error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head[:512])
    except UnicodeDecodeError:
        text = ""
    text = text.lstrip("\ufeff \t\r\n").lower()
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        if text.startswith(("<!doctype html", "<html")):
            return "an HTML page"
        if text.startswith("<svg") or text.startswith("<?xml") and "<svg" in text:
            return "an SVG image"
        if text.startswith("<?xml"):
            return "an XML document"
        if text.startswith(("{", "[")):
            return "JSON text"
        return "plain text"
    return "unrecognised data starting with bytes " + head[:8].hex(" ")


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType string (element 0x4282) of an EBML header, read as a raw vint-sized string."""
    at = head.find(b"\x42\x82", 4)
    if at < 0 or at + 3 > len(head):
        return None
    first = head[at + 2]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    size = first & (0xFF >> length)
    for b in head[at + 3 : at + 2 + length]:
        size = size << 8 | b
    start = at + 2 + length
    return head[start : start + size].rstrip(b"\0")


def _syncsafe(raw: bytes) -> int:
    value = 0
    for b in raw:
        value = value << 7 | (b & 0x7F)
    return value


def _printable(raw: bytes) -> str:
    return repr(raw.decode("latin-1"))
