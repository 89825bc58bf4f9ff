"""Build the simulator's aiohttp application: Gemini routes plus the ``/_sim`` control routes.

The control routes are for tests only (see docs/internals.md): faults, recorded requests, run-time
settings, uploaded bytes, a status (open streams) and a one-call reset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.simulator import file_routes, routes
from gemini_gateway.simulator.state import SIM_STATE, SimulatorConfig, SimulatorState

MAX_BODY_BYTES = 512 * 1024 * 1024  # above Google's 100 MB inline limit, so we never refuse first
_VERSION = "{version:v1beta|v1}"

log = logging.getLogger(__name__)


def build_app(config: SimulatorConfig | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SIM_STATE] = SimulatorState(config=config or SimulatorConfig())
    app.router.add_post(f"/{_VERSION}/models/{{target}}", routes.model_action)
    app.router.add_get(f"/{_VERSION}/models", routes.list_models)
    app.router.add_get(f"/{_VERSION}/models/{{target}}", routes.get_model)
    app.router.add_post(f"/upload/{_VERSION}/files", file_routes.upload_file)
    app.router.add_get(f"/{_VERSION}/files", file_routes.list_files)
    app.router.add_get(f"/{_VERSION}/files/{{file_id}}", file_routes.get_file)
    app.router.add_delete(f"/{_VERSION}/files/{{file_id}}", file_routes.get_file)
    app.router.add_post("/_sim/faults", add_faults)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_delete("/_sim/requests", clear_requests)
    app.router.add_get("/_sim/config", show_config)
    app.router.add_post("/_sim/config", change_config)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_get("/_sim/status", status)
    app.router.add_get("/_sim/files/{file_id}", file_bytes)
    return app


def _bad(message: str) -> web.Response:
    return routes.json_response(
        {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, 400
    )


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    return orjson.loads(raw) if raw else {}


async def add_faults(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        data = await _json(request)
        faults = data.get("faults", [data] if "match" in data or "status" in data else [])
        state.faults.add(faults)
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        return _bad(f"bad fault: {exc}")
    return await list_faults(request)


async def list_faults(request: web.Request) -> web.Response:
    faults = request.app[SIM_STATE].faults.faults
    return routes.json_response({"faults": [f.to_json() for f in faults]})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[SIM_STATE].faults.clear()
    return routes.json_response({"faults": []})


async def list_requests(request: web.Request) -> web.Response:
    return routes.json_response({"requests": list(request.app[SIM_STATE].requests)})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[SIM_STATE].requests.clear()
    return routes.json_response({"requests": []})


async def show_config(request: web.Request) -> web.Response:
    return routes.json_response(request.app[SIM_STATE].config.to_json())


async def change_config(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    try:
        data = await _json(request)
        if not isinstance(data, dict):
            raise ValueError("expected an object")
        state.config.update(data)
    except (orjson.JSONDecodeError, ValueError) as exc:
        return _bad(f"bad config: {exc}")
    return routes.json_response(state.config.to_json())


async def status(request: web.Request) -> web.Response:
    return routes.json_response(request.app[SIM_STATE].status())


async def reset(request: web.Request) -> web.Response:
    request.app[SIM_STATE].reset()
    return routes.json_response({})


async def file_bytes(request: web.Request) -> web.Response:
    file = request.app[SIM_STATE].files.files.get(request.match_info["file_id"])
    if file is None:
        return routes.json_response(
            {"error": {"code": 404, "message": "no such file", "status": "NOT_FOUND"}}, 404
        )
    return web.Response(
        body=bytes(file.data), content_type=file.mime_type or "application/octet-stream"
    )


async def start(
    host: str = "127.0.0.1", port: int = 0, config: SimulatorConfig | None = None
) -> tuple[web.AppRunner, str]:
    """Start listening (port 0 picks a free one); returns the runner and the root URL."""
    runner = web.AppRunner(build_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]  # the real port when 0 was asked for
    return runner, f"http://{host}:{bound}"


async def serve(host: str, port: int, config: SimulatorConfig | None = None) -> None:
    """Run until cancelled."""
    runner, url = await start(host, port, config)
    log.info("Gemini simulator listening on %s", url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
