"""Acceptance of media in (issue 4) and generated media (issue 6), as an outside client sees them.

Large media take their own paths through the gateway (the body read into one buffer, base64
strings lifted out before parsing, the upstream body sent in pieces): these tests push
megabyte-sized media through the real gateway process and check that Gemini (the simulator) got
exactly the right bytes and MIME type, streamed and not, on failover too. The pieces are also
checked against their plain equivalents (``orjson.loads`` / ``orjson.dumps``) directly.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import io
import json
import os
import wave
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from gemini_gateway.api.request_body import parse_json
from gemini_gateway.simulator.synth_media import png_for
from gemini_gateway.upstream.json_body import SplicedJsonPayload, encode_json_body
from tests.integration.helpers import assert_openai_error, get, post

SAMPLES = Path(__file__).parent.parent / "data" / "media"
MB = 1024 * 1024


def _video(size: int) -> bytes:
    """A real mp4 head padded with random bytes: sniffs as video/mp4, compresses to nothing."""
    head = (SAMPLES / "video.mp4").read_bytes()
    return head + os.urandom(size - len(head))


def _ask(url: str, *, stream: bool, model: str = "gemini-2.0-flash") -> dict[str, Any]:
    """The product page's video-understanding request with its placeholder filled."""
    return {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What happens in this video?"},
        {"type": "image_url", "image_url": {"url": url}}]}],
        "model": model, "stream": stream}


def _auth(gw: Any) -> dict[str, str]:
    return {"Authorization": gw.license}


def _generate_calls(sim: Any) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if "generatecontent" in r["path"].lower()]


def _print(data: bytes) -> tuple[int, str]:
    """Length and digest: a failing comparison stays readable with megabytes of media."""
    return len(data), hashlib.sha256(data).hexdigest()


def _inline_sent(call: dict[str, Any]) -> list[tuple[str, tuple[int, str]]]:
    return [
        (p["inlineData"]["mimeType"], _print(base64.b64decode(p["inlineData"]["data"])))
        for c in call["body"]["contents"] for p in c["parts"] if "inlineData" in p
    ]


# --- large media, end to end ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("form", ["data-url", "base64"])
def test_megabytes_of_video_reach_gemini_byte_exact(
    gateway: Any, sim: Any, form: str, stream: bool
) -> None:
    video = _video(3 * MB)
    text = base64.b64encode(video).decode()
    url = "data:video/quicktime;base64," + text if form == "data-url" else text
    resp = post(gateway.base_url + "/chat/completions", _ask(url, stream=stream), _auth(gateway))
    assert resp.status == 200, resp.body[:500]
    if stream:
        assert resp.sse_events()[-1] == "[DONE]"
        assert "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in resp.chunks() if c["choices"])
    else:
        assert resp.json()["choices"][0]["message"]["content"]
    (call,) = _generate_calls(sim)
    # sniffed, not the declared quicktime
    assert _inline_sent(call) == [("video/mp4", _print(video))]
    assert call["body"]["contents"][0]["parts"][0] == {"text": "What happens in this video?"}


def test_large_media_with_the_openai_sdk_every_part_kind(gateway: Any, sim: Any) -> None:
    video, audio_head = _video(2 * MB), (SAMPLES / "audio.wav").read_bytes()
    audio = audio_head + os.urandom(MB + 5)  # a wav header is all sniffing needs
    pdf = (SAMPLES / "document.pdf").read_bytes()
    completion = gateway.client().chat.completions.create(
        model="gemini-2.0-flash",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe all of these."},
            {"type": "image_url", "image_url": {
                "url": "data:video/mp4;base64," + base64.b64encode(video).decode()}},
            {"type": "input_audio", "input_audio": {
                "data": base64.b64encode(audio).decode(), "format": "mp3"}},
            {"type": "file", "file": {"filename": "report.txt", "file_data":
                                      "data:text/plain;base64," + base64.b64encode(pdf).decode()}},
        ]}],
    )
    assert completion.choices[0].message.content
    (call,) = _generate_calls(sim)
    assert _inline_sent(call) == [
        ("video/mp4", _print(video)), ("audio/wav", _print(audio)),
        ("application/pdf", _print(pdf)),
    ]


def test_large_body_with_escaped_text_and_media_keeps_both(gateway: Any, sim: Any) -> None:
    """Text with quotes, backslashes and non-ASCII travels next to a lifted base64 string."""
    video = _video(2 * MB)
    question = 'Is "this" a C:\\path?\n¿Qué es? 猫 ' + "x" * 300_000  # long, but not base64
    body = _ask(base64.b64encode(video).decode(), stream=False)
    body["messages"][0]["content"][0]["text"] = question
    body["messages"].insert(0, {"role": "system", "content": "Be \"brief\"."})
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body[:500]
    (call,) = _generate_calls(sim)
    assert call["body"]["systemInstruction"]["parts"] == [{"text": 'Be "brief".'}]
    assert call["body"]["contents"][0]["parts"][0] == {"text": question}
    assert _inline_sent(call) == [("video/mp4", _print(video))]


def test_large_body_is_resent_whole_on_failover(gateway: Any, sim: Any) -> None:
    """The body sent in pieces can be sent again: the second key gets every byte."""
    sim.add_fault(status=503, times=1)
    video = _video(2 * MB)
    resp = post(gateway.base_url + "/chat/completions",
                _ask(base64.b64encode(video).decode(), stream=True), _auth(gateway))
    assert resp.status == 200, resp.body[:500]
    calls = _generate_calls(sim)
    assert len(calls) == 2 and calls[0]["key"] != calls[1]["key"]
    for call in calls:
        assert _inline_sent(call) == [("video/mp4", _print(video))]


def test_chunked_large_body_without_content_length(gateway: Any, sim: Any) -> None:
    video = _video(2 * MB)
    raw = json.dumps(_ask(base64.b64encode(video).decode(), stream=False)).encode()
    split = urlsplit(gateway.url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    try:
        conn.request("POST", "/gemini/v1/chat/completions",
                     body=iter([raw[i : i + 65536] for i in range(0, len(raw), 65536)]),
                     headers={"Content-Type": "application/json",
                              "Authorization": gateway.license},
                     encode_chunked=True)
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()[:500]
        answer.read()
    finally:
        conn.close()
    (call,) = _generate_calls(sim)
    assert _inline_sent(call) == [("video/mp4", _print(video))]


def test_body_over_the_limit_is_413_from_content_length(start_gateway: Any, sim: Any) -> None:
    gw = start_gateway(max_body_bytes=2 * MB)
    body = _ask(base64.b64encode(_video(2 * MB)).decode(), stream=False)
    assert_openai_error(post(gw.base_url + "/chat/completions", body, _auth(gw)), 413)
    assert not _generate_calls(sim)


def test_large_invalid_json_is_still_400(gateway: Any) -> None:
    raw = b'{"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "'
    raw += base64.b64encode(os.urandom(MB)) + b'"}]'  # the closing brace is missing
    error = assert_openai_error(post(gateway.base_url + "/chat/completions", None,
                                     _auth(gateway), raw=raw), 400, "invalid_request_error")
    assert "JSON" in error["message"]


def test_large_media_over_inline_limit_uploads_once_and_pins_the_key(
    start_gateway: Any, sim: Any
) -> None:
    gw = start_gateway(inline_limit_bytes=MB)
    video = _video(2 * MB)
    body = _ask("data:video/mp4;base64," + base64.b64encode(video).decode(), stream=True)
    for _ in range(2):  # the next turn resends the same video: served from the upload cache
        resp = post(gw.base_url + "/chat/completions", body, _auth(gw))
        assert resp.status == 200, resp.body[:500]
    requests = sim.requests()
    uploads = [r for r in requests if r.get("action") == "uploadFile"]
    assert len(uploads) == 2  # start + upload/finalize, once
    for call in _generate_calls(sim):
        (file_data,) = [p["fileData"] for c in call["body"]["contents"]
                        for p in c["parts"] if "fileData" in p]
        assert file_data["mimeType"] == "video/mp4"
        assert _print(sim.file_bytes(file_data["fileUri"].rsplit("/", 1)[1])) == _print(video)
        assert call["key"] == uploads[0]["key"]
        assert not _inline_sent(call)


# --- the pieces against their plain equivalents -----------------------------------------------


def _documents() -> list[Any]:
    big = base64.b64encode(os.urandom(600_000)).decode()
    return [
        {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": 'q "x" \\ é'},
            {"type": "image_url", "image_url": {"url": big}},
            {"type": "image_url", "image_url": {"url": "DATA:video/mp4;codecs=x;base64," + big}},
            {"type": "input_audio", "input_audio": {"data": big[:300_000], "format": "wav"}}]}]},
        {big: big, "list": [big, 1, None, True, "s", {"k": big}]},  # a long key stays a key
        {"inside": 'a\\"' + big + '\\"b', "pad": big},  # quotes escaped inside another string
        {"text": "z" * (2 * MB), "numbers": list(range(200_000))},
        [big, "tail"],
    ]


@pytest.mark.parametrize("indent", [False, True], ids=["compact", "indented"])
def test_parse_json_equals_orjson_loads(indent: bool) -> None:
    for document in _documents():
        raw = orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else 0)
        raw = raw + b" " * (MB - len(raw)) if len(raw) < MB else raw  # over the fast-path size
        assert parse_json(bytearray(raw)) == orjson.loads(raw), _print(raw)


@pytest.mark.parametrize("raw", [
    b'{"a": "' + b"QUJD" * 300_000 + b'"',  # unterminated object
    b'{"a": ' + b"QUJD" * 300_000 + b"}",  # a bare word
    b'{"a": "' + b"QUJD" * 300_000 + b'" "b": 1}',  # missing comma
    b"[" + b"1," * 600_000 + b"]",  # trailing comma
], ids=["unterminated", "bare", "comma", "trailing"])
def test_parse_json_refuses_what_orjson_refuses(raw: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(orjson.JSONDecodeError):
        parse_json(raw)


def _gemini_body(data: str) -> dict[str, Any]:
    return {
        "generationConfig": {"temperature": 0.5},
        "contents": [
            {"role": "user", "parts": [{"text": 'say "hi" é'}, {"inlineData": {
                "mimeType": "video/mp4", "data": data}}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]},
        ],
        "systemInstruction": {"parts": [{"inlineData": {"mimeType": "a/b", "data": data[:MB]}}]},
    }


class _Sink:
    """Stands for aiohttp's stream writer: collects what a payload writes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(bytes(chunk))


def test_large_inline_data_is_sent_in_pieces_equal_to_orjson_dumps() -> None:
    body = _gemini_body(base64.b64encode(os.urandom(2 * MB)).decode())
    before = orjson.dumps(body)
    encoded = encode_json_body(body)
    assert isinstance(encoded, SplicedJsonPayload)
    assert encoded.size == len(before)
    assert max(len(c) for c in encoded.chunks()) <= MB
    assert orjson.dumps(body) == before  # the caller's body is not changed
    for _ in range(2):  # written twice (a retry): the same bytes both times
        sink = _Sink()
        asyncio.run(encoded.write_with_length(sink, None))  # type: ignore[arg-type]
        assert _print(b"".join(sink.chunks)) == _print(before)
    sink = _Sink()
    asyncio.run(encoded.write_with_length(sink, 1000))  # type: ignore[arg-type]
    assert b"".join(sink.chunks) == before[:1000]


@pytest.mark.parametrize("data", [
    "QUJD" * 1000,  # small: the plain path
    "é" * (2 * MB),  # not ASCII
    'a"b\\c' * (MB // 2),  # needs escaping
    "\n".join(["QUJD" * 19] * 20_000),  # line-wrapped base64 needs escaping too
], ids=["small", "non-ascii", "escapes", "wrapped"])
def test_other_bodies_take_the_plain_path(data: str) -> None:
    body = _gemini_body(data)
    encoded = encode_json_body(body)
    assert isinstance(encoded, bytes)
    assert _print(encoded) == _print(orjson.dumps(body))


# --- generated media (issue 6) as strict clients read it --------------------------------------


def test_image_generation_non_streamed_shape_and_link(gateway: Any, sim: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Draw a kitten"}],
            "model": "gemini-2.0-flash-preview-image-generation"}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body[:500]
    completion = resp.json()
    assert completion["object"] == "chat.completion" and isinstance(completion["created"], int)
    message = completion["choices"][0]["message"]
    assert message["role"] == "assistant"
    (image,) = message["images"]
    assert image["type"] == "image_url"
    url = image["image_url"]["url"]
    assert f"![image]({url})" in message["content"]
    path = urlsplit(url).path
    assert path.startswith("/gemini/v1/files/") and len(path.rsplit("/", 1)[1]) >= 16
    served = get(gateway.url + path)
    assert served.status == 200 and served.headers["content-type"].startswith("image/png")
    assert served.body == png_for("Draw a kitten")
    (call,) = _generate_calls(sim)
    modalities = call["body"]["generationConfig"]["responseModalities"]
    assert sorted(m.upper() for m in modalities) == ["IMAGE", "TEXT"]


def test_speech_on_chat_is_a_real_wav_in_message_audio(gateway: Any, sim: Any) -> None:
    completion = gateway.client().chat.completions.create(
        model="gemini-2.5-flash-preview-tts",
        messages=[{"role": "user", "content": "Say cheerfully: have a wonderful day!"}],
        audio={"voice": "Kore", "format": "wav"}, modalities=["audio"],
    )
    audio = completion.choices[0].message.audio
    assert audio is not None and audio.id and isinstance(audio.expires_at, int)
    assert isinstance(audio.transcript, str)
    with wave.open(io.BytesIO(base64.b64decode(audio.data))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.getnframes() > 0
    (call,) = _generate_calls(sim)
    config = call["body"]["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    voice = config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
    assert voice == "Kore"


@pytest.mark.parametrize("flaw", ["bad-char", "inner-padding"])
def test_large_undecodable_base64_is_400(gateway: Any, sim: Any, flaw: str) -> None:
    """Checked a megabyte at a time: a flaw far from the head is still found."""
    text = base64.b64encode(_video(3 * MB)).decode()
    middle = len(text) // 2 // 4 * 4
    text = text[:middle] + ("!!!!" if flaw == "bad-char" else "QQ==") + text[middle + 4 :]
    resp = post(gateway.base_url + "/chat/completions", _ask(text, stream=False), _auth(gateway))
    error = assert_openai_error(resp, 400, "invalid_request_error")
    assert "base64" in error["message"]
    assert not _generate_calls(sim)


def test_padding_at_a_check_boundary_is_not_accepted() -> None:
    from gemini_gateway.media.inline import _CHECK_CHUNK, check_base64

    text = base64.b64encode(_video(3 * MB)).decode()
    head = check_base64(text, 4 * MB)
    assert head is not None and head == base64.b64decode(text[:MB])[: len(head)]
    flawed = text[: _CHECK_CHUNK - 4] + "QQ==" + text[_CHECK_CHUNK:]
    assert check_base64(flawed, 4 * MB) is None


# --- references, refusals and limits through the real gateway -------------------------------


def test_a_file_the_keys_cannot_see_is_the_clients_error_not_the_keys(
    start_gateway: Any, sim: Any
) -> None:
    """Gemini answers 403 for a File API URI the key cannot read: no key may be disabled for it."""
    gw = start_gateway()
    uri = "https://generativelanguage.googleapis.com/v1beta/files/notours123"
    resp = post(gw.base_url + "/chat/completions", _ask(uri, stream=False), _auth(gw))
    error = assert_openai_error(resp, 403, "invalid_request_error")
    assert "notours123" in error["message"]
    calls = _generate_calls(sim)
    assert len(calls) == 1  # passed on at once, not tried on every key
    parts = calls[0]["body"]["contents"][0]["parts"]
    assert {"fileData": {"fileUri": uri}} in parts
    for _ in range(3):  # both keys still serve
        again = post(gw.base_url + "/chat/completions",
                     {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]},
                     _auth(gw))
        assert again.status == 200, again.body[:300]


@pytest.mark.parametrize("url", [
    "https://youtu.be/9hE5-98ZeCg", "https://m.youtube.com/watch?v=9hE5-98ZeCg&t=10",
    "https://www.youtube.com/shorts/9hE5-98ZeCg",
])
def test_youtube_links_are_not_downloaded(gateway: Any, sim: Any, url: str) -> None:
    resp = post(gateway.base_url + "/chat/completions", _ask(url, stream=True), _auth(gateway))
    assert resp.status == 200, resp.body[:300]
    (call,) = _generate_calls(sim)
    assert {"fileData": {"fileUri": url}} in call["body"]["contents"][0]["parts"]


@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:127.0.0.1]/image.png", "loopback"),
    ("http://[::1]/image.png", "loopback"),
    ("http://10.1.2.3/image.png", "private"),
    ("http://0x7f000001/image.png", "loopback"),
    ("http://224.0.0.1/image.png", "multicast"),
])
def test_ssrf_targets_are_refused_with_the_reason(
    gateway: Any, sim: Any, url: str, why: str
) -> None:
    resp = post(gateway.base_url + "/chat/completions", _ask(url, stream=True), _auth(gateway))
    error = assert_openai_error(resp, 400, "invalid_request_error")
    assert why in error["message"]
    assert not _generate_calls(sim)


def test_allow_private_lets_the_operator_fetch_from_loopback(start_gateway: Any, sim: Any) -> None:
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(SAMPLES), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        gw = start_gateway(media_allow_private=True)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        body = _ask(base + "/image.heic", stream=False)
        body["messages"][0]["content"].append(
            {"type": "image_url", "image_url": {"url": base + "/audio.flac"}})
        resp = post(gw.base_url + "/chat/completions", body, _auth(gw))
        assert resp.status == 200, resp.body[:300]
    finally:
        server.shutdown()
        server.server_close()
    (call,) = _generate_calls(sim)
    assert _inline_sent(call) == [
        ("image/heic", _print((SAMPLES / "image.heic").read_bytes())),
        ("audio/flac", _print((SAMPLES / "audio.flac").read_bytes())),
    ]


def test_media_item_over_the_limit_is_413(start_gateway: Any, sim: Any) -> None:
    gw = start_gateway(media_max_bytes=MB)
    body = _ask("data:video/mp4;base64," + base64.b64encode(_video(MB + 100)).decode(),
                stream=True)
    assert_openai_error(post(gw.base_url + "/chat/completions", body, _auth(gw)), 413)
    assert not _generate_calls(sim)


@pytest.mark.parametrize(("message", "reason", "fault"), [
    ("You do not have permission to access the File abc or it may not exist.", None, "CLIENT"),
    ("CachedContent not found (or permission denied)", None, "CLIENT"),
    ("Method doesn't allow unregistered callers (callers without established identity).",
     None, "KEY_REFUSED"),
    ("Requests to this API are blocked.", "API_KEY_SERVICE_BLOCKED", "KEY_REFUSED"),
    ("Generative Language API has not been used in project 1 or it is disabled.",
     "SERVICE_DISABLED", "KEY_REFUSED"),
])
def test_a_403_disables_the_key_only_when_it_is_about_the_key(
    message: str, reason: str | None, fault: str
) -> None:
    from gemini_gateway.upstream.google_error import Fault, parse_google_error

    error: dict[str, Any] = {"code": 403, "status": "PERMISSION_DENIED", "message": message}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": reason, "domain": "googleapis.com"}]
    assert parse_google_error(403, orjson.dumps({"error": error})).fault is Fault[fault]


def test_speech_streamed_over_several_events_is_one_wav_and_one_link() -> None:
    """Real Gemini streams TTS audio over many events: the client gets one playable WAV."""
    from gemini_gateway.translate.call import ResponseContext
    from gemini_gateway.translate.request import chat_request_to_gemini
    from gemini_gateway.translate.stream import ChatStreamTranslator

    pieces = [bytes([i]) * 4800 for i in range(1, 4)]
    mime = "audio/L16;codec=pcm;rate=24000"
    events: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": mime, "data": base64.b64encode(pcm).decode()}}]}}]}
        for pcm in pieces
    ]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    events.append({"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 30,
                                     "totalTokenCount": 34}})
    call = chat_request_to_gemini({"model": "gemini-2.5-flash-preview-tts", "stream": True,
                                   "messages": [{"role": "user", "content": "Say hello"}]})
    links: list[str] = []

    def media_url(mime_type: str, data: str) -> str:
        links.append(mime_type)
        return f"http://gw/gemini/v1/files/{len(links)}"

    translator = ChatStreamTranslator(call, ResponseContext("chatcmpl-1", 1, media_url=media_url))
    chunks = [c for e in events for c in translator.feed(e)] + translator.finish()
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    audio = [d["audio"] for d in deltas if "audio" in d]
    assert len(audio) == 1 and links == ["audio/wav"]
    assert "".join(d.get("content") or "" for d in deltas) == "[audio](http://gw/gemini/v1/files/1)"
    with wave.open(io.BytesIO(base64.b64decode(audio[0]["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.readframes(10**6) == b"".join(pieces)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
