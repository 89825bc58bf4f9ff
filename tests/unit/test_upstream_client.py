"""UpstreamClient against a tiny Gemini stand-in on 127.0.0.1 whose answers each test sets.

Error bodies follow Google's error envelope (AIP-193) as the Gemini API sends it: ``{"error":
{"code", "message", "status", "details": [google.rpc.ErrorInfo | RetryInfo | QuotaFailure]}}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gemini_gateway.config import Settings
from gemini_gateway.errors import (
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gemini_gateway.upstream import http11
from gemini_gateway.upstream.client import UpstreamClient
from gemini_gateway.upstream.keypool import KeyPool, next_quota_reset

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY_A = "AIzaSyFakeKeyAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "AIzaSyFakeKeyBBBBBBBBBBBBBBBBBBBBBBBBBB"
KEY_C = "AIzaSyFakeKeyCCCCCCCCCCCCCCCCCCCCCCCCCC"
MODEL = "gemini-2.5-flash"
BODY = {"contents": [{"role": "user", "parts": [{"text": "What model are you?"}]}]}
ANSWER = {
    "candidates": [{"content": {"parts": [{"text": "I am Gemini."}], "role": "model"},
                    "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9},
    "modelVersion": MODEL,
}


def kid(secret: str) -> str:
    return "k-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(*quota_ids: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
             "quotaId": q, "quotaDimensions": {"location": "global", "model": MODEL}}
            for q in quota_ids
        ],
    }


QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
KEY_INVALID = google_error(
    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
)
PERMISSION_DENIED = google_error(
    403, "PERMISSION_DENIED", "Permission denied: Consumer 'api_key:…' has been suspended."
)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    key: str | None
    headers: dict[str, str]
    body: bytes
    url: str


def reply(status: int, body: Any) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    return handler


def sse_event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                 "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": MODEL}


class FakeGemini:
    """Answers per API key (``by_key``) or with ``default``; records every request."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.by_key: dict[str, Handler] = {}
        self.default: Handler = reply(200, ANSWER)
        self.release = asyncio.Event()  # ends the slow handlers at teardown
        self.disconnected = asyncio.Event()
        self.url = ""
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key")
        self.requests.append(Seen(request.method, request.path, dict(request.query), key,
                                  dict(request.headers), await request.read(), str(request.url)))
        return await self.by_key.get(key or "", self.default)(request)

    def keys_used(self) -> list[str | None]:
        return [r.key for r in self.requests]

    # behaviours ------------------------------------------------------------------------------

    def slow(self, before_headers: bool = True) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            if before_headers:
                await self._wait()
                return web.Response(status=200)
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await self._wait()
            return resp

        return handler

    async def _wait(self) -> None:
        try:
            await asyncio.wait_for(self.release.wait(), 5)
        except TimeoutError:
            pass

    def stream(
        self, events: list[bytes], *, cut: bool = False, hang: bool = False,
        endless: bool = False
    ) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            try:
                for event in events:
                    await resp.write(event)
                while endless:
                    await asyncio.sleep(0.02)
                    await resp.write(sse_event(chunk("more")))
            except (ConnectionError, asyncio.CancelledError):
                self.disconnected.set()
                raise
            if cut:
                assert request.transport is not None
                request.transport.close()
                return resp
            if hang:
                await self._wait()
            await resp.write_eof()
            return resp

        return handler


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    gemini = FakeGemini()
    runner = web.AppRunner(gemini.app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gemini.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield gemini
    gemini.release.set()
    await runner.cleanup()


@pytest.fixture
async def make_client(
    fake: FakeGemini,
) -> AsyncIterator[Callable[..., UpstreamClient]]:
    clients: list[UpstreamClient] = []

    def make(keys: list[str], pool: KeyPool | None = None, **settings: Any) -> UpstreamClient:
        values = {"upstream_base_url": fake.url, "upstream_timeout": 5.0,
                  "upstream_max_attempts": 4, **settings}
        client = UpstreamClient(Settings(values), pool or KeyPool(keys), backoff_base=0.01)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def snapshot(client: UpstreamClient) -> dict[str, Any]:
    return {row.id: row for row in client.pool.snapshot()}


# -- generate: the happy path ----------------------------------------------------------------------


async def test_generate_sends_key_only_in_header(fake: FakeGemini, make_client: Any) -> None:
    client = make_client([KEY_A])
    result = await client.generate(MODEL, BODY)
    assert result.data == ANSWER
    assert (result.key_id, result.attempts) == (kid(KEY_A), 1)
    [seen] = fake.requests
    assert (seen.method, seen.path) == ("POST", f"/v1beta/models/{MODEL}:generateContent")
    assert seen.key == KEY_A
    assert KEY_A not in seen.url and "key" not in seen.query
    assert seen.headers["Content-Type"] == "application/json"
    assert orjson.loads(seen.body) == BODY


async def test_api_version_and_model_are_part_of_the_path(
    fake: FakeGemini, make_client: Any
) -> None:
    client = make_client([KEY_A], upstream_api_version="v1")
    await client.generate("gemini-2.5-flash/../../x?key=1", BODY)
    assert fake.requests[0].url.startswith(f"{fake.url}/v1/models/gemini-2.5-flash%2F..%2F")
    assert fake.requests[0].query == {}


async def test_requests_spread_over_keys(fake: FakeGemini, make_client: Any) -> None:
    client = make_client([KEY_A, KEY_B, KEY_C])
    for _ in range(6):
        await client.generate(MODEL, BODY)
    assert sorted(fake.keys_used()) == sorted([KEY_A, KEY_B, KEY_C] * 2)


async def test_not_json_is_upstream_error(fake: FakeGemini, make_client: Any) -> None:
    async def html(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    fake.default = html
    with pytest.raises(UpstreamError, match="not JSON"):
        await make_client([KEY_A]).generate(MODEL, BODY)


# -- 429: cool-down and failover -------------------------------------------------------------------


async def test_429_cools_key_for_retry_delay_and_fails_over(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_A] = reply(429, google_error(
        429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
        quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"), retry_info("37s")))
    client = make_client([KEY_A, KEY_B])
    result = await client.generate(MODEL, BODY)
    assert (result.key_id, result.attempts) == (kid(KEY_B), 2)
    assert fake.keys_used() == [KEY_A, KEY_B]
    row = snapshot(client)[kid(KEY_A)]
    assert row.state == "cooling"
    assert row.cooling_until == pytest.approx(time.time() + 37, abs=2)
    fake.requests.clear()
    for _ in range(3):
        await client.generate(MODEL, BODY)
    assert fake.keys_used() == [KEY_B] * 3  # the cooling key is left alone


async def test_per_day_quota_cools_until_midnight_pacific(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_A] = reply(429, google_error(
        429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
        quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"), retry_info("20s")))
    client = make_client([KEY_A, KEY_B])
    await client.generate(MODEL, BODY)
    row = snapshot(client)[kid(KEY_A)]
    assert row.cooling_until == pytest.approx(next_quota_reset(time.time()), abs=2)


async def test_429_without_hint_cools_60_seconds(fake: FakeGemini, make_client: Any) -> None:
    fake.by_key[KEY_A] = reply(429, google_error(
        429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."))
    client = make_client([KEY_A, KEY_B])
    await client.generate(MODEL, BODY)
    row = snapshot(client)[kid(KEY_A)]
    assert row.cooling_until == pytest.approx(time.time() + 60, abs=2)


async def test_all_keys_exhausted_is_429_with_soonest_retry_after(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_A] = reply(429, google_error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                                                 retry_info("37s")))
    fake.by_key[KEY_B] = reply(429, google_error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                                                 retry_info("12.5s")))
    client = make_client([KEY_A, KEY_B])
    with pytest.raises(RateLimited) as info:
        await client.generate(MODEL, BODY)
    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(12.5, abs=1)
    assert info.value.headers["Retry-After"] in {"12", "13"}
    assert len(fake.requests) == 2
    # the next request does not even reach upstream
    with pytest.raises(RateLimited):
        await client.generate(MODEL, BODY)
    assert len(fake.requests) == 2


# -- 5xx, timeouts, connection errors: bounded retries ---------------------------------------------


async def test_5xx_retried_on_another_key_without_penalty(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_A] = reply(500, google_error(
        500, "INTERNAL", "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"))
    client = make_client([KEY_A, KEY_B])
    result = await client.generate(MODEL, BODY)
    assert (result.key_id, result.attempts) == (kid(KEY_B), 2)
    row = snapshot(client)[kid(KEY_A)]
    assert row.state == "healthy"
    assert (row.failures, row.last_error) == (1, "An internal error has occurred. Please retry "
                                               "or report in https://developers.generativeai"
                                               ".google/guide/troubleshooting")


async def test_retries_are_bounded_by_max_attempts(fake: FakeGemini, make_client: Any) -> None:
    fake.default = reply(503, google_error(503, "UNAVAILABLE", "The model is overloaded. "
                                           "Please try again later."))
    client = make_client([KEY_A, KEY_B, KEY_C, "AIzaSyFakeKeyD", "AIzaSyFakeKeyE"],
                         upstream_max_attempts=3)
    with pytest.raises(UpstreamUnavailable, match="overloaded") as info:
        await client.generate(MODEL, BODY)
    assert info.value.status == 503
    assert len(fake.requests) == 3
    assert len(set(fake.keys_used())) == 3  # each retry on another key


async def test_single_key_5xx_retried_on_the_same_key(fake: FakeGemini, make_client: Any) -> None:
    answers = iter([reply(503, google_error(503, "UNAVAILABLE", "overloaded")),
                    reply(200, ANSWER)])

    async def flaky(request: web.Request) -> web.StreamResponse:
        return await next(answers)(request)

    fake.default = flaky
    result = await make_client([KEY_A]).generate(MODEL, BODY)
    assert (result.data, result.attempts) == (ANSWER, 2)


async def test_upstream_504_is_timeout(fake: FakeGemini, make_client: Any) -> None:
    fake.default = reply(504, google_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded."))
    with pytest.raises(UpstreamTimeout):
        await make_client([KEY_A], upstream_max_attempts=2).generate(MODEL, BODY)
    assert len(fake.requests) == 2


async def test_timeout_before_first_byte_fails_over(fake: FakeGemini, make_client: Any) -> None:
    fake.by_key[KEY_A] = fake.slow()
    client = make_client([KEY_A, KEY_B], upstream_timeout=0.2)
    result = await client.generate(MODEL, BODY)
    assert (result.key_id, result.attempts) == (kid(KEY_B), 2)


async def test_all_slow_is_504(fake: FakeGemini, make_client: Any) -> None:
    fake.default = fake.slow()
    client = make_client([KEY_A, KEY_B], upstream_timeout=0.2, upstream_max_attempts=2)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        await client.generate(MODEL, BODY)
    assert info.value.status == 504
    assert time.monotonic() - started < 2
    assert len(fake.requests) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_502(make_client: Any) -> None:
    client = make_client([KEY_A], upstream_base_url=f"http://127.0.0.1:{free_port()}",
                         upstream_max_attempts=2)
    with pytest.raises(UpstreamError, match="connect") as info:
        await client.generate(MODEL, BODY)
    assert info.value.status == 502
    # The lean client's error, or aiohttp's when a proxy is set.
    assert isinstance(info.value.__cause__, http11.ConnectFailed | aiohttp.ClientConnectorError)


# -- key refused: disabled -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "label"),
    [
        pytest.param(400, KEY_INVALID, "API_KEY_INVALID", id="api-key-invalid"),
        pytest.param(403, PERMISSION_DENIED, "PERMISSION_DENIED", id="permission-denied"),
    ],
)
async def test_refused_key_disabled_and_request_served_by_another(
    fake: FakeGemini, make_client: Any, caplog: pytest.LogCaptureFixture,
    status: int, body: dict, label: str,
) -> None:
    fake.by_key[KEY_A] = reply(status, body)
    client = make_client([KEY_A, KEY_B])
    with caplog.at_level(logging.INFO, logger="gemini_gateway.upstream"):
        result = await client.generate(MODEL, BODY)
    assert result.key_id == kid(KEY_B)
    row = snapshot(client)[kid(KEY_A)]
    assert row.state == "disabled"
    assert label in (row.reason or "")
    assert f"upstream key {kid(KEY_A)} disabled" in caplog.text
    assert KEY_A not in caplog.text and KEY_B not in caplog.text
    fake.requests.clear()
    await client.generate(MODEL, BODY)
    assert fake.keys_used() == [KEY_B]


async def test_all_keys_refused_is_503(fake: FakeGemini, make_client: Any) -> None:
    fake.default = reply(400, KEY_INVALID)
    with pytest.raises(UpstreamUnavailable) as info:
        await make_client([KEY_A, KEY_B]).generate(MODEL, BODY)
    assert info.value.status == 503


# -- the client's own bad request ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(400, google_error(
            400, "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified\n"), id="400"),
        pytest.param(404, google_error(
            404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta, or is not "
            "supported for generateContent. Call ListModels to see the list of available "
            "models and their supported methods."), id="404-model"),
        pytest.param(413, google_error(413, "", "Request payload size exceeds the limit: "
                                       "20971520 bytes."), id="413"),
    ],
)
async def test_client_error_passed_on_never_retried_never_penalised(
    fake: FakeGemini, make_client: Any, status: int, body: dict
) -> None:
    fake.default = reply(status, body)
    client = make_client([KEY_A, KEY_B])
    with pytest.raises(UpstreamRejected) as info:
        await client.generate(MODEL, BODY)
    assert info.value.status == status
    assert info.value.message == body["error"]["message"]
    assert len(fake.requests) == 1
    for row in snapshot(client).values():
        assert (row.state, row.failures) == ("healthy", 0)


async def test_anything_like_an_api_key_is_scrubbed(fake: FakeGemini, make_client: Any) -> None:
    fake.default = reply(400, google_error(
        400, "INVALID_ARGUMENT", f"Bad request made with {KEY_A}, not {KEY_B}."))
    with pytest.raises(UpstreamRejected) as info:
        await make_client([KEY_A]).generate(MODEL, BODY)
    assert KEY_A not in info.value.message and KEY_B not in info.value.message
    assert info.value.message == "Bad request made with [upstream key], not AIza…."


# -- pinned keys -----------------------------------------------------------------------------------


async def test_pinned_key_serves_every_attempt(fake: FakeGemini, make_client: Any) -> None:
    client = make_client([KEY_A, KEY_B, KEY_C])
    for _ in range(3):
        result = await client.generate(MODEL, BODY, pinned_key=kid(KEY_B))
        assert result.key_id == kid(KEY_B)
    assert fake.keys_used() == [KEY_B] * 3


async def test_pinned_key_rate_limited_is_429_without_trying_others(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_B] = reply(429, google_error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                                                 retry_info("8s")))
    client = make_client([KEY_A, KEY_B])
    with pytest.raises(RateLimited) as info:
        await client.generate(MODEL, BODY, pinned_key=kid(KEY_B))
    assert info.value.retry_after == pytest.approx(8, abs=1)
    assert fake.keys_used() == [KEY_B]


# -- streams ---------------------------------------------------------------------------------------


async def test_stream_yields_parsed_events(fake: FakeGemini, make_client: Any) -> None:
    fake.default = fake.stream([sse_event(chunk("Hel")), sse_event(chunk("lo", "STOP"))])
    client = make_client([KEY_A])
    stream = await client.stream(MODEL, BODY)
    assert stream.key_id == kid(KEY_A)
    events = [event async for event in stream]
    assert events == [chunk("Hel"), chunk("lo", "STOP")]
    [seen] = fake.requests
    assert (seen.path, seen.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent",
                                       {"alt": "sse"})
    assert seen.key == KEY_A


async def test_stream_fails_over_before_first_byte(fake: FakeGemini, make_client: Any) -> None:
    fake.by_key[KEY_A] = reply(429, google_error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
                                                 retry_info("30s")))
    fake.by_key[KEY_B] = fake.slow(before_headers=False)  # 200, then nothing
    fake.by_key[KEY_C] = fake.stream([sse_event(chunk("ok", "STOP"))])
    client = make_client([KEY_A, KEY_B, KEY_C], upstream_timeout=0.2)
    stream = await client.stream(MODEL, BODY)
    assert (stream.key_id, stream.attempts) == (kid(KEY_C), 3)
    assert [e async for e in stream] == [chunk("ok", "STOP")]


async def test_stream_cut_raises_from_iterator(fake: FakeGemini, make_client: Any) -> None:
    fake.default = fake.stream([sse_event(chunk("Hel")), b'data: {"candidates": [{"cont'],
                               cut=True)
    stream = await make_client([KEY_A]).stream(MODEL, BODY)
    got = []
    with pytest.raises(UpstreamError):
        async for event in stream:
            got.append(event)
    assert got == [chunk("Hel")]


async def test_stream_silence_between_events_is_timeout(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.default = fake.stream([sse_event(chunk("Hel"))], hang=True)
    stream = await make_client([KEY_A], upstream_timeout=0.2).stream(MODEL, BODY)
    assert await stream.__anext__() == chunk("Hel")
    with pytest.raises(UpstreamTimeout):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):  # and it stays finished
        await stream.__anext__()


async def test_stream_error_event_raises(fake: FakeGemini, make_client: Any) -> None:
    fake.default = fake.stream([
        sse_event(chunk("Hel")),
        sse_event(google_error(500, "INTERNAL", "An internal error has occurred.")),
    ])
    stream = await make_client([KEY_A]).stream(MODEL, BODY)
    assert await stream.__anext__() == chunk("Hel")
    with pytest.raises(UpstreamError, match="internal error"):
        await stream.__anext__()


async def test_stream_aclose_closes_upstream_connection(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.default = fake.stream([sse_event(chunk("Hel"))], endless=True)
    stream = await make_client([KEY_A]).stream(MODEL, BODY)
    assert await stream.__anext__() == chunk("Hel")
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), 3)
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_stream_client_error_not_retried(fake: FakeGemini, make_client: Any) -> None:
    fake.default = reply(400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload."))
    with pytest.raises(UpstreamRejected):
        await make_client([KEY_A, KEY_B]).stream(MODEL, BODY)
    assert len(fake.requests) == 1


# -- proxy -----------------------------------------------------------------------------------------


async def test_proxy_setting_is_used(fake: FakeGemini, make_client: Any) -> None:
    # The stand-in plays the proxy: the request reaches it in absolute form for a host that
    # does not even resolve, so it can only have come through the proxy.
    client = make_client([KEY_A], upstream_base_url="http://gemini.invalid",
                         upstream_proxy=fake.url)
    await client.generate(MODEL, BODY)
    [seen] = fake.requests
    assert seen.url == f"http://gemini.invalid/v1beta/models/{MODEL}:generateContent"
    assert seen.key == KEY_A


# -- call, list_models, check_key ------------------------------------------------------------------


async def test_call_with_json_params_and_raw(fake: FakeGemini, make_client: Any) -> None:
    client = make_client([KEY_A])
    result = await client.call("post", "models/imagen-4.0-generate-001:predict",
                               json={"instances": [{"prompt": "a kitten"}]})
    assert result.data == ANSWER
    assert fake.requests[-1].path == "/v1beta/models/imagen-4.0-generate-001:predict"

    async def upload_start(request: web.Request) -> web.StreamResponse:
        return web.Response(headers={"X-Goog-Upload-URL": f"{fake.url}/upload/session/1"})

    fake.default = upload_start
    result = await client.call(
        "POST", "/upload/v1beta/files", json={"file": {"display_name": "a"}},
        headers={"X-Goog-Upload-Protocol": "resumable", "x-goog-api-key": "not this"},
        raw=True,
    )
    assert result.headers is not None
    assert result.headers["X-Goog-Upload-URL"] == f"{fake.url}/upload/session/1"
    seen = fake.requests[-1]
    assert (seen.path, seen.key) == ("/upload/v1beta/files", KEY_A)
    assert seen.headers["X-Goog-Upload-Protocol"] == "resumable"

    fake.default = reply(200, {"file": {"name": "files/abc"}})
    result = await client.call("POST", f"{fake.url}/upload/session/1", data=b"\x89PNG",
                               pinned_key=kid(KEY_A))
    assert result.data == {"file": {"name": "files/abc"}}
    assert fake.requests[-1].body == b"\x89PNG"

    await client.call("GET", "files", params={"pageSize": "10"})
    assert fake.requests[-1].query == {"pageSize": "10"}
    with pytest.raises(ValueError):
        await client.call("GET", "http://elsewhere.example/steal")


async def test_list_models_follows_pages_and_caches(fake: FakeGemini, make_client: Any) -> None:
    pages = {
        "": {"models": [{"name": "models/gemini-2.5-flash"}], "nextPageToken": "p2"},
        "p2": {"models": [{"name": "models/gemini-2.5-pro"}]},
    }

    async def models(request: web.Request) -> web.StreamResponse:
        return web.json_response(pages[request.query.get("pageToken", "")])

    fake.default = models
    client = make_client([KEY_A])
    listed = await client.list_models()
    assert [m["name"] for m in listed] == ["models/gemini-2.5-flash", "models/gemini-2.5-pro"]
    assert [r.query.get("pageToken") for r in fake.requests] == [None, "p2"]
    assert fake.requests[0].path == "/v1beta/models"
    assert await client.list_models() == listed
    assert len(fake.requests) == 2  # cached


async def test_check_key(fake: FakeGemini, make_client: Any) -> None:
    fake.by_key[KEY_B] = reply(400, KEY_INVALID)
    fake.default = reply(200, {"models": []})
    client = make_client([])
    assert await client.check_key(KEY_A) == (True, "ok")
    ok, detail = await client.check_key(KEY_B)
    assert not ok
    assert detail.startswith("API_KEY_INVALID")
    assert KEY_B not in detail
    assert fake.keys_used() == [KEY_A, KEY_B]
    gone = make_client([], upstream_base_url=f"http://127.0.0.1:{free_port()}")
    ok, detail = await gone.check_key(KEY_A)
    assert not ok and "connect" in detail


async def test_redirects_are_not_followed(fake: FakeGemini, make_client: Any) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/elsewhere"):
            return web.json_response(ANSWER)
        raise web.HTTPFound(f"{fake.url}/elsewhere")

    fake.default = redirect
    with pytest.raises(UpstreamError, match="HTTP 302") as info:
        await make_client([KEY_A], upstream_max_attempts=2).generate(MODEL, BODY)
    assert info.value.status == 502
    assert all(not r.path.startswith("/elsewhere") for r in fake.requests)


async def test_the_key_itself_is_masked_in_messages_and_logs(
    fake: FakeGemini, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    odd_key = "my-project-key-123"  # not AIza-shaped: masked because it is the key used
    fake.by_key[odd_key] = reply(403, google_error(
        403, "PERMISSION_DENIED", f"Permission denied: Consumer 'api_key:{odd_key}' has been "
        "suspended.", {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                       "reason": "CONSUMER_SUSPENDED", "domain": "googleapis.com"}))
    client = make_client([odd_key, KEY_B])
    with caplog.at_level(logging.INFO, logger="gemini_gateway.upstream"):
        await client.generate(MODEL, BODY)
    row = snapshot(client)[kid(odd_key)]
    assert row.state == "disabled"
    assert odd_key not in (row.reason or "") and odd_key not in (row.last_error or "")
    assert "CONSUMER_SUSPENDED" in (row.reason or "")
    assert odd_key not in caplog.text


async def test_stream_opening_with_an_error_event_fails_over(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.by_key[KEY_A] = fake.stream([sse_event(google_error(
        429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE, retry_info("30s")))])
    fake.by_key[KEY_B] = fake.stream([sse_event(chunk("ok", "STOP"))])
    client = make_client([KEY_A, KEY_B])
    stream = await client.stream(MODEL, BODY)
    assert (stream.key_id, stream.attempts) == (kid(KEY_B), 2)
    assert [e async for e in stream] == [chunk("ok", "STOP")]
    assert snapshot(client)[kid(KEY_A)].state == "cooling"

    fake.by_key[KEY_B] = fake.stream([sse_event(google_error(
        400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'."))])
    with pytest.raises(UpstreamRejected, match="contents"):
        await client.stream(MODEL, BODY)


async def test_stream_aclose_from_another_task_ends_iteration_quietly(
    fake: FakeGemini, make_client: Any
) -> None:
    fake.default = fake.stream([sse_event(chunk("Hel")), b'data: {"cand'], hang=True)
    stream = await make_client([KEY_A]).stream(MODEL, BODY)

    async def consume() -> list[dict[str, Any]]:
        return [event async for event in stream]

    reader = asyncio.create_task(consume())
    await asyncio.sleep(0.1)  # the reader now waits on the socket, mid-event
    await stream.aclose()
    assert await asyncio.wait_for(reader, 3) == [chunk("Hel")]
