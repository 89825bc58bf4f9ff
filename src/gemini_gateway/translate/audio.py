"""Generated speech: Gemini's raw PCM → a WAV file clients can play.

Gemini TTS models answer with ``inlineData`` of type ``audio/L16;codec=pcm;rate=24000`` (sometimes
``audio/pcm``): headerless signed 16-bit samples, mono. OpenAI clients expect a playable file in
``message.audio.data``, so we wrap the samples in a RIFF/WAVE container. Google's own TTS samples
write the bytes straight into a WAV file, i.e. the samples are little-endian despite RFC 2586 saying
L16 is big-endian; we follow the samples and do not swap bytes.
"""

from __future__ import annotations

import io
import struct
import wave

DEFAULT_PCM_RATE = 24000
UNKNOWN_SIZE = 0xFFFFFFFF  # a WAV size field's "to the end of the stream"
_PCM_TYPES = frozenset({"audio/l16", "audio/pcm", "audio/x-pcm", "audio/raw"})


def _mime_params(mime: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; key=value; ...`` into the lower-cased type and its parameters."""
    head, *rest = mime.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return head.strip().lower(), params


def is_pcm_audio(mime: str) -> bool:
    """True for headerless PCM (``audio/L16``, ``audio/pcm``), which needs a WAV container."""
    return _mime_params(mime)[0] in _PCM_TYPES


def pcm_format(mime: str) -> tuple[int, int]:
    """(sample rate, channels) from a PCM MIME type's ``rate=`` and ``channels=`` parameters."""
    _, params = _mime_params(mime)
    rate = _positive_int(params.get("rate"), DEFAULT_PCM_RATE)
    channels = _positive_int(params.get("channels"), 1)
    return rate, channels


def _positive_int(text: str | None, default: int) -> int:
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


def pcm_to_wav(
    pcm: bytes, rate: int = DEFAULT_PCM_RATE, channels: int = 1, width: int = 2
) -> bytes:
    """Wrap raw little-endian PCM samples in a WAV (RIFF) container."""
    frame = channels * width
    if len(pcm) % frame:
        # A cut-off last sample would make some players reject the file: drop the partial frame.
        pcm = pcm[: len(pcm) - len(pcm) % frame]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def wav_stream_header(rate: int = DEFAULT_PCM_RATE, channels: int = 1, width: int = 2) -> bytes:
    """A 44-byte RIFF/WAVE header for PCM of unknown length (sizes 0xFFFFFFFF)."""
    block = channels * width
    return (
        b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, width * 8)
        + b"data" + struct.pack("<I", UNKNOWN_SIZE)
    )
