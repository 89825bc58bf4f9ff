"""``POST /gemini/v1/chat/completions``: the OpenAI chat endpoint, plain and streamed.

The route only sequences the parts: authenticate, parse, resolve media, translate, admit, call
upstream, translate back, account. All mapping rules live in ``translate/``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.api.accounting import (
    Accounting,
    RequestRecord,
    estimate_prompt_tokens,
    produced_chars,
    record_refusal,
    settled_on_failure,
)
from gemini_gateway.api.auth import authenticate, client_ip
from gemini_gateway.api.errors import stream_error_event
from gemini_gateway.api.media_links import response_context
from gemini_gateway.api.middleware import client_left
from gemini_gateway.api.request_body import parse_json, read_body
from gemini_gateway.api.state import AppState, get_state
from gemini_gateway.api.usage_estimate import UsageEstimator
from gemini_gateway.errors import GatewayError, InvalidRequest
from gemini_gateway.translate.content import media_parts
from gemini_gateway.translate.request import chat_request_to_gemini
from gemini_gateway.translate.response import gemini_response_to_chat
from gemini_gateway.translate.stream import ChatStreamTranslator

routes = web.RouteTableDef()

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}
DONE = b"data: [DONE]\n\n"


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = await read_body(request, int(get_state(request).settings.max_body_bytes))
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = parse_json(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc.msg}.") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


@routes.post("/gemini/v1/chat/completions")
@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = get_state(request)
    license = await authenticate(request)
    body = await read_json_object(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    request["log"]["model"] = model
    record = RequestRecord(
        request_id=request["log"]["request_id"],
        license=license,
        model_requested=model,
        stream=body.get("stream") is True,
        prompt_estimate=estimate_prompt_tokens(body),
    )
    gate: asyncio.Lock | None = None  # held while this request calibrates the estimate
    try:  # a request refused before it goes upstream (403, 400, 429) still gets its ledger row
        license.check(model, client_ip(request))
        messages = body.get("messages")
        pinned_key = None
        media = None
        if isinstance(messages, list) and state.media is not None and media_parts(messages):
            resolved = await state.media.resolve(messages)
            media, pinned_key = resolved.parts, resolved.pinned_key
        call = chat_request_to_gemini(body, media=media, options=state.extras["request_options"])
        call.extra["generated_media_ttl"] = state.settings.generated_media_ttl
        record.model_sent, record.stream = call.model.upstream, call.stream
        estimator: UsageEstimator = state.extras["usage_estimator"]
        estimate, known = estimator.estimate(body, call.model.upstream)
        if not known and (license.tpm or license.quota):
            gate = await estimator.calibration_gate(call.model.upstream)
            # Alone in flight while calibrating: reserve only the prompt, settle the truth after.
            estimate = record.prompt_estimate
            if gate is None:
                estimate, _ = estimator.estimate(body, call.model.upstream)
        admission = await state.limiter.admit(license, estimated_tokens=estimate)
    except GatewayError as exc:
        if gate is not None:
            gate.release()
        await record_refusal(state.store.ledger, record, exc)
        raise
    except asyncio.CancelledError:
        if gate is not None:
            gate.release()
        raise

    def settled(rec: RequestRecord) -> None:
        used = int((rec.usage or {}).get("total_tokens") or 0)
        estimator.learn(rec.model_sent, rec.prompt_estimate, used)
        if gate is not None:
            gate.release()

    accounting = Accounting(state.store.ledger, admission, record, after=settled)
    ctx = response_context(request, state)
    async with settled_on_failure(accounting):
        if call.stream:
            return await _stream(request, state, call, ctx, accounting, pinned_key, admission)
        result = await state.upstream.generate(
            call.model.upstream, call.body, pinned_key=pinned_key
        )
        record.key_id = result.key_id
        request["log"]["key"] = result.key_id
        chat = gemini_response_to_chat(result.data, call, ctx)
        record.usage = chat.get("usage")
        await accounting.finish()
        return web.Response(
            body=orjson.dumps(chat), content_type="application/json", headers=admission.headers
        )


async def _stream(
    request: web.Request,
    state: AppState,
    call: Any,
    ctx: Any,
    accounting: Accounting,
    pinned_key: str | None,
    admission: Any,
) -> web.StreamResponse:
    record = accounting.record
    # Failover happens inside stream(): an upstream failure here is still an ordinary HTTP error.
    upstream = await state.upstream.stream(call.model.upstream, call.body, pinned_key=pinned_key)
    record.key_id = upstream.key_id
    request["log"]["key"] = upstream.key_id
    translator = ChatStreamTranslator(call, ctx)
    response = web.StreamResponse(headers={**SSE_HEADERS, **admission.headers})
    response.headers["x-request-id"] = request["log"]["request_id"]
    feed = translator.feed
    try:
        await response.prepare(request)  # aiohttp sends the headers with the first write
        # One write per upstream read, not per event: each write is a system call.
        while events := await upstream.next_batch():
            chunks = [chunk for event in events for chunk in feed(event)]
            if chunks:
                if record.first_token_at is None:
                    record.first_token_at = time.perf_counter()
                record.produced_chars += produced_chars(chunks)
                await response.write(_sse(chunks))
        tail = translator.finish()
    except GatewayError as exc:
        # Upstream failed mid-stream: tell the client in the stream, then end it cleanly.
        record.status, record.error_code = exc.status, exc.code or exc.type
        record.usage = translator.usage
        await upstream.aclose()
        await accounting.finish()
        await response.write_eof(stream_error_event(exc) + DONE)
        return response
    except (asyncio.CancelledError, ConnectionResetError) as exc:
        # The client left: stop upstream at once; charge for what was produced.
        await asyncio.shield(upstream.aclose())
        record.status, record.error_code = 499, "client_disconnected"
        record.usage = translator.usage
        accounting.finish_in_background()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return client_left(request, response)
    record.usage = translator.usage
    await accounting.finish()  # the ledger row is committed before the last byte
    try:
        await response.write_eof(_sse(tail) + DONE if tail else DONE)  # one write with the end
    except ConnectionResetError:
        return client_left(request, response)  # gone just before the end; its row is written
    return response


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
