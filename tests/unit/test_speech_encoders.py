"""Speech encoders: FLAC and Ogg Opus fed in uneven pieces and read back by libsndfile."""

from __future__ import annotations

import io
import math
import struct

import pytest

from gemini_gateway.translate.audio_encode import SndfileEncoder, available_formats, encode

soundfile = pytest.importorskip("soundfile")
RATE = 24000


def _tone(seconds: float) -> bytes:
    frames = int(RATE * seconds)
    return b"".join(
        struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / RATE))) for i in range(frames)
    )


def _encode(fmt: str, pcm: bytes, piece: int) -> tuple[SndfileEncoder, list[bytes]]:
    encoder = SndfileEncoder(fmt, RATE, 1)
    # Odd piece sizes split samples in two: the encoder must carry the half sample over.
    pieces = [pcm[i : i + piece] for i in range(0, len(pcm), piece)]
    outputs = [encoder.feed(p) for p in pieces]
    outputs.append(encoder.finish())
    return encoder, outputs


def test_both_formats_are_offered() -> None:
    assert {"flac", "opus"} <= set(available_formats())


def test_flac_decodes_to_the_same_samples_with_its_totals_filled_in() -> None:
    pcm = _tone(1.5)
    encoder, outputs = _encode("flac", pcm, 4801)
    assert encoder.content_type == "audio/flac"
    assert not any(outputs[:-1])  # held until the end, when the header's totals are known
    audio = outputs[-1]
    assert audio[:4] == b"fLaC"
    info = soundfile.info(io.BytesIO(audio))
    assert (info.samplerate, info.channels, info.frames) == (RATE, 1, len(pcm) // 2)
    samples, _ = soundfile.read(io.BytesIO(audio), dtype="int16")
    assert samples.tobytes() == pcm  # lossless


def test_opus_is_ogg_and_keeps_the_duration() -> None:
    pcm = _tone(1.0)
    encoder, outputs = _encode("opus", pcm, 3333)
    assert encoder.content_type == "audio/ogg"
    audio = b"".join(outputs)
    assert audio[:4] == b"OggS"
    assert b"OpusHead" in audio[:200]
    info = soundfile.info(io.BytesIO(audio))
    assert (info.samplerate, info.channels) == (RATE, 1)
    samples, _ = soundfile.read(io.BytesIO(audio), dtype="int16")
    assert abs(len(samples) - RATE) <= RATE // 50  # lossy, but the same length within 20 ms


@pytest.mark.parametrize(
    ("fmt", "mime", "magic"),
    [("wav", "audio/wav", b"RIFF"), ("mp3", "audio/mpeg", None), ("flac", "audio/flac", b"fLaC"),
     ("opus", "audio/ogg", b"OggS")],
)
def test_encode_a_whole_answer(fmt: str, mime: str, magic: bytes | None) -> None:
    pcm = _tone(0.5)
    data, content_type = encode(pcm, fmt, RATE, 1)
    assert content_type == mime
    if magic is not None:
        assert data.startswith(magic)
    else:  # an ID3 tag or an MPEG frame sync
        assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    if fmt in ("wav", "flac"):
        samples, _ = soundfile.read(io.BytesIO(data), dtype="int16")
        assert samples.tobytes() == pcm


def test_pcm_is_the_samples_themselves() -> None:
    pcm = _tone(0.1)
    assert encode(pcm, "pcm", RATE, 1) == (pcm, "audio/pcm;rate=24000;channels=1")
