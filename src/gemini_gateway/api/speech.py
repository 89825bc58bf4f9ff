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
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.api.accounting import RequestRecord, admit
from gemini_gateway.api.auth import authenticate, client_ip
from gemini_gateway.api.chat import SSE_HEADERS, read_json_object
from gemini_gateway.api.errors import stream_error_event
from gemini_gateway.api.middleware import client_left
from gemini_gateway.api.state import get_state
from gemini_gateway.errors import GatewayError, InvalidRequest
from gemini_gateway.translate.audio_encode import available_formats, encoder_for
from gemini_gateway.translate.request import google_extras, safety_settings
from gemini_gateway.translate.speech import (
    PcmChunk,
    event_pcm,
    no_audio_error,
    speech_job_to_gemini,
    speech_request,
    speech_usage,
)
from gemini_gateway.translate.usage import usage_to_openai

routes = web.RouteTableDef()

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

    encoder = encoder_for(fmt, first[0].rate, first[0].channels)
    sse = job.stream_format == "sse"
    headers = dict(SSE_HEADERS) if sse else {"Content-Type": encoder.content_type}
    response = web.StreamResponse(headers={**headers, **admission.headers})
    response.headers["x-request-id"] = request["log"]["request_id"]
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        await _write(response, sse, b"".join(encoder.feed(c.pcm) for c in first))
        async for event in upstream:
            usage = event.get("usageMetadata") or usage
            await _write(response, sse, b"".join(encoder.feed(c.pcm) for c in event_pcm(event)))
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
