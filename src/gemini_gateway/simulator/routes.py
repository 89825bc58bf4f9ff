"""The Gemini REST surface: model actions and the model list, for v1beta and v1.

Each request is recorded, then meets, in order: a test's fault, the API key rules (missing → 403,
``invalid…`` → 400 API_KEY_INVALID, ``exhausted…`` → 429, ``denied…`` → 403), the model name
check, validation (unless switched off), and finally an answer from ``generation``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.simulator import catalog, generation, proto_walk, validation
from gemini_gateway.simulator.faults import Fault
from gemini_gateway.simulator.google_errors import (
    UNREGISTERED_CALLER,
    GoogleError,
    api_key_invalid,
    consumer_suspended,
    model_not_found,
    quota_exhausted,
)
from gemini_gateway.simulator.state import SIM_STATE, SimulatorState
from gemini_gateway.simulator.synth_media import png_for

_RECORDED_HEADERS = ("content-type", "user-agent", "x-goog-api-client", "x-server-timeout")
_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens", "predict")
_ASPECT_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9"}


def error_response(err: GoogleError, *, as_array: bool = False) -> web.Response:
    body: Any = [err.body()] if as_array else err.body()
    return web.Response(
        body=orjson.dumps(body), status=err.code, content_type="application/json", charset="utf-8"
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def api_key(request: web.Request) -> str:
    return request.headers.get("x-goog-api-key") or request.query.get("key", "")


def check_key(key: str, model: str = "") -> None:
    if not key:
        raise GoogleError(403, UNREGISTERED_CALLER)
    if key.startswith("invalid"):
        raise api_key_invalid()
    if key.startswith("exhausted"):
        raise quota_exhausted(model=model)
    if key.startswith("denied"):
        raise consumer_suspended(key)


def record_request(
    state: SimulatorState, request: web.Request, key: str, body: Any, **extra: Any
) -> None:
    headers = {
        str(name): value
        for name, value in request.headers.items()
        if name.lower() in _RECORDED_HEADERS or name.lower().startswith("x-goog-upload")
    }
    state.record(
        {
            "method": request.method,
            "path": request.path,
            "query": {k: v for k, v in request.query.items() if k != "key"},
            "key": key,
            "headers": headers,
            "body": body,
            **extra,
        }
    )


async def apply_fault(state: SimulatorState, key: str, model: str, method: str) -> Fault | None:
    """Wait out any delay and raise the fault's error; returns a fault that only cuts or waits."""
    fault = state.faults.take(key, model, method)
    if state.config.latency:
        await asyncio.sleep(state.config.latency)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    error = fault.error(model)
    if error is not None:
        raise error
    return fault


async def model_action(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    version = request.match_info["version"]
    model, _, action = request.match_info["target"].partition(":")
    key = api_key(request)
    raw = await request.read()
    as_array = action == "streamGenerateContent" and request.query.get("alt") != "sse"
    try:
        body: Any = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        record_request(state, request, key, None, model=model, action=action)
        err = GoogleError(400, "Invalid JSON payload received. Unexpected token.")
        return error_response(err, as_array=as_array)
    record_request(state, request, key, body, model=model, action=action)
    try:
        fault = await apply_fault(state, key, model, action)
        check_key(key, model)
        _check_model(model, action, version)
        if action == "countTokens":
            return json_response(_count_tokens(state, body, version))
        if action == "predict":
            return json_response(_predict(state, body))
        normalised = proto_walk.normalise_request(
            body, "GenerateContentRequest", version, strict=state.config.validate
        )
        if state.config.validate:
            validation.check_generate_request(normalised, model)
            state.files.check_uris(normalised, key, state.config.file_active_delay)
        answer = generation.build_answer(model, normalised)
    except (AttributeError, TypeError, KeyError, ValueError):
        # Only reachable with validation off: a body too broken to answer.
        return error_response(
            GoogleError(400, "Request contains an invalid argument."), as_array=as_array
        )
    except GoogleError as err:
        return error_response(err, as_array=as_array)
    if action == "generateContent":
        return json_response(generation.answer_response(answer))
    events = generation.answer_events(answer, state.config.stream_chunks)
    cut_after = fault.cut_after if fault else None
    return await _stream(request, state, events, sse=not as_array, cut_after=cut_after)


def _check_model(model: str, action: str, version: str) -> None:
    if action not in _ACTIONS:
        raise GoogleError(404, f"Method not found: {action}.", status="NOT_FOUND")
    if not catalog.is_known_family(model):
        raise model_not_found(model, action, version)
    if catalog.is_imagen(model) != (action == "predict"):
        raise model_not_found(model, action, version)


async def _stream(
    request: web.Request,
    state: SimulatorState,
    events: list[dict[str, Any]],
    *,
    sse: bool,
    cut_after: int | None,
) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.content_type = "text/event-stream" if sse else "application/json"
    response.charset = "utf-8"
    await response.prepare(request)
    state.open_streams += 1
    try:
        for i, event in enumerate(events):
            if cut_after is not None and i >= cut_after:
                # Drop the connection mid-stream, as a network failure would.
                if request.transport is not None:
                    request.transport.abort()
                return response
            if i and state.config.chunk_delay:
                await asyncio.sleep(state.config.chunk_delay)
            data = orjson.dumps(event)
            if sse:
                await response.write(b"data: " + data + b"\r\n\r\n")
            else:
                await response.write((b"[" if i == 0 else b",\r\n") + data)
        if not sse:
            await response.write(b"]" if events else b"[]")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing left to send to
    finally:
        state.open_streams -= 1
    return response


def _count_tokens(state: SimulatorState, body: Any, version: str) -> dict[str, Any]:
    normalised = proto_walk.normalise_request(
        body, "CountTokensRequest", version, strict=state.config.validate
    )
    if state.config.validate:
        validation.check_count_request(normalised)
    inner = normalised.get("generateContentRequest") or normalised
    tokens = generation.prompt_tokens(inner)
    return {
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
    }


def _predict(state: SimulatorState, body: Any) -> dict[str, Any]:
    """Imagen: one PNG per requested sample, each deterministic per prompt and index."""
    instances = body.get("instances") if isinstance(body, dict) else None
    parameters = (body.get("parameters") if isinstance(body, dict) else None) or {}
    if state.config.validate:
        if not instances or not all(
            isinstance(i, dict) and isinstance(i.get("prompt"), str) for i in instances
        ):
            raise GoogleError(400, "* PredictRequest.instances: instances is not specified\n")
        count = parameters.get("sampleCount", 4)
        if not isinstance(count, int) or not 1 <= count <= 4:
            raise GoogleError(400, "Number of images must be between 1 and 4.")
        ratio = parameters.get("aspectRatio", "1:1")
        if ratio not in _ASPECT_RATIOS:
            raise GoogleError(400, f"Unsupported aspect ratio: {ratio}.")
    prompt = str((instances or [{}])[0].get("prompt", ""))
    if "BLOCKME" in prompt:
        return {}
    count = int(parameters.get("sampleCount", 4) or 1)
    return {
        "predictions": [
            {
                "bytesBase64Encoded": base64.b64encode(png_for(f"{prompt}#{n}")).decode(),
                "mimeType": "image/png",
            }
            for n in range(count)
        ]
    }


async def list_models(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    key = api_key(request)
    record_request(state, request, key, None, action="listModels")
    try:
        await apply_fault(state, key, "", "listModels")
        check_key(key)
        size = int(request.query.get("pageSize", "50") or 50)
        start = int(request.query.get("pageToken", "0") or 0)
    except GoogleError as err:
        return error_response(err)
    except ValueError:
        return error_response(GoogleError(400, "Invalid page token or size."))
    models = catalog.list_models()
    size = max(1, min(size, 1000))
    page: dict[str, Any] = {"models": models[start : start + size]}
    if start + size < len(models):
        page["nextPageToken"] = str(start + size)
    return json_response(page)


async def get_model(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    key = api_key(request)
    model = request.match_info["target"]
    record_request(state, request, key, None, model=model, action="getModel")
    try:
        await apply_fault(state, key, model, "getModel")
        check_key(key)
        if not catalog.is_known_family(model):
            version = request.match_info["version"]
            raise GoogleError(404, f"models/{model} is not found for API version {version}.")
    except GoogleError as err:
        return error_response(err)
    return json_response(catalog.model_resource(model))
