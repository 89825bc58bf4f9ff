"""Builds the aiohttp application and wires the parts at start-up.

Everything long-lived (database, key pool, upstream HTTP session, limiter, media resolver) is
made here, in the application's cleanup context, and handed to routes through ``AppState``. Without
any upstream key the gateway starts an in-process Gemini simulator and says so loudly.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gemini_gateway.api import chat, health, models
from gemini_gateway.api.middleware import gateway_middleware
from gemini_gateway.api.state import STATE, AppState
from gemini_gateway.api.usage_estimate import UsageEstimator
from gemini_gateway.config import Settings
from gemini_gateway.translate.request import RequestOptions

log = logging.getLogger("gemini_gateway")
KEY_RELOAD_INTERVAL = 5.0  # seconds; like the license cache, changes elsewhere land this late

SIMULATOR_BANNER = """
==============================================================================
  NO UPSTREAM KEY CONFIGURED: serving the built-in Gemini SIMULATOR.
  Answers are fake. Set GEMINI_GATEWAY_UPSTREAM_KEYS to reach Google.
=============================================================================="""


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    settings = state.settings
    from gemini_gateway.store.database import Store
    from gemini_gateway.store.limits import build_limiter
    from gemini_gateway.upstream.client import UpstreamClient
    from gemini_gateway.upstream.keypool import KeyPool, key_id

    settings.data_path.mkdir(parents=True, exist_ok=True)
    state.store = await Store.open(settings)
    keys = settings.upstream_key_list + [
        k for k in await state.store.upstream_keys.list_secrets() if k not in settings.upstream_keys
    ]
    simulator_runner = None
    if not keys or settings.simulator:
        simulator_runner, sim_url = await _start_simulator()
        settings = settings.replace(upstream_base_url=sim_url)
        state.settings = settings
        keys = keys or ["simulator-key"]
        print(SIMULATOR_BANNER, file=sys.stderr, flush=True)
        log.warning("no upstream key configured: serving the built-in Gemini simulator")
    from gemini_gateway.store.key_state import key_state_for

    # Redis for replicas, else a file in the data dir that `key list/enable/disable` share.
    key_state = key_state_for(settings)
    state.pool = KeyPool(keys, state=key_state)
    env_keys = set(settings.upstream_key_list)

    async def reload_upstream_keys() -> None:
        """Keys added or removed through the admin API reach the pool at once."""
        wanted = set(await state.store.upstream_keys.list_secrets()) | env_keys
        wanted_ids = {key_id(k): k for k in wanted}
        for kid in state.pool.key_ids:
            if kid not in wanted_ids:
                state.pool.remove_key(kid)
        for kid, secret in wanted_ids.items():
            if state.pool.get(kid) is None:
                state.pool.add_key(secret)

    key_reloader = None
    if simulator_runner is None:
        state.extras["upstream_keys_changed"] = reload_upstream_keys
        # Keys added or removed with the CLI, or by another replica, reach this pool too.
        key_reloader = asyncio.create_task(_every(KEY_RELOAD_INTERVAL, reload_upstream_keys))
    if simulator_runner is not None:  # with real keys, only the operator issues licenses
        await _print_first_license(state)
    state.upstream = UpstreamClient(settings, state.pool)
    state.limiter = build_limiter(settings, tokens_used=state.store.ledger.tokens_used)
    state.extras["request_options"] = RequestOptions(safety_threshold=settings.safety_threshold)
    state.extras["usage_estimator"] = UsageEstimator()
    await _start_media(state)
    try:
        yield
    finally:
        if key_reloader is not None:
            key_reloader.cancel()
        if state.media is not None:
            await state.media.close()
        await state.upstream.close()
        close_limiter = getattr(state.limiter, "close", None)
        if close_limiter is not None:
            await close_limiter()
        if key_state is not None and hasattr(key_state, "close"):
            await key_state.close()
        await state.store.close()
        if simulator_runner is not None:
            await simulator_runner.cleanup()


async def _every(seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` every ``seconds`` until cancelled; a failure waits for the next round."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:
            log.warning("reloading upstream keys failed", exc_info=True)


async def _print_first_license(state: AppState) -> None:
    """On a brand-new data dir, make one license so the quick start works at once."""
    if await state.store.licenses.list():
        return
    _, key = await state.store.licenses.create(name="quickstart", note="made at first start")
    # Shown once, on stdout (not in the log): the only time this license can be seen.
    print(
        "\nNo license existed, so one was made (name 'quickstart'). Try it:\n\n"
        f"  curl http://localhost:{state.settings.port}/gemini/v1/chat/completions \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f"    -H 'Authorization: {key}' \\\n"
        """    -d '{"model": "gemini-2.0-flash",\n"""
        """         "messages": [{"role": "user", "content": "Hi"}]}'\n""",
        flush=True,
    )


async def _start_media(state: AppState) -> None:
    try:
        from gemini_gateway.media.generated import GeneratedFiles
    except ImportError:
        GeneratedFiles = None  # noqa: N806
    if GeneratedFiles is not None:
        state.files = GeneratedFiles(
            state.settings.data_path / "files", ttl=state.settings.generated_media_ttl
        )
    try:
        from gemini_gateway.media.resolve import MediaResolver
    except ImportError:
        return
    state.media = MediaResolver(state.settings, state.upstream, state.files)


async def _start_simulator() -> tuple[web.AppRunner, str]:
    from gemini_gateway.simulator.app import build_app as build_simulator

    runner = web.AppRunner(build_simulator(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[gateway_middleware], client_max_size=int(settings.max_body_bytes)
    )
    app[STATE] = AppState(settings=settings)
    app.cleanup_ctx.append(_lifespan)
    app.add_routes(health.routes)
    app.add_routes(chat.routes)
    app.add_routes(models.routes)
    for module in ("admin", "files", "images", "speech", "openapi"):
        _add_optional_routes(app, module)
    return app


def _add_optional_routes(app: web.Application, module: str) -> None:
    """Routes of parts that may not be installed in a slimmed-down build."""
    import importlib

    try:
        mod = importlib.import_module(f"gemini_gateway.api.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"gemini_gateway.api.{module}":
            raise
        return
    app.add_routes(mod.routes)
