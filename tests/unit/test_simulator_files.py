"""The File API over real HTTP: Google's resumable upload, file state, per-key access."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fixtures.simulator import SimulatorHandle

PAYLOAD = bytes(range(256)) * 40


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _upload(
    http: aiohttp.ClientSession, sim: SimulatorHandle, key: str, chunks: list[bytes]
) -> dict[str, Any]:
    """Google's resumable protocol: start, then chunks, the last one finalizing."""
    size = sum(len(c) for c in chunks)
    start_headers = {
        "x-goog-api-key": key,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(size),
        "X-Goog-Upload-Header-Content-Type": "application/pdf",
    }
    async with http.post(
        f"{sim.url}/upload/v1beta/files",
        headers=start_headers,
        json={"file": {"display_name": "report"}},
    ) as response:
        assert response.status == 200
        upload_url = response.headers["X-Goog-Upload-URL"]
    offset = 0
    for i, chunk in enumerate(chunks):
        command = "upload, finalize" if i == len(chunks) - 1 else "upload"
        headers = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
        async with http.post(upload_url, headers=headers, data=chunk) as response:
            assert response.status == 200
            status = response.headers["X-Goog-Upload-Status"]
            assert status == ("final" if command.endswith("finalize") else "active")
            if status == "final":
                return (await response.json())["file"]
        offset += len(chunk)
    raise AssertionError("upload never finalized")


def _with_file(uri: str) -> dict[str, Any]:
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Summarise this document"},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": uri}},
                ],
            }
        ]
    }


async def test_upload_get_and_raw_bytes(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    sim.configure(file_active_delay=0.2)
    file = await _upload(http, sim, "key-a", [PAYLOAD])
    assert file["name"].startswith("files/")
    assert file["uri"] == f"{sim.url}/v1beta/{file['name']}"
    assert file["mimeType"] == "application/pdf"
    assert file["displayName"] == "report"
    assert file["sizeBytes"] == str(len(PAYLOAD))
    assert file["state"] == "PROCESSING"
    assert sim.file_bytes(file["name"]) == PAYLOAD
    await asyncio.sleep(0.25)
    async with http.get(
        f"{sim.url}/v1beta/{file['name']}", headers={"x-goog-api-key": "key-a"}
    ) as response:
        assert (await response.json())["state"] == "ACTIVE"


async def test_chunked_upload(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    file = await _upload(http, sim, "key-a", [PAYLOAD[:4000], PAYLOAD[4000:8000], PAYLOAD[8000:]])
    assert sim.file_bytes(file["name"]) == PAYLOAD


async def test_wrong_offset_is_refused(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    headers = {
        "x-goog-api-key": "k",
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
    }
    async with http.post(f"{sim.url}/upload/v1beta/files", headers=headers, json={}) as response:
        url = response.headers["X-Goog-Upload-URL"]
    headers = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "7"}
    async with http.post(url, headers=headers, data=b"abc") as response:
        assert response.status == 400


async def test_file_is_private_to_its_key(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    sim.configure(file_active_delay=0)
    file = await _upload(http, sim, "key-a", [PAYLOAD])
    async with http.get(
        f"{sim.url}/v1beta/{file['name']}", headers={"x-goog-api-key": "key-b"}
    ) as response:
        assert response.status == 403
        error = (await response.json())["error"]
    assert error["status"] == "PERMISSION_DENIED"
    assert "You do not have permission to access the File" in error["message"]
    url = f"{sim.url}/v1beta/models/gemini-2.5-flash:generateContent"
    async with http.post(
        url, json=_with_file(file["uri"]), headers={"x-goog-api-key": "key-b"}
    ) as response:
        assert response.status == 403
    async with http.post(
        url, json=_with_file(file["uri"]), headers={"x-goog-api-key": "key-a"}
    ) as response:
        assert response.status == 200


async def test_processing_file_cannot_be_used(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    sim.configure(file_active_delay=30)
    file = await _upload(http, sim, "key-a", [PAYLOAD])
    url = f"{sim.url}/v1beta/models/gemini-2.5-flash:generateContent"
    async with http.post(
        url, json=_with_file(file["name"]), headers={"x-goog-api-key": "key-a"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["status"] == "FAILED_PRECONDITION"


async def test_unknown_file_uri_is_refused(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    url = f"{sim.url}/v1beta/models/gemini-2.5-flash:generateContent"
    body = _with_file("https://generativelanguage.googleapis.com/v1beta/files/doesnotexist")
    async with http.post(url, json=body, headers={"x-goog-api-key": "key-a"}) as response:
        assert response.status == 403


async def test_upload_needs_a_key(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    headers = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
    async with http.post(f"{sim.url}/upload/v1beta/files", headers=headers, json={}) as response:
        assert response.status == 403
