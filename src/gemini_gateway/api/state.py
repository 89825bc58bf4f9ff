"""What app start-up builds and hands to every route: one object, no globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gemini_gateway.config import Settings


@dataclass
class AppState:
    settings: Settings
    store: Any = None  # store.database.Store
    pool: Any = None  # upstream.keypool.KeyPool
    upstream: Any = None  # upstream.client.UpstreamClient
    limiter: Any = None  # store.limits.Limiter
    media: Any = None  # media.resolve.MediaResolver
    files: Any = None  # media.generated.GeneratedFiles
    extras: dict[str, Any] = field(default_factory=dict)


STATE: web.AppKey[AppState] = web.AppKey("gemini_gateway_state", AppState)


def get_state(request: web.Request) -> AppState:
    return request.app[STATE]
