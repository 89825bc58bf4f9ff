"""PCM → WAV, checked by reading the result back with the stdlib's own WAV reader."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import pytest

from gemini_gateway.translate.audio import is_pcm_audio, pcm_format, pcm_to_wav


def _read(wav: bytes) -> tuple[Any, bytes]:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        return reader.getparams(), reader.readframes(reader.getnframes())


def test_wav_header_and_samples_round_trip() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    wav = pcm_to_wav(pcm)
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", wav[4:8])[0] == len(wav) - 8  # RIFF chunk size
    params, frames = _read(wav)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 24000)
    assert params.nframes == 4
    assert frames == pcm


def test_rate_and_channels_are_written() -> None:
    pcm = bytes(range(16))
    params, frames = _read(pcm_to_wav(pcm, rate=16000, channels=2, width=2))
    assert (params.nchannels, params.framerate, params.nframes) == (2, 16000, 4)
    assert frames == pcm


def test_partial_last_frame_is_dropped() -> None:
    params, frames = _read(pcm_to_wav(b"\x01\x02\x03"))
    assert params.nframes == 1 and frames == b"\x01\x02"


def test_empty_pcm_is_a_valid_empty_wav() -> None:
    params, frames = _read(pcm_to_wav(b""))
    assert params.nframes == 0 and frames == b""


@pytest.mark.parametrize(
    ("mime", "pcm", "fmt"),
    [
        pytest.param("audio/L16;codec=pcm;rate=24000", True, (24000, 1), id="gemini-tts"),
        pytest.param("audio/L16; codec=pcm; rate=16000", True, (16000, 1), id="spaces"),
        pytest.param("audio/pcm", True, (24000, 1), id="bare-pcm"),
        pytest.param("audio/pcm;rate=48000;channels=2", True, (48000, 2), id="channels"),
        pytest.param("audio/L16;rate=abc", True, (24000, 1), id="bad-rate"),
        pytest.param("audio/wav", False, (24000, 1), id="wav"),
        pytest.param("audio/mpeg", False, (24000, 1), id="mp3"),
        pytest.param("image/png", False, (24000, 1), id="image"),
    ],
)
def test_pcm_mime_types(mime: str, pcm: bool, fmt: tuple[int, int]) -> None:
    assert is_pcm_audio(mime) is pcm
    assert pcm_format(mime) == fmt
