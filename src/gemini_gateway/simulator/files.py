"""The File API: resumable uploads, file metadata, and the ``fileData`` checks on requests.

Upload is Google's resumable protocol: a ``start`` request returns ``X-Goog-Upload-URL``; chunks
are POSTed there with ``X-Goog-Upload-Offset`` and the last one says ``upload, finalize``. Each
answer carries ``X-Goog-Upload-Status`` (``active`` or ``final``), which the google-genai SDK
reads. A file is ``PROCESSING`` for a configurable delay, then ``ACTIVE``; only the key that
uploaded it may read it or use it in a request, as Google scopes files to a project.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gemini_gateway.simulator.google_errors import GoogleError

_FILE_ID = re.compile(r"(?:^|/)files/([A-Za-z0-9_-]+)$")


@dataclass
class StoredFile:
    id: str
    key: str
    mime_type: str
    display_name: str = ""
    expected_size: int | None = None
    data: bytearray = field(default_factory=bytearray)
    created: float = field(default_factory=time.time)
    finalized: float | None = None

    def state(self, active_delay: float) -> str:
        if self.finalized is None or time.time() - self.finalized < active_delay:
            return "PROCESSING"
        return "ACTIVE"

    def resource(self, base_url: str, active_delay: float) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created, UTC)
        stamp = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out: dict[str, Any] = {
            "name": f"files/{self.id}",
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": stamp,
            "updateTime": stamp,
            "expirationTime": (created + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).hexdigest().encode()).decode(),
            "uri": f"{base_url}/v1beta/files/{self.id}",
            "state": self.state(active_delay),
            "source": "UPLOADED",
        }
        if self.display_name:
            out["displayName"] = self.display_name
        return out


@dataclass
class FileStore:
    files: dict[str, StoredFile] = field(default_factory=dict)
    uploads: dict[str, StoredFile] = field(default_factory=dict)  # upload id -> pending file

    def clear(self) -> None:
        self.files.clear()
        self.uploads.clear()

    def start(self, key: str, meta: dict[str, Any], mime: str, size: int | None) -> str:
        """Open an upload session; returns its upload id."""
        display = meta.get("displayName") or meta.get("display_name") or ""
        name = str(meta.get("name") or "").removeprefix("files/")
        file = StoredFile(
            id=name or secrets.token_hex(6),
            key=key,
            mime_type=meta.get("mimeType") or meta.get("mime_type") or mime,
            display_name=display,
            expected_size=size,
        )
        upload_id = secrets.token_urlsafe(12)
        self.uploads[upload_id] = file
        return upload_id

    def receive(self, upload_id: str, offset: int, chunk: bytes, finalize: bool) -> StoredFile:
        file = self.uploads.get(upload_id)
        if file is None:
            raise GoogleError(404, "Upload session not found.", status="NOT_FOUND")
        if offset != len(file.data):
            raise GoogleError(400, f"Invalid upload offset {offset}; expected {len(file.data)}.")
        file.data += chunk
        if finalize:
            del self.uploads[upload_id]
            file.finalized = time.time()
            self.files[file.id] = file
        return file

    def get(self, file_id: str, key: str) -> StoredFile:
        file = self.files.get(file_id)
        if file is None or file.key != key:
            raise GoogleError(
                403,
                f"You do not have permission to access the File {file_id} or it may not exist.",
            )
        return file

    def check_uris(self, body: dict[str, Any], key: str, active_delay: float) -> None:
        """Every ``fileData.fileUri`` naming a File API file must be ours and ACTIVE."""
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                uri = (part.get("fileData") or {}).get("fileUri")
                match = _FILE_ID.search(uri) if isinstance(uri, str) else None
                if match is None:
                    continue  # other URIs (YouTube, public web) are Google's to fetch
                file = self.get(match.group(1), key)
                if file.state(active_delay) != "ACTIVE":
                    raise GoogleError(
                        400,
                        f"The File {file.id} is not in an ACTIVE state and usage is not allowed.",
                        status="FAILED_PRECONDITION",
                    )
