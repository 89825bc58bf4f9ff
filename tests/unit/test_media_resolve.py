"""MediaResolver end to end: OpenAI media parts (as the docs show them) → Gemini parts, with real
sample files, a real HTTP server on loopback, the gateway's generated-file store and the Gemini
simulator for File API uploads."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gemini_gateway.config import Settings
from gemini_gateway.errors import InvalidRequest, PayloadTooLarge, UnsupportedMedia
from gemini_gateway.media.generated import GeneratedFiles
from gemini_gateway.media.resolve import MediaResolver
from gemini_gateway.upstream.client import UpstreamClient
from gemini_gateway.upstream.keypool import KeyPool

SAMPLES = Path(__file__).parent.parent / "data" / "media"
PNG = (SAMPLES / "image.png").read_bytes()
MP4 = (SAMPLES / "video.mp4").read_bytes()
WAV = (SAMPLES / "audio.wav").read_bytes()
PDF = (SAMPLES / "document.pdf").read_bytes()
KEYS = ["sim-key-1", "sim-key-2"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_url(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "param": "messages[0].content[1]"}


@pytest.fixture
async def resolver() -> AsyncIterator[MediaResolver]:
    r = MediaResolver(Settings(), None)
    try:
        yield r
    finally:
        await r.close()


async def test_data_url_is_sniffed_not_trusted(resolver: MediaResolver) -> None:
    text = b64(PNG)
    result = await resolver.resolve_parts([image_url("data:image/jpeg;base64," + text)])
    assert result.parts == [{"inlineData": {"mimeType": "image/png", "data": text}}]
    assert result.pinned_key is None


async def test_bare_base64_string_is_reused_not_re_encoded(resolver: MediaResolver) -> None:
    text = b64(MP4)
    result = await resolver.resolve_parts([image_url(text)])
    assert result.parts[0]["inlineData"]["mimeType"] == "video/mp4"
    assert result.parts[0]["inlineData"]["data"] is text


async def test_url_safe_base64_is_re_encoded_as_standard(resolver: MediaResolver) -> None:
    text = base64.urlsafe_b64encode(WAV).decode().rstrip("=")
    result = await resolver.resolve_parts([image_url(text)])
    assert result.parts == [{"inlineData": {"mimeType": "audio/wav", "data": b64(WAV)}}]


async def test_input_audio_format_is_ignored(resolver: MediaResolver) -> None:
    part = {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "mp3"}}
    result = await resolver.resolve_parts([part])
    assert result.parts[0]["inlineData"]["mimeType"] == "audio/wav"


async def test_file_data_pdf(resolver: MediaResolver) -> None:
    part = {"type": "file", "file": {"filename": "a.txt",
                                     "file_data": "data:text/plain;base64," + b64(PDF)}}
    result = await resolver.resolve_parts([part])
    assert result.parts == [{"inlineData": {"mimeType": "application/pdf", "data": b64(PDF)}}]


async def test_file_id_of_the_file_api(resolver: MediaResolver) -> None:
    part = {"type": "file", "file": {"file_id": "files/abc-123"}}
    result = await resolver.resolve_parts([part])
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc-123"
    assert result.parts == [{"fileData": {"fileUri": uri}}]


async def test_openai_file_id_is_refused(resolver: MediaResolver) -> None:
    with pytest.raises(InvalidRequest, match="File API"):
        await resolver.resolve_parts([{"type": "file", "file": {"file_id": "file-abc123"}}])


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=9hE5-98ZeCg",
        "https://youtube.com/watch?feature=share&v=9hE5-98ZeCg",
        "https://youtu.be/9hE5-98ZeCg",
        "https://www.youtube.com/shorts/abcDEF12345",
        "https://generativelanguage.googleapis.com/v1beta/files/xyz789",
    ],
)
async def test_youtube_and_file_api_uris_are_not_downloaded(
    url: str, resolver: MediaResolver
) -> None:
    # Default settings: a download attempt would fail (no network), so success proves none ran.
    result = await resolver.resolve_parts([image_url(url)])
    assert result.parts == [{"fileData": {"fileUri": url}}]


async def test_unsupported_media_names_type_and_place(resolver: MediaResolver) -> None:
    gif = (SAMPLES / "image.gif").read_bytes()
    with pytest.raises(UnsupportedMedia) as info:
        await resolver.resolve_parts([image_url("data:image/gif;base64," + b64(gif))])
    assert "GIF" in info.value.message
    assert info.value.param == "messages[0].content[1]"


async def test_undecodable_base64_is_400(resolver: MediaResolver) -> None:
    with pytest.raises(InvalidRequest) as info:
        await resolver.resolve_parts([image_url("this is not base64 !!")])
    assert info.value.status == 400


async def test_too_large_item_is_413() -> None:
    resolver = MediaResolver(Settings().replace(media_max_bytes=100), None)
    with pytest.raises(PayloadTooLarge):
        await resolver.resolve_parts([image_url(b64(MP4))])


async def test_private_url_refused_by_default(resolver: MediaResolver) -> None:
    with pytest.raises(InvalidRequest, match="loopback"):
        await resolver.resolve_parts([image_url("http://127.0.0.1:9/cat.png")])


# -- URLs from a real server ----------------------------------------------------------------------

@pytest.fixture
async def media_server() -> AsyncIterator[str]:
    async def serve(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", "0")))
        name = request.match_info["name"]
        # Content-Type lies on purpose: the resolver must sniff.
        return web.Response(body=(SAMPLES / name).read_bytes(), content_type="text/html")

    app = web.Application()
    app.add_routes([web.get("/media/{name}", serve)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_urls_are_fetched_in_parallel_in_order(media_server: str) -> None:
    resolver = MediaResolver(Settings().replace(media_allowed_networks="127.0.0.0/8"), None)
    try:
        started = asyncio.get_running_loop().time()
        result = await resolver.resolve_parts([
            image_url(f"{media_server}/media/video.webm?delay=0.4"),
            image_url(f"{media_server}/media/audio.flac?delay=0.4"),
            image_url(f"{media_server}/media/image.heic"),
        ])
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await resolver.close()
    assert elapsed < 0.75  # two 0.4 s fetches overlapped
    assert [p["inlineData"]["mimeType"] for p in result.parts] == [
        "video/webm", "audio/flac", "image/heic"
    ]
    assert base64.b64decode(result.parts[1]["inlineData"]["data"]) == (
        SAMPLES / "audio.flac"
    ).read_bytes()


# -- the gateway's own generated files ------------------------------------------------------------

async def test_generated_file_links_are_read_locally(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=60)
    file_id = files.save("image/png", PNG)
    resolver = MediaResolver(Settings(), None, files)
    try:
        result = await resolver.resolve_parts([
            image_url(f"/gemini/v1/files/{file_id}"),
            # Absolute link to a host that resolves nowhere: only a local read can succeed.
            image_url(f"http://gateway.invalid/gemini/v1/files/{file_id}"),
        ])
        with pytest.raises(InvalidRequest, match="no longer stored"):
            await resolver.resolve_parts([image_url("/gemini/v1/files/unknownid123")])
    finally:
        await resolver.close()
    expected = {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}}
    assert result.parts == [expected, expected]


async def test_resolve_messages_in_order(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=60)
    file_id = files.save("image/png", PNG)
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is said in this audio?"},
            {"type": "image_url", "image_url": {"url": b64(WAV)}},
        ]},
        {"role": "assistant", "content": f"Here: ![image](/gemini/v1/files/{file_id})"},
        {"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64," + b64(PDF),
                                      "filename": "doc.pdf"}},
        ]},
    ]
    resolver = MediaResolver(Settings(), None, files)
    result = await resolver.resolve(messages)
    assert [p["inlineData"]["mimeType"] for p in result.parts] == [
        "audio/wav", "image/png", "audio/wav", "application/pdf"
    ]
    assert (await resolver.resolve([{"role": "user", "content": "hi"}])).parts == []


# -- beyond the inline limit: the File API (simulator) ---------------------------------------------

@pytest.fixture
async def upstream(sim: Any) -> AsyncIterator[UpstreamClient]:
    settings = Settings().replace(upstream_base_url=sim.url, upstream_keys=",".join(KEYS))
    client = UpstreamClient(settings, KeyPool(KEYS))
    try:
        yield client
    finally:
        await client.close()


def _big_settings(sim: Any) -> Settings:
    # The mp4 (2.3 kB as base64) does not fit beside the png; the png alone does.
    return Settings().replace(upstream_base_url=sim.url, inline_limit_bytes=2000)


async def test_media_beyond_inline_limit_is_uploaded_and_pins_the_key(
    sim: Any, upstream: UpstreamClient
) -> None:
    resolver = MediaResolver(_big_settings(sim), upstream)
    resolver.uploader.poll_interval = 0.05  # type: ignore[union-attr]
    parts = [image_url(b64(PNG)), image_url(b64(MP4))]
    result = await resolver.resolve_parts(parts)

    assert result.parts[0] == {"inlineData": {"mimeType": "image/png", "data": b64(PNG)}}
    file_data = result.parts[1]["fileData"]
    assert file_data["mimeType"] == "video/mp4"
    assert sim.file_bytes(file_data["fileUri"].rsplit("/", 1)[1]) == MP4
    assert result.pinned_key is not None

    # The pinned key can use the file in a request (the simulator checks ownership and state).
    body = {"contents": [{"role": "user", "parts": [{"text": "what happens?"}, *result.parts]}]}
    answer = await upstream.generate("gemini-2.0-flash", body, pinned_key=result.pinned_key)
    assert answer.key_id == result.pinned_key

    # The conversation resends the same video: no second upload, same key.
    uploads = len([r for r in sim.requests() if r.get("action") == "uploadFile"])
    again = await resolver.resolve_parts(parts)
    assert again.parts == result.parts and again.pinned_key == result.pinned_key
    assert len([r for r in sim.requests() if r.get("action") == "uploadFile"]) == uploads

    # A client that sends the File API URI back is pinned to the owning key too.
    echoed = await resolver.resolve_parts([image_url(file_data["fileUri"])])
    assert echoed.parts == [{"fileData": file_data}]
    assert echoed.pinned_key == result.pinned_key


async def test_beyond_inline_limit_without_file_api_is_413() -> None:
    resolver = MediaResolver(Settings().replace(inline_limit_bytes=2000), None)
    with pytest.raises(PayloadTooLarge):
        await resolver.resolve_parts([image_url(b64(MP4))])
