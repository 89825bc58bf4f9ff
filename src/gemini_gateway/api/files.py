"""``GET /gemini/v1/files/{id}``: the generated images and audio we link to in answers.

No license is asked for: the id is 192 random bits, so the link itself is the credential, as a
signed URL is (chat clients and markdown viewers fetch images without headers). Anyone holding a
link can fetch it until it expires (``generated_media_ttl``); after that it is a 404.
"""

from __future__ import annotations

import time

from aiohttp import web

from gemini_gateway.api.state import get_state
from gemini_gateway.errors import NotFound

routes = web.RouteTableDef()


@routes.get("/gemini/v1/files/{file_id}")
async def generated_file(request: web.Request) -> web.StreamResponse:
    files = get_state(request).files
    file_id = request.match_info["file_id"]
    meta = files.metadata(file_id) if files is not None else None
    found = files.open(file_id) if meta is not None else None
    if meta is None or found is None:
        raise NotFound("No such generated file, or it has expired.", param="file_id")
    path, mime = found
    max_age = max(0, int(meta[1] - time.time()))
    return web.FileResponse(
        path,
        headers={
            "Content-Type": mime,
            "Cache-Control": f"private, max-age={max_age}, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
        },
    )
