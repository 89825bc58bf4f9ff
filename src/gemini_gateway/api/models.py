"""``GET /gemini/v1/models`` and ``/gemini/v1/models/{id}`` in OpenAI's list format.

The list is the product page's models, their ``-thinking`` variants, and whatever upstream's
``GET /v1beta/models`` lists (cached by the upstream client). Any other name still passes through
to Gemini on the chat endpoint; this list is for discovery.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.api.auth import authenticate
from gemini_gateway.api.state import get_state
from gemini_gateway.errors import GatewayError, InvalidRequest, NotFound
from gemini_gateway.translate.models import PRODUCT_MODELS, parse_model

log = logging.getLogger("gemini_gateway.api")
routes = web.RouteTableDef()


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "google"}


async def list_model_ids(request: web.Request) -> list[str]:
    ids = list(PRODUCT_MODELS)
    seen = set(ids)
    try:
        upstream_models = await get_state(request).upstream.list_models()
    except GatewayError as exc:  # the list still works when upstream can't be asked
        log.warning("listing upstream models failed: %s", exc.message)
        upstream_models = []
    for item in upstream_models:
        name = str(item.get("name", "")).removeprefix("models/")
        if name and name not in seen:
            seen.add(name)
            ids.append(name)
    return ids


@routes.get("/gemini/v1/models")
@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    await authenticate(request)
    data = [model_object(i) for i in await list_model_ids(request)]
    return web.Response(
        body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
    )


@routes.get("/gemini/v1/models/{model_id:.+}")
@routes.get("/v1/models/{model_id:.+}")
async def get_model(request: web.Request) -> web.Response:
    await authenticate(request)
    wanted = request.match_info["model_id"].removeprefix("models/")
    known = await list_model_ids(request)
    if wanted not in known and _base_model(wanted) not in known:
        raise NotFound(
            f"The model '{wanted}' does not exist.", param="model", code="model_not_found"
        )
    return web.Response(body=orjson.dumps(model_object(wanted)), content_type="application/json")


def _base_model(name: str) -> str | None:
    """The listed model behind a usable suffixed name (``-nothinking``, ``-thinking-<n>``)."""
    try:
        return parse_model(name).upstream
    except InvalidRequest:  # e.g. -thinking on a model that cannot think: not a model
        return None
