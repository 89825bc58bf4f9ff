"""``POST /gemini/v1/images/generations``: OpenAI's Images API on Gemini image models and Imagen.

Gemini image models get one generateContent call per image, all at once (they refuse
candidateCount > 1); Imagen gets ``models/{model}:predict`` with up to 4 samples a call. Mapping
rules live in ``translate/images.py``; URLs are links we serve (``media/generated.py``) or data:
URLs, as ``generated_media`` says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from aiohttp import web

from gemini_gateway.api.accounting import RequestRecord, admit, settled_on_failure
from gemini_gateway.api.auth import authenticate, client_ip
from gemini_gateway.api.chat import read_json_object
from gemini_gateway.api.media_links import base_url
from gemini_gateway.api.state import AppState, get_state
from gemini_gateway.concurrency import gather_or_cancel
from gemini_gateway.translate.images import (
    GeneratedImage,
    ImageJob,
    gemini_images,
    image_job_to_gemini,
    image_job_to_imagen,
    image_request,
    image_usage,
    imagen_batches,
    imagen_images,
    images_response,
)
from gemini_gateway.translate.request import google_extras, safety_settings

routes = web.RouteTableDef()

IMAGE_TOKEN_ESTIMATE = 1290  # Gemini counts one generated image as 1290 output tokens
T = TypeVar("T")


@routes.post("/gemini/v1/images/generations")
@routes.post("/v1/images/generations")
async def create_images(request: web.Request) -> web.Response:
    state = get_state(request)
    license = await authenticate(request)
    body = await read_json_object(request)
    job = image_request(body)
    request["log"]["model"] = job.model
    license.check(str(body["model"]), client_ip(request))

    record = RequestRecord(
        request_id=request["log"]["request_id"],
        license=license,
        model_requested=str(body["model"]),
        model_sent=job.model,
    )
    estimate = len(job.prompt) // 4 + 1 + IMAGE_TOKEN_ESTIMATE * job.n
    accounting = await admit(state.limiter, state.store.ledger, license, record, estimate)
    async with settled_on_failure(accounting):
        if job.imagen:
            images, usage = await _imagen(state, job, record), None
        else:
            images, usage = await _gemini(state, job, body, record)
        request["log"]["key"] = record.key_id
        created = int(time.time())
        result = images_response(
            images[: job.n],
            created=created,
            response_format=job.response_format,
            url_for=_url_maker(request, state),
            usage=usage,
        )
        if usage:
            record.usage = {
                "prompt_tokens": usage["input_tokens"],
                "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["total_tokens"],
            }
        await accounting.finish()
        return web.Response(
            body=orjson.dumps(result),
            content_type="application/json",
            headers=accounting.admission.headers,
        )


async def _gemini(
    state: AppState, job: ImageJob, body: dict[str, Any], record: RequestRecord
) -> tuple[list[GeneratedImage], dict[str, Any] | None]:
    threshold = state.extras["request_options"].safety_threshold
    gemini_body = image_job_to_gemini(job, safety_settings(threshold, google_extras(body)))
    results = await gather_or_cancel(
        [state.upstream.generate(job.model, gemini_body) for _ in range(job.n)]
    )
    record.key_id = results[0].key_id
    images = [image for result in results for image in gemini_images(result.data)]
    return images, image_usage(result.data.get("usageMetadata") or {} for result in results)


async def _imagen(state: AppState, job: ImageJob, record: RequestRecord) -> list[GeneratedImage]:
    path = f"models/{quote(job.model, safe='.-_')}:predict"
    calls = [
        state.upstream.call("POST", path, json=image_job_to_imagen(job, samples))
        for samples in imagen_batches(job.n)
    ]
    results = await gather_or_cancel(calls)
    record.key_id = results[0].key_id
    return [image for result in results for image in imagen_images(result.data)]


def _url_maker(request: web.Request, state: AppState) -> Callable[[str, str], str]:
    """Image URL: our own link (generated_media=link) or a data: URL."""
    files = state.files
    if files is None or state.settings.generated_media != "link":
        return lambda mime, data_b64: f"data:{mime};base64,{data_b64}"
    root = base_url(request, state)
    return lambda mime, data_b64: f"{root}/gemini/v1/files/{files.save_b64(mime, data_b64)}"
