"""The floor: one extra Python hop with the gateway's stack and none of its work.

An aiohttp server that forwards every request unchanged to an upstream (the simulator) with an
aiohttp client, on uvloop, and relays the answer: whole for JSON, chunk by chunk for streams. No
auth, translation, limits or ledger, so whatever the gateway costs beyond this is its own.

Run: ``python bench/passthrough.py --port 9001 --upstream http://127.0.0.1:8089``
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

UPSTREAM_BASE = web.AppKey("upstream_base", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
FORWARDED_HEADERS = ("Content-Type", "x-goog-api-key", "Authorization")


async def forward(request: web.Request) -> web.StreamResponse:
    """Send the request upstream as is; stream the answer back if upstream streams it."""
    headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    body = await request.read()
    url = request.app[UPSTREAM_BASE] + request.path_qs
    session = request.app[SESSION]
    async with session.request(request.method, url, data=body, headers=headers) as upstream:
        if "event-stream" not in upstream.headers.get("Content-Type", ""):
            payload = await upstream.read()
            return web.Response(
                body=payload, status=upstream.status, content_type=upstream.content_type
            )
        response = web.StreamResponse(status=upstream.status)
        response.content_type = "text/event-stream"
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


def build_app(upstream_base: str, max_connections: int) -> web.Application:
    app = web.Application()
    app[UPSTREAM_BASE] = upstream_base.rstrip("/")

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=max_connections)
        app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="Base URL of the simulator.")
    parser.add_argument("--max-connections", type=int, default=512)
    args = parser.parse_args()
    app = build_app(args.upstream, args.max_connections)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
