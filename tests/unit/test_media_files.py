"""File API uploads against the Gemini simulator (resumable protocol, ACTIVE polling), through the
real UpstreamClient and key pool: key pinning, and the cache by content and key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gemini_gateway.config import Settings
from gemini_gateway.media.files import EXPIRY_MARGIN, FileUploader, _expiry
from gemini_gateway.upstream.client import UpstreamClient
from gemini_gateway.upstream.keypool import KeyPool, key_id

SAMPLES = Path(__file__).parent.parent / "data" / "media"
KEYS = ["sim-key-1", "sim-key-2"]


@pytest.fixture
async def upstream(sim: Any) -> AsyncIterator[UpstreamClient]:
    settings = Settings().replace(upstream_base_url=sim.url, upstream_keys=",".join(KEYS))
    client = UpstreamClient(settings, KeyPool(KEYS))
    try:
        yield client
    finally:
        await client.close()


def _uploads(sim: Any) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r.get("action") == "uploadFile"]


async def test_upload_sends_the_bytes_and_waits_until_active(
    sim: Any, upstream: UpstreamClient
) -> None:
    sim.configure(file_active_delay=0.3)
    video = (SAMPLES / "video.mp4").read_bytes()
    uploader = FileUploader(upstream, poll_interval=0.05)
    uploaded = await uploader.upload(video, "video/mp4")

    assert uploaded.name.startswith("files/")
    assert uploaded.uri == f"{sim.url}/v1beta/files/{uploaded.name.removeprefix('files/')}"
    assert uploaded.mime_type == "video/mp4"
    assert sim.file_bytes(uploaded.name) == video
    requests = sim.requests()
    start, finish = _uploads(sim)
    assert start["headers"]["X-Goog-Upload-Protocol"] == "resumable"
    assert start["headers"]["X-Goog-Upload-Command"] == "start"
    assert start["headers"]["X-Goog-Upload-Header-Content-Length"] == str(len(video))
    assert start["headers"]["X-Goog-Upload-Header-Content-Type"] == "video/mp4"
    assert finish["headers"]["X-Goog-Upload-Command"] == "upload, finalize"
    assert finish["headers"]["X-Goog-Upload-Offset"] == "0"
    polls = [r for r in requests if r.get("action") == "getFile"]
    assert polls, "a PROCESSING file must be polled until ACTIVE"
    # Every keyed call uses the key that started the upload, and that key owns the file (the
    # upload URL itself carries the session, so the simulator records no key for that step).
    assert {key_id(r["key"]) for r in requests if r["key"]} == {uploaded.key_id}


async def test_same_content_is_not_uploaded_twice(sim: Any, upstream: UpstreamClient) -> None:
    png = (SAMPLES / "image.png").read_bytes()
    uploader = FileUploader(upstream, poll_interval=0.05)
    first = await uploader.upload(png, "image/png")
    again = await uploader.upload(png, "image/png")
    pinned_same = await uploader.upload(png, "image/png", pinned_key=first.key_id)
    assert again == first == pinned_same
    assert len(_uploads(sim)) == 2  # start + finalize, once
    assert uploader.find_by_uri(first.uri) == first


async def test_other_key_gets_its_own_upload(sim: Any, upstream: UpstreamClient) -> None:
    png = (SAMPLES / "image.png").read_bytes()
    uploader = FileUploader(upstream, poll_interval=0.05)
    first = await uploader.upload(png, "image/png", pinned_key=key_id(KEYS[0]))
    second = await uploader.upload(png, "image/png", pinned_key=key_id(KEYS[1]))
    assert first.key_id == key_id(KEYS[0]) and second.key_id == key_id(KEYS[1])
    assert first.uri != second.uri
    assert {r["key"] for r in _uploads(sim) if r["key"]} == set(KEYS)


async def test_expired_entries_are_uploaded_again(sim: Any, upstream: UpstreamClient) -> None:
    png = (SAMPLES / "image.png").read_bytes()
    now = [1_000_000.0]
    uploader = FileUploader(upstream, poll_interval=0.05, clock=lambda: now[0])
    first = await uploader.upload(png, "image/png")
    assert first.expires_at > 0
    now[0] = first.expires_at - EXPIRY_MARGIN + 1  # too close to expiry to trust
    assert uploader.find(first.sha256) is None
    second = await uploader.upload(png, "image/png")
    assert second.uri != first.uri
    assert len(_uploads(sim)) == 4


def test_expiry_parses_rfc3339_with_nanoseconds() -> None:
    assert _expiry("2026-01-01T00:00:00.123456789Z", 0) == pytest.approx(1767225600.123456)
    assert _expiry("2026-01-01T00:00:00Z", 0) == 1767225600.0
    assert _expiry(None, 10.0) == 10.0 + 48 * 3600
