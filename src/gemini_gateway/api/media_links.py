"""How generated images and audio reach the client: a link we serve, or a data: URL."""

from __future__ import annotations

import time

from aiohttp import web

from gemini_gateway.api.ids import new_id
from gemini_gateway.api.state import AppState
from gemini_gateway.translate.call import ResponseContext


def base_url(request: web.Request, state: AppState) -> str:
    configured = str(state.settings.public_base_url or "").rstrip("/")
    if configured:
        return configured
    return f"{request.scheme}://{request.host}"


def response_context(request: web.Request, state: AppState) -> ResponseContext:
    media_url = None
    if state.files is not None and state.settings.generated_media == "link":
        root = base_url(request, state)
        files = state.files

        def media_url(mime: str, data_b64: str) -> str:
            return f"{root}/gemini/v1/files/{files.save_b64(mime, data_b64)}"

    return ResponseContext(
        completion_id=new_id("chatcmpl-"),
        created=int(time.time()),
        think_tags=state.settings.thinking_output == "think_tags",
        media_url=media_url,
    )
