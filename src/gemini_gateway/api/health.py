"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web

from gemini_gateway.api.state import get_state

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready while at least one upstream key is enabled and not cooling down."""
    keys = get_state(request).pool.snapshot()
    usable = sum(1 for k in keys if k.usable)
    body = {
        "status": "ready" if usable else "unavailable",
        "keys": len(keys),
        "usable_keys": usable,
    }
    return web.json_response(body, status=200 if usable else 503)
