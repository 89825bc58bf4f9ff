"""The one place that turns exceptions into OpenAI's error envelope.

Every error a client sees has the shape ``{"error": {"message", "type", "param", "code"}}``, plain
(with the exception's HTTP status and headers) or, once a stream has started, as one SSE event.
aiohttp's own HTTP exceptions (unknown route, wrong method, body too large) get the same shape.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from gemini_gateway.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
)

log = logging.getLogger("gemini_gateway.api")


def error_body(exc: GatewayError) -> bytes:
    return orjson.dumps({"error": exc.to_dict()})


def error_response(exc: GatewayError) -> web.Response:
    return web.Response(
        status=exc.status,
        body=error_body(exc),
        content_type="application/json",
        headers=exc.headers,
    )


def stream_error_event(exc: GatewayError) -> bytes:
    """An error after the stream started: one SSE event; the caller then ends the stream."""
    return b"data: " + error_body(exc) + b"\n\n"


def from_http_exception(exc: web.HTTPException) -> GatewayError:
    """Map aiohttp's own refusals (404 route, 405, 413) onto our hierarchy."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("Request body is larger than this gateway accepts.")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("No such endpoint. The OpenAI API is served under /gemini/v1/.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        err = InvalidRequest(f"Method {exc.method} is not allowed here.", code="method_not_allowed")
        err.status = 405
        return err
    err = GatewayError(exc.reason or "HTTP error")
    err.status = exc.status
    err.type = "invalid_request_error" if 400 <= exc.status < 500 else "server_error"
    return err


def internal_error() -> GatewayError:
    return GatewayError("The gateway failed while handling this request.", code="internal_error")
