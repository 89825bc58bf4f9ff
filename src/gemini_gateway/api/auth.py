"""Who is calling: the license from ``Authorization`` (raw or ``Bearer``) or ``x-api-key``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gemini_gateway.api.state import get_state
from gemini_gateway.errors import AuthenticationFailed


def license_text(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, rest = header.partition(" ")
        if rest and scheme.lower() == "bearer":
            return rest.strip() or None
        return header.strip() or None
    return request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or None


def client_ip(request: web.Request) -> str:
    return request.remote or ""


async def authenticate(request: web.Request) -> Any:
    """The caller's License, checked for being enabled and unexpired; 401 otherwise."""
    text = license_text(request)
    if not text:
        raise AuthenticationFailed(
            "No license given. Send it as 'Authorization: Bearer <license>' or "
            "'Authorization: <license>'."
        )
    found = await get_state(request).store.licenses.authenticate(text)
    if found is None:
        raise AuthenticationFailed("Incorrect license provided.")
    request["log"]["license"] = found.name
    return found
