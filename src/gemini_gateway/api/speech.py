"""``POST /gemini/v1/audio/speech``: OpenAI's speech API on Gemini TTS models, streamed.

The route asks upstream for ``streamGenerateContent`` and writes audio as it arrives (chunked).
It waits for the first upstream event before sending the status line, so a refused prompt is
still an ordinary HTTP error; after that a failure can only cut the stream short (``audio``) or
end it with an error event (``sse``).

Formats: ``wav`` (a header with "unknown length" sizes, then PCM), ``pcm`` (raw 24 kHz 16-bit
little-endian mono, as OpenAI's), ``mp3`` when the ``lameenc`` package (LAME) is installed, and
``flac`` and ``opus`` (Ogg Opus, both sent whole at the end) when ``soundfile`` (libsndfile) is.
aac has no encoder here: a 400 names the formats that work. Without ``response_format`` the
answer is mp3 (OpenAI's default) when it can be made, else wav.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import io
from typing import Any, Protocol

import orjson
from aiohttp import web

from gemini_gateway.api.accounting import RequestRecord, admit
from gemini_gateway.api.auth import authenticate, client_ip
from gemini_gateway.api.chat import SSE_HEADERS, read_json_object
from gemini_gateway.api.errors import stream_error_event
from gemini_gateway.api.middleware import client_left
from gemini_gateway.api.state import get_state
from gemini_gateway.errors import GatewayError, InvalidRequest
from gemini_gateway.translate.request import google_extras, safety_settings
from gemini_gateway.translate.speech import (
    ALWAYS_FORMATS,
    PcmChunk,
    event_pcm,
    no_audio_error,
    speech_job_to_gemini,
    speech_request,
    speech_usage,
    wav_stream_header,
)
from gemini_gateway.translate.usage import usage_to_openai

routes = web.RouteTableDef()

MP3_BITRATE_KBPS = 64  # speech at 24 kHz mono: 64 kb/s is transparent enough, files stay small


class AudioEncoder(Protocol):
    content_type: str

    def feed(self, chunk: PcmChunk) -> bytes: ...

    def finish(self) -> bytes: ...


class PcmEncoder:
    """Raw samples, as they come."""

    def __init__(self, rate: int, channels: int) -> None:
        self.content_type = f"audio/pcm;rate={rate};channels={channels}"

    def feed(self, chunk: PcmChunk) -> bytes:
        return chunk.pcm

    def finish(self) -> bytes:
        return b""


class WavEncoder(PcmEncoder):
    """A streaming WAV: the header (length unknown) first, then the samples."""

    def __init__(self, rate: int, channels: int) -> None:
        self.content_type = "audio/wav"
        self._header: bytes | None = wav_stream_header(rate, channels)

    def feed(self, chunk: PcmChunk) -> bytes:
        header, self._header = self._header or b"", None
        return header + chunk.pcm

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

    def feed(self, chunk: PcmChunk) -> bytes:
        pcm = self._carry + chunk.pcm
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

    def feed(self, chunk: PcmChunk) -> bytes:
        pcm = self._carry + chunk.pcm
        whole = len(pcm) - len(pcm) % self._frame
        self._carry = pcm[whole:]
        if whole:
            self._file.buffer_write(pcm[:whole], dtype="int16")
        return b""

    def finish(self) -> bytes:
        self._file.close()
        return self._buffer.getvalue()


def available_formats() -> tuple[str, ...]:
    """Formats this installation can produce."""
    formats = ALWAYS_FORMATS
    if importlib.util.find_spec("lameenc") is not None:
        formats = (*formats, "mp3")
    if importlib.util.find_spec("soundfile") is not None:
        formats = (*formats, "flac", "opus")
    return formats


def _encoder(fmt: str, rate: int, channels: int) -> AudioEncoder:
    if fmt == "wav":
        return WavEncoder(rate, channels)
    if fmt == "pcm":
        return PcmEncoder(rate, channels)
    if fmt in ("flac", "opus"):
        return SndfileEncoder(fmt, rate, channels)
    return Mp3Encoder(rate, channels)


def _choose_format(requested: str | None) -> str:
    formats = available_formats()
    if requested is None:
        return "mp3" if "mp3" in formats else "wav"
    if requested not in formats:
        raise InvalidRequest(
            f"response_format '{requested}' is not available on this gateway (no encoder "
            f"installed); use one of: {', '.join(formats)}",
            param="response_format",
        )
    return requested


@routes.post("/gemini/v1/audio/speech")
@routes.post("/v1/audio/speech")
async def create_speech(request: web.Request) -> web.StreamResponse:
    state = get_state(request)
    license = await authenticate(request)
    body = await read_json_object(request)
    job = speech_request(body)
    fmt = _choose_format(job.response_format)
    request["log"]["model"] = job.model
    license.check(str(body["model"]), client_ip(request))

    record = RequestRecord(
        request_id=request["log"]["request_id"],
        license=license,
        model_requested=str(body["model"]),
        model_sent=job.model,
        stream=True,
    )
    # About 25 audio tokens a second and 15 characters a second of speech.
    estimate = job.input_chars // 4 + 1 + job.input_chars * 2
    accounting = await admit(state.limiter, state.store.ledger, license, record, estimate)
    admission = accounting.admission
    threshold = state.extras["request_options"].safety_threshold
    gemini_body = speech_job_to_gemini(job, safety_settings(threshold, google_extras(body)))
    upstream = None
    try:
        upstream = await state.upstream.stream(job.model, gemini_body)
        record.key_id = request["log"]["key"] = upstream.key_id
        # Wait for the first audio before the status line: refusals stay ordinary HTTP errors.
        first: list[PcmChunk] = []
        usage: dict[str, Any] | None = None
        async for event in upstream:
            usage = event.get("usageMetadata") or usage
            first = event_pcm(event)
            if first:
                break
        if not first:
            raise no_audio_error()
    except GatewayError as exc:
        if upstream is not None:
            await upstream.aclose()
        record.status, record.error_code = exc.status, exc.code or exc.type
        await accounting.finish()
        raise
    except asyncio.CancelledError:
        if upstream is not None:
            await asyncio.shield(upstream.aclose())
        record.status, record.error_code = 499, "client_disconnected"
        accounting.finish_in_background()
        raise

    encoder = _encoder(fmt, first[0].rate, first[0].channels)
    sse = job.stream_format == "sse"
    headers = dict(SSE_HEADERS) if sse else {"Content-Type": encoder.content_type}
    response = web.StreamResponse(headers={**headers, **admission.headers})
    response.headers["x-request-id"] = request["log"]["request_id"]
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        await _write(response, sse, b"".join(encoder.feed(c) for c in first))
        async for event in upstream:
            usage = event.get("usageMetadata") or usage
            await _write(response, sse, b"".join(encoder.feed(c) for c in event_pcm(event)))
        await _write(response, sse, encoder.finish())
    except GatewayError as exc:
        record.status, record.error_code = exc.status, exc.code or exc.type
        record.usage = usage_to_openai(usage) if usage else None
        await upstream.aclose()
        await accounting.finish()
        if sse:
            await response.write(stream_error_event(exc))
            await response.write_eof()
        else:
            # Raw audio has no way to carry an error: cut the connection so the client sees a
            # truncated transfer instead of a complete-looking, shorter file.
            if request.transport is not None:
                request.transport.close()
        return response
    except (asyncio.CancelledError, ConnectionResetError) as exc:
        await asyncio.shield(upstream.aclose())
        record.status, record.error_code = 499, "client_disconnected"
        record.usage = usage_to_openai(usage) if usage else None
        accounting.finish_in_background()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return client_left(request, response)
    record.usage = usage_to_openai(usage) if usage else None
    await accounting.finish()
    try:
        if sse:
            done = {"type": "speech.audio.done", "usage": speech_usage(usage)}
            await response.write(b"data: " + orjson.dumps(done) + b"\n\n")
        await response.write_eof()
    except ConnectionResetError:
        return client_left(request, response)  # gone just before the end; its row is written
    return response


async def _write(response: web.StreamResponse, sse: bool, audio: bytes) -> None:
    """Audio bytes as they are, or as one ``speech.audio.delta`` event (base64)."""
    if not audio:
        return
    if sse:
        delta = {"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")}
        await response.write(b"data: " + orjson.dumps(delta) + b"\n\n")
    else:
        await response.write(audio)
