"""Raw speech samples → the audio formats OpenAI clients ask for: wav, pcm, mp3, flac, opus.

Pure computation, no I/O: the speech route streams what ``feed`` returns as samples arrive, the
chat translators encode a whole answer at once (``encode``). mp3 needs ``lameenc`` (LAME), flac
and opus need ``soundfile`` (libsndfile); both are dependencies, imported only when used, and
``available_formats`` says what this installation can make. aac has no encoder here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
from typing import Protocol

from gemini_gateway.translate.audio import pcm_to_wav, wav_stream_header

ALWAYS_FORMATS = ("wav", "pcm")  # need no encoder

MP3_BITRATE_KBPS = 64  # speech at 24 kHz mono: 64 kb/s is transparent enough, files stay small


class AudioEncoder(Protocol):
    content_type: str

    def feed(self, pcm: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class PcmEncoder:
    """Raw samples, as they come."""

    def __init__(self, rate: int, channels: int) -> None:
        self.content_type = f"audio/pcm;rate={rate};channels={channels}"

    def feed(self, pcm: bytes) -> bytes:
        return pcm

    def finish(self) -> bytes:
        return b""


class WavEncoder(PcmEncoder):
    """A streaming WAV: the header (length unknown) first, then the samples."""

    def __init__(self, rate: int, channels: int) -> None:
        self.content_type = "audio/wav"
        self._header: bytes | None = wav_stream_header(rate, channels)

    def feed(self, pcm: bytes) -> bytes:
        header, self._header = self._header or b"", None
        return header + pcm

    def finish(self) -> bytes:
        header, self._header = self._header or b"", None
        return header


class Mp3Encoder:
    """MP3 through LAME (``lameenc``), fed whole 16-bit frames."""

    def __init__(self, rate: int, channels: int) -> None:
        lameenc = importlib.import_module("lameenc")  # optional: not every install has it
        self.content_type = "audio/mpeg"
        self._frame = 2 * channels
        self._carry = b""
        self._lame = lameenc.Encoder()
        self._lame.set_bit_rate(MP3_BITRATE_KBPS)
        self._lame.set_in_sample_rate(rate)
        self._lame.set_channels(channels)
        self._lame.set_quality(2)

    def feed(self, pcm: bytes) -> bytes:
        pcm = self._carry + pcm
        whole = len(pcm) - len(pcm) % self._frame
        self._carry = pcm[whole:]
        return bytes(self._lame.encode(pcm[:whole])) if whole else b""

    def finish(self) -> bytes:
        return bytes(self._lame.flush())


class SndfileEncoder:
    """FLAC or Ogg Opus through libsndfile (``soundfile``), sent whole when the speech ends.

    Both containers put totals in their headers (FLAC: the sample count and checksum) that are
    known only at the end; libsndfile, and readers built on it, cannot read a FLAC stream whose
    totals were left unknown. So the file is made in memory and leaves in one piece.
    """

    _KINDS = {"flac": ("FLAC", "PCM_16", "audio/flac"), "opus": ("OGG", "OPUS", "audio/ogg")}

    def __init__(self, fmt: str, rate: int, channels: int) -> None:
        soundfile = importlib.import_module("soundfile")  # optional, and imports numpy: lazily
        container, subtype, self.content_type = self._KINDS[fmt]
        self._frame = 2 * channels
        self._carry = b""
        self._buffer = io.BytesIO()
        self._file = soundfile.SoundFile(
            self._buffer, "w", samplerate=rate, channels=channels, format=container, subtype=subtype
        )

    def feed(self, pcm: bytes) -> bytes:
        pcm = self._carry + pcm
        whole = len(pcm) - len(pcm) % self._frame
        self._carry = pcm[whole:]
        if whole:
            self._file.buffer_write(pcm[:whole], dtype="int16")
        return b""

    def finish(self) -> bytes:
        self._file.close()
        return self._buffer.getvalue()


@functools.cache
def available_formats() -> tuple[str, ...]:
    """Formats this installation can produce (looked up once: installs do not change)."""
    formats = ALWAYS_FORMATS
    if importlib.util.find_spec("lameenc") is not None:
        formats = (*formats, "mp3")
    if importlib.util.find_spec("soundfile") is not None:
        formats = (*formats, "flac", "opus")
    return formats


def encoder_for(fmt: str, rate: int, channels: int) -> AudioEncoder:
    """An encoder for one of ``available_formats()`` (``pcm``, the speech route's name)."""
    if fmt == "wav":
        return WavEncoder(rate, channels)
    if fmt == "pcm":
        return PcmEncoder(rate, channels)
    if fmt in ("flac", "opus"):
        return SndfileEncoder(fmt, rate, channels)
    return Mp3Encoder(rate, channels)


def encode(pcm: bytes, fmt: str, rate: int, channels: int) -> tuple[bytes, str]:
    """A whole answer's samples as one file of ``fmt``: (bytes, content type). A whole WAV
    knows its length, so it gets real sizes, not the streaming header's "unknown"."""
    if fmt == "wav":
        return pcm_to_wav(pcm, rate=rate, channels=channels), "audio/wav"
    encoder = encoder_for(fmt, rate, channels)
    return encoder.feed(pcm) + encoder.finish(), encoder.content_type
