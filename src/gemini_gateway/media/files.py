"""Gemini File API uploads for media too large to send inline, cached by content and key.

Protocol (ai.google.dev/api/files, "resumable upload"): ``POST /upload/{version}/files`` with
``X-Goog-Upload-Protocol: resumable`` and ``X-Goog-Upload-Command: start`` returns an upload URL
in ``X-Goog-Upload-URL``; one ``POST`` there with ``X-Goog-Upload-Command: upload, finalize`` and
``X-Goog-Upload-Offset: 0`` sends the bytes and returns ``{"file": File}``. Video is processed
after that: ``GET files/{id}`` is polled until ``state`` is ``ACTIVE`` (or ``FAILED``).

A file is visible only to the upstream key that uploaded it, so every call after ``start`` is
pinned to that key, and the cache is keyed by (sha256, key id). Entries live until Gemini's
``expirationTime`` (48 h) less a margin, so a conversation that resends the same video reuses the
upload instead of sending it again. One upload per content at a time: concurrent requests with the
same bytes wait for the first.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gemini_gateway.errors import UpstreamError

FILE_LIFETIME = 48 * 3600.0  # Gemini keeps uploaded files 48 hours
EXPIRY_MARGIN = 3600.0  # stop reusing a file an hour before it expires: a long request must finish


@dataclass(frozen=True)
class UploadedFile:
    name: str  # "files/abc123"
    uri: str  # what fileData.fileUri takes
    mime_type: str
    key_id: str  # the upstream key that owns it
    sha256: str
    expires_at: float  # unix seconds


class FileUploader:
    """Uploads bytes through ``upstream.call`` (an ``UpstreamClient``) and remembers the result."""

    def __init__(
        self,
        upstream: Any,
        *,
        api_version: str = "v1beta",
        poll_interval: float = 0.25,
        active_timeout: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = upstream
        self.api_version = api_version.strip("/")
        self.poll_interval = poll_interval
        self.active_timeout = active_timeout
        self.clock = clock
        self._by_content: dict[tuple[str, str], UploadedFile] = {}
        self._by_uri: dict[str, UploadedFile] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def find_by_uri(self, uri: str) -> UploadedFile | None:
        """A live upload of ours with this URI (so its type and owner key are known)."""
        found = self._by_uri.get(uri)
        return found if found is not None and self._live(found) else None

    def find(self, sha256: str, key_id: str | None = None) -> UploadedFile | None:
        """A live upload of this content, by ``key_id`` (any key when None)."""
        if key_id is not None:
            found = self._by_content.get((sha256, key_id))
            return found if found is not None and self._live(found) else None
        for (digest, _), found in self._by_content.items():
            if digest == sha256 and self._live(found):
                return found
        return None

    async def upload(
        self,
        data: bytes | bytearray,
        mime_type: str,
        *,
        pinned_key: str | None = None,
        display_name: str | None = None,
    ) -> UploadedFile:
        """An ACTIVE file holding ``data``, reused from the cache when this key already has it."""
        digest = await asyncio.to_thread(_sha256, data)
        async with self._locks.setdefault(digest, asyncio.Lock()):
            found = self.find(digest, pinned_key)
            if found is not None:
                return found
            uploaded = await self._upload(data, mime_type, digest, pinned_key, display_name)
            self._remember(uploaded)
            return uploaded

    async def _upload(
        self,
        data: bytes | bytearray,
        mime_type: str,
        digest: str,
        pinned_key: str | None,
        display_name: str | None,
    ) -> UploadedFile:
        start = await self.upstream.call(
            "POST",
            f"/upload/{self.api_version}/files",
            json={"file": {"displayName": display_name or f"gateway-{digest[:16]}"}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                "X-Goog-Upload-Header-Content-Type": mime_type,
            },
            pinned_key=pinned_key,
            raw=True,
        )
        upload_url = (start.headers or {}).get("X-Goog-Upload-URL")
        if not upload_url:
            raise UpstreamError("The File API did not return an upload URL.")
        key_id = start.key_id
        finished = await self.upstream.call(
            "POST",
            upload_url,
            data=data,
            headers={
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": "0",
                "Content-Type": mime_type,
            },
            pinned_key=key_id,
        )
        file = finished.data.get("file") or finished.data
        file = await self._wait_until_active(file, key_id)
        name, uri = file.get("name"), file.get("uri")
        if not isinstance(name, str) or not isinstance(uri, str):
            raise UpstreamError("The File API answered without a file name and URI.")
        return UploadedFile(
            name=name,
            uri=uri,
            mime_type=str(file.get("mimeType") or mime_type),
            key_id=key_id,
            sha256=digest,
            expires_at=_expiry(file.get("expirationTime"), self.clock()),
        )

    async def _wait_until_active(self, file: dict[str, Any], key_id: str) -> dict[str, Any]:
        """Poll ``GET files/{id}`` while the file is PROCESSING (video); FAILED is an error."""
        deadline = self.clock() + self.active_timeout
        delay = self.poll_interval
        while True:
            state = file.get("state") or "ACTIVE"  # older answers carry no state: usable
            if state == "ACTIVE":
                return file
            if state == "FAILED":
                raise UpstreamError("Gemini could not process the uploaded media file.")
            if self.clock() >= deadline:
                raise UpstreamError("Gemini took too long to process the uploaded media file.")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 5.0)
            name = file.get("name")
            if not isinstance(name, str) or not name.startswith("files/"):
                raise UpstreamError("The File API answered without a file name.")
            file = (await self.upstream.call("GET", name, pinned_key=key_id)).data

    def _remember(self, uploaded: UploadedFile) -> None:
        now = self.clock()
        for key, entry in list(self._by_content.items()):  # drop expired entries as we go
            if entry.expires_at - EXPIRY_MARGIN <= now:
                del self._by_content[key]
                self._by_uri.pop(entry.uri, None)
        self._locks = {digest: lock for digest, lock in self._locks.items() if lock.locked()}
        self._by_content[(uploaded.sha256, uploaded.key_id)] = uploaded
        self._by_uri[uploaded.uri] = uploaded

    def _live(self, entry: UploadedFile) -> bool:
        return entry.expires_at - EXPIRY_MARGIN > self.clock()


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


def _expiry(text: object, now: float) -> float:
    """Unix seconds of an RFC 3339 ``expirationTime`` (nanosecond digits allowed); else 48 h."""
    if isinstance(text, str):
        trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
        try:
            return datetime.fromisoformat(trimmed).timestamp()
        except ValueError:
            pass
    return now + FILE_LIFETIME
