"""Media in, end to end: the product page's examples verbatim and the openai SDK, against the real
gateway process and the simulator, checking what reached "Gemini": the MIME type and the bytes."""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import assert_openai_error, post

SAMPLES = Path(__file__).parent.parent / "data" / "media"

EVERY_FORMAT = [
    ("image.png", "image/png"), ("image.jpg", "image/jpeg"), ("image.webp", "image/webp"),
    ("image.heic", "image/heic"), ("image.heif", "image/heif"),
    ("audio.wav", "audio/wav"), ("audio.mp3", "audio/mp3"), ("audio.aiff", "audio/aiff"),
    ("audio.aac", "audio/aac"), ("audio.ogg", "audio/ogg"), ("audio.flac", "audio/flac"),
    ("video.mp4", "video/mp4"), ("video.mpeg", "video/mpeg"), ("video.mov", "video/mov"),
    ("video.avi", "video/avi"), ("video.flv", "video/x-flv"), ("video.mpg", "video/mpeg"),
    ("video.webm", "video/webm"), ("video.wmv", "video/wmv"), ("video.3gp", "video/3gpp"),
    ("document.pdf", "application/pdf"),
]


def _b64(name: str) -> str:
    return base64.b64encode((SAMPLES / name).read_bytes()).decode()


def _product_page_example(question: str, url: str) -> dict[str, Any]:
    """The product page's image/audio/video understanding request, with its placeholder filled."""
    return {"messages": [{"role": "user", "content": [
        {"type": "text", "text": question},
        {"type": "image_url", "image_url": {"url": url}}]}],
        "model": "gemini-2.0-flash", "stream": True}


def _headers(gw: Any) -> dict[str, str]:
    return {"Authorization": gw.license}  # the product page sends the license bare


def _sent_parts(sim: Any) -> list[dict[str, Any]]:
    """The parts of the last generateContent call the simulator received."""
    calls = [r for r in sim.requests() if "generatecontent" in r["path"].lower()]
    assert calls, sim.requests()
    return [p for c in calls[-1]["body"]["contents"] for p in c["parts"]]


def _inline(parts: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [
        (p["inlineData"]["mimeType"], base64.b64decode(p["inlineData"]["data"]))
        for p in parts if "inlineData" in p
    ]


@pytest.mark.parametrize(("name", "mime"), [pytest.param(n, m, id=n) for n, m in EVERY_FORMAT])
def test_product_page_example_every_format(gateway: Any, sim: Any, name: str, mime: str) -> None:
    body = _product_page_example("What is in this file?", _b64(name))
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    assert resp.status == 200, resp.body[:500]
    assert resp.sse_events()[-1] == "[DONE]"
    parts = _sent_parts(sim)
    assert parts[0] == {"text": "What is in this file?"}
    assert _inline(parts) == [(mime, (SAMPLES / name).read_bytes())]


def test_openai_sdk_all_media_part_kinds(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    completion = client.chat.completions.create(
        model="gemini-2.0-flash",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {
                "url": "data:image/jpeg;base64," + _b64("image.png"), "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": _b64("audio.wav"), "format": "mp3"}},
            {"type": "file", "file": {"filename": "doc.pdf",
                                      "file_data": "data:application/pdf;base64,"
                                      + _b64("document.pdf")}},
        ]}],
    )
    assert completion.choices[0].message.content
    assert _inline(_sent_parts(sim)) == [
        ("image/png", (SAMPLES / "image.png").read_bytes()),
        ("audio/wav", (SAMPLES / "audio.wav").read_bytes()),
        ("application/pdf", (SAMPLES / "document.pdf").read_bytes()),
    ]


def test_youtube_link_goes_as_file_data(gateway: Any, sim: Any) -> None:
    url = "https://www.youtube.com/watch?v=9hE5-98ZeCg"
    body = _product_page_example("What happens in this video?", url)
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    assert resp.status == 200, resp.body[:500]
    assert {"fileData": {"fileUri": url}} in _sent_parts(sim)


def test_unsupported_format_is_400_naming_it(gateway: Any, sim: Any) -> None:
    body = _product_page_example("What is in this picture?", _b64("image.gif"))
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    error = assert_openai_error(resp, 400, "invalid_request_error")
    assert error["code"] == "unsupported_media_type"
    assert "GIF" in error["message"] and "heic" in error["message"]
    assert not [r for r in sim.requests() if "generatecontent" in r["path"].lower()]


def test_undecodable_base64_is_400(gateway: Any) -> None:
    body = _product_page_example("What is in this picture?", "%%% not base64 %%%")
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    assert_openai_error(resp, 400, "invalid_request_error")


def test_private_url_is_refused_by_default(gateway: Any, media_server: str) -> None:
    body = _product_page_example("What is in this picture?",
                                 media_server + "/image.png?token=SECRET")
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    error = assert_openai_error(resp, 400, "invalid_request_error")
    assert "loopback" in error["message"]
    assert "SECRET" not in error["message"]


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    """Serves tests/data/media over HTTP on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(SAMPLES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_url_fetched_with_allow_list(start_gateway: Any, sim: Any, media_server: str) -> None:
    gw = start_gateway(media_allowed_networks="127.0.0.1/32")
    body = _product_page_example("What happens in this video?", media_server + "/video.webm")
    body["stream"] = False
    resp = post(gw.base_url + "/chat/completions", body, _headers(gw))
    assert resp.status == 200, resp.body[:500]
    assert _inline(_sent_parts(sim)) == [("video/webm", (SAMPLES / "video.webm").read_bytes())]


def test_beyond_inline_limit_goes_through_file_api(start_gateway: Any, sim: Any) -> None:
    gw = start_gateway(inline_limit_bytes=2000)
    video = (SAMPLES / "video.mp4").read_bytes()
    body = _product_page_example("What happens in this video?", _b64("video.mp4"))
    for _ in range(2):  # the second turn resends the video: no second upload
        resp = post(gw.base_url + "/chat/completions", body, _headers(gw))
        assert resp.status == 200, resp.body[:500]
    requests = sim.requests()
    uploads = [r for r in requests if r.get("action") == "uploadFile"]
    assert len(uploads) == 2  # start + finalize, once
    calls = [r for r in requests if "generatecontent" in r["path"].lower()]
    assert len(calls) == 2
    for call in calls:
        parts = [p for c in call["body"]["contents"] for p in c["parts"]]
        file_data = next(p["fileData"] for p in parts if "fileData" in p)
        assert file_data["mimeType"] == "video/mp4"
        assert sim.file_bytes(file_data["fileUri"].rsplit("/", 1)[1]) == video
        assert call["key"] == uploads[0]["key"]  # served by the key that owns the file
