"""The single middleware every request passes: request id, error envelope, one log line.

Handlers put what they learn (license name, model, upstream key id) into ``request["log"]``; the
middleware writes one structured line per request when it ends, never with a secret in it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gemini_gateway.api.errors import error_response, from_http_exception, internal_error
from gemini_gateway.api.ids import new_id
from gemini_gateway.errors import GatewayError

access_log = logging.getLogger("gemini_gateway.access")
log = logging.getLogger("gemini_gateway.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(request: web.Request) -> str:
    given = request.headers.get("x-request-id")
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return new_id("req_")


def client_left(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Note a client that hung up mid-stream (499 in the log line) and hand back ``response``.

    Returning the prepared response, rather than raising, keeps aiohttp from logging the broken
    connection as a server error: nothing went wrong on our side.
    """
    request["log"]["status"] = 499
    request["log"]["error"] = "client_disconnected"
    return response


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = _request_id(request)
    fields: dict[str, Any] = {"request_id": request_id}
    request["log"] = fields
    status = 500
    try:
        try:
            response = await handler(request)
        except GatewayError as exc:
            fields["error"] = exc.code or exc.type
            response = error_response(exc)
        except web.HTTPException as exc:
            mapped = from_http_exception(exc)
            fields["error"] = mapped.code or mapped.type
            response = error_response(mapped)
        except asyncio.CancelledError:
            status = 499  # the client went away; nothing more can be sent
            fields["error"] = "client_disconnected"
            raise
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            response = error_response(internal_error())
        status = fields.get("status", response.status)  # see client_left
        if not response.prepared:
            response.headers["x-request-id"] = request_id
        return response
    finally:
        if access_log.isEnabledFor(logging.INFO):
            fields["method"] = request.method
            fields["path"] = request.path
            fields["status"] = status
            fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            access_log.info("request", extra={"fields": fields})
