"""File API routes: resumable upload, get, delete and list, scoped to the uploading key."""

from __future__ import annotations

import orjson
from aiohttp import web

from gemini_gateway.simulator.google_errors import GoogleError
from gemini_gateway.simulator.routes import (
    api_key,
    apply_fault,
    base_url,
    check_key,
    error_response,
    json_response,
    record_request,
)
from gemini_gateway.simulator.state import SIM_STATE


async def upload_file(request: web.Request) -> web.Response:
    """Resumable upload: ``start`` opens a session, later POSTs carry the bytes."""
    state = request.app[SIM_STATE]
    upload_id = request.query.get("upload_id")
    key = api_key(request) if upload_id is None else ""
    raw = await request.read()
    command = request.headers.get("X-Goog-Upload-Command", "")
    try:
        if upload_id is None:
            meta = orjson.loads(raw) if raw else {}
            record_request(state, request, key, meta, action="uploadFile")
            await apply_fault(state, key, "", "uploadFile")
            check_key(key)
            if command != "start":
                raise GoogleError(400, "Only resumable uploads are supported here.")
            size_header = request.headers.get("X-Goog-Upload-Header-Content-Length")
            upload = state.files.start(
                key,
                (meta or {}).get("file") or {},
                request.headers.get("X-Goog-Upload-Header-Content-Type", ""),
                int(size_header) if size_header else None,
            )
            url = (
                f"{base_url(request)}/upload/v1beta/files?upload_id={upload}"
                "&upload_protocol=resumable"
            )
            return web.Response(
                status=200, headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"}
            )
        record_request(state, request, key, {"bytes": len(raw)}, action="uploadFile")
        offset = int(request.headers.get("X-Goog-Upload-Offset", "0"))
        commands = {c.strip() for c in command.split(",")}
        finalize = "finalize" in commands
        file = state.files.receive(upload_id, offset, raw, finalize)
    except GoogleError as err:
        return error_response(err)
    except (ValueError, orjson.JSONDecodeError):
        return error_response(GoogleError(400, "Invalid JSON payload received."))
    if not finalize:
        return web.Response(status=200, headers={"X-Goog-Upload-Status": "active"})
    resource = file.resource(base_url(request), state.config.file_active_delay)
    response = json_response({"file": resource})
    response.headers["X-Goog-Upload-Status"] = "final"
    return response


async def get_file(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    key = api_key(request)
    file_id = request.match_info["file_id"]
    record_request(state, request, key, None, action="getFile")
    try:
        await apply_fault(state, key, "", "getFile")
        check_key(key)
        file = state.files.get(file_id, key)
        if request.method == "DELETE":
            del state.files.files[file_id]
            return json_response({})
    except GoogleError as err:
        return error_response(err)
    return json_response(file.resource(base_url(request), state.config.file_active_delay))


async def list_files(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    key = api_key(request)
    record_request(state, request, key, None, action="listFiles")
    try:
        check_key(key)
    except GoogleError as err:
        return error_response(err)
    delay = state.config.file_active_delay
    files = [
        f.resource(base_url(request), delay) for f in state.files.files.values() if f.key == key
    ]
    return json_response({"files": files} if files else {})
