"""The simulator over real HTTP: URLs, key rules, error shapes, streams, faults, control."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fixtures.simulator import SimulatorHandle

HELLO = {"contents": [{"role": "user", "parts": [{"text": "What model are you?"}]}]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(
    http: aiohttp.ClientSession,
    sim: SimulatorHandle,
    path: str,
    body: Any = HELLO,
    key: str | None = "test-key",
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"x-goog-api-key": key} if key else {}
    async with http.post(sim.url + path, json=body, headers=headers) as response:
        raw = await response.read()
        return response.status, orjson.loads(raw) if raw else None, response


def _sse_events(raw: bytes) -> list[dict[str, Any]]:
    chunks = [c for c in raw.split(b"\r\n\r\n") if c]
    assert all(c.startswith(b"data: ") for c in chunks)
    return [orjson.loads(c[len(b"data: ") :]) for c in chunks]


async def test_generate_content(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    status, body, response = await _post(
        http, sim, "/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert status == 200
    assert response.content_type == "application/json"
    assert body["candidates"][0]["content"]["role"] == "model"
    assert "What model are you?" in body["candidates"][0]["content"]["parts"][0]["text"]


async def test_key_in_query_and_v1(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    url = f"{sim.url}/v1/models/gemini-2.0-flash:generateContent?key=query-key"
    async with http.post(url, json=HELLO) as response:
        assert response.status == 200
    [recorded] = sim.requests()
    assert recorded["key"] == "query-key"
    assert "key" not in recorded["query"]


async def test_missing_key_is_permission_denied(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    status, body, _ = await _post(
        http, sim, "/v1beta/models/gemini-2.0-flash:generateContent", key=None
    )
    assert status == 403
    assert body["error"]["status"] == "PERMISSION_DENIED"
    assert body["error"]["message"].startswith("Method doesn't allow unregistered callers")


async def test_invalid_key_is_api_key_invalid(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    status, body, _ = await _post(
        http, sim, "/v1beta/models/gemini-2.0-flash:generateContent", key="invalid-1"
    )
    assert status == 400
    error = body["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


async def test_exhausted_and_denied_keys(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    status, body, _ = await _post(http, sim, path, key="exhausted-1")
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    kinds = {d["@type"].rsplit(".", 1)[1]: d for d in body["error"]["details"]}
    assert kinds["RetryInfo"]["retryDelay"].endswith("s")
    assert kinds["QuotaFailure"]["violations"][0]["quotaDimensions"]["model"] == "gemini-2.5-flash"
    status, body, _ = await _post(http, sim, path, key="denied-1")
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1beta/models/gpt-4o:generateContent", id="foreign-model"),
        pytest.param(
            "/v1beta/models/imagen-4.0-generate-001:generateContent", id="imagen-generate"
        ),
        pytest.param("/v1beta/models/gemini-2.0-flash:predict", id="gemini-predict"),
        pytest.param("/v1beta/models/gemini-2.5-flash-thinking:generateContent", id="suffix"),
        pytest.param("/v1beta/models/gemini-2.5-pro-thinking-128:generateContent", id="budget"),
    ],
)
async def test_unknown_model_or_method_is_not_found(
    http: aiohttp.ClientSession, sim: SimulatorHandle, path: str
) -> None:
    status, body, _ = await _post(http, sim, path)
    assert status == 404
    assert body["error"]["status"] == "NOT_FOUND"
    assert "Call ListModels" in body["error"]["message"]


async def test_unknown_field_over_http(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    body = {**HELLO, "generationConfig": {"reasoning_effort": "low"}}
    status, data, _ = await _post(
        http, sim, "/v1beta/models/gemini-2.5-flash:generateContent", body
    )
    assert status == 400
    assert data["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


async def test_validation_can_be_switched_off(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    assert sim.configure(validate=False)["validate"] is False
    body = {**HELLO, "generationConfig": {"reasoning_effort": "low"}}
    status, _, _ = await _post(http, sim, "/v1beta/models/gemini-2.5-flash:generateContent", body)
    assert status == 200
    status, data, _ = await _post(
        http, sim, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": "nonsense"}
    )
    assert status == 400 and data["error"]["status"] == "INVALID_ARGUMENT"


async def test_broken_json_is_refused(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    url = f"{sim.url}/v1beta/models/gemini-2.0-flash:generateContent"
    async with http.post(url, data=b"{not json", headers={"x-goog-api-key": "k"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"


async def test_sse_stream(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    sim.configure(stream_chunks=7)
    url = f"{sim.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    async with http.post(url, json=HELLO, headers={"x-goog-api-key": "k"}) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        events = _sse_events(await response.read())
    assert len(events) == 7
    assert all("usageMetadata" in e for e in events)
    assert [("finishReason" in e["candidates"][0]) for e in events] == [False] * 6 + [True]


async def test_stream_without_sse_is_a_json_array(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    status, body, response = await _post(
        http, sim, "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    )
    assert status == 200 and response.content_type == "application/json"
    assert isinstance(body, list) and len(body) == 5
    status, body, _ = await _post(
        http, sim, "/v1beta/models/gemini-2.0-flash:streamGenerateContent", key="invalid-x"
    )
    assert status == 400 and body[0]["error"]["status"] == "INVALID_ARGUMENT"


async def test_fault_with_default_429_body_then_recovery(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    sim.add_fault(match={"key": "k1"}, status=429, times=1, retry_delay=3)
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    status, body, _ = await _post(http, sim, path, key="k2")
    assert status == 200
    status, body, _ = await _post(http, sim, path, key="k1")
    assert status == 429
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"} in (
        body["error"]["details"]
    )
    status, _, _ = await _post(http, sim, path, key="k1")
    assert status == 200


@pytest.mark.parametrize(("code", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
async def test_fault_default_bodies(
    http: aiohttp.ClientSession, sim: SimulatorHandle, code: int, name: str
) -> None:
    sim.add_fault(match={"method": "streamGenerateContent"}, status=code)
    status, _, _ = await _post(http, sim, "/v1beta/models/gemini-2.0-flash:generateContent")
    assert status == 200
    url = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    status, body, _ = await _post(http, sim, url)
    assert status == code
    assert body == {"error": {"code": code, "message": body["error"]["message"], "status": name}}


async def test_fault_with_given_body_and_model_match(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    given = {"error": {"code": 400, "message": "custom", "status": "FAILED_PRECONDITION"}}
    sim.add_fault(match={"model": ["gemini-2.5-pro"]}, status=400, body=given)
    status, body, _ = await _post(http, sim, "/v1beta/models/gemini-2.5-pro:generateContent")
    assert (status, body) == (400, given)
    status, _, _ = await _post(http, sim, "/v1beta/models/gemini-2.5-flash:generateContent")
    assert status == 200


async def test_fault_delay(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    sim.add_fault(delay=0.3, times=1)
    started = time.monotonic()
    status, _, _ = await _post(http, sim, "/v1beta/models/gemini-2.0-flash:generateContent")
    assert status == 200 and time.monotonic() - started >= 0.3


async def test_fault_cut_after_drops_the_stream(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    sim.add_fault(match={"method": "streamGenerateContent"}, cut_after=2, times=1)
    url = f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(url, json=HELLO, headers={"x-goog-api-key": "k"}) as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                received += chunk
    assert len(_sse_events(received)) == 2
    async with http.post(url, json=HELLO, headers={"x-goog-api-key": "k"}) as response:
        assert len(_sse_events(await response.read())) == 5


async def test_bad_fault_and_bad_config_are_refused(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    async with http.post(sim.url + "/_sim/faults", json={"faults": [{"statos": 500}]}) as r:
        assert r.status == 400
    async with http.post(sim.url + "/_sim/faults", json={"faults": [{"match": {"kee": "a"}}]}) as r:
        assert r.status == 400
    async with http.post(sim.url + "/_sim/config", json={"stream_chunkz": 3}) as r:
        assert r.status == 400
    async with http.get(sim.url + "/_sim/faults") as r:
        assert (await r.json()) == {"faults": []}


async def test_requests_are_recorded_and_cleared(
    http: aiohttp.ClientSession, sim: SimulatorHandle
) -> None:
    url = f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    async with http.post(url, json=HELLO, headers={"x-goog-api-key": "rec-key"}) as response:
        await response.read()
    [entry] = sim.requests()
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert entry["query"] == {"alt": "sse"}
    assert entry["key"] == "rec-key"
    assert entry["body"] == HELLO
    assert entry["model"] == "gemini-2.0-flash"
    assert entry["action"] == "streamGenerateContent"
    assert entry["headers"]["Content-Type"].startswith("application/json")
    sim.clear_requests()
    assert sim.requests() == []


async def test_count_tokens(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    status, body, _ = await _post(http, sim, "/v1beta/models/gemini-2.0-flash:countTokens")
    assert status == 200 and body["totalTokens"] == 4
    wrapped = {"generateContentRequest": {"model": "models/gemini-2.0-flash", **HELLO}}
    status, body, _ = await _post(http, sim, "/v1beta/models/gemini-2.0-flash:countTokens", wrapped)
    assert status == 200 and body["totalTokens"] == 4
    status, _, _ = await _post(http, sim, "/v1beta/models/gemini-2.0-flash:countTokens", {})
    assert status == 400


async def test_imagen_predict(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    body = {
        "instances": [{"prompt": "A robot holding a red skateboard"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9"},
    }
    status, data, _ = await _post(http, sim, "/v1beta/models/imagen-4.0-generate-001:predict", body)
    assert status == 200
    assert [p["mimeType"] for p in data["predictions"]] == ["image/png", "image/png"]
    body["parameters"]["sampleCount"] = 9
    status, _, _ = await _post(http, sim, "/v1beta/models/imagen-4.0-generate-001:predict", body)
    assert status == 400


async def test_list_models_is_paginated(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    names: list[str] = []
    token = ""
    for _ in range(20):
        url = f"{sim.url}/v1beta/models?pageSize=4&pageToken={token}"
        async with http.get(url, headers={"x-goog-api-key": "k"}) as response:
            page = await response.json()
        names += [m["name"] for m in page["models"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    for wanted in (
        "gemini-2.0-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-preview-tts",
        "gemini-3-pro-preview",
        "imagen-4.0-generate-001",
    ):
        assert f"models/{wanted}" in names
    assert len(names) == len(set(names))


async def test_get_model(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    headers = {"x-goog-api-key": "k"}
    async with http.get(f"{sim.url}/v1beta/models/gemini-2.5-pro", headers=headers) as response:
        model = await response.json()
    assert model["name"] == "models/gemini-2.5-pro"
    assert "generateContent" in model["supportedGenerationMethods"]
    async with http.get(f"{sim.url}/v1beta/models/llama-3", headers=headers) as response:
        assert response.status == 404


async def test_concurrent_streams(http: aiohttp.ClientSession, sim: SimulatorHandle) -> None:
    sim.configure(chunk_delay=0.01)
    url = f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"

    async def one() -> int:
        async with http.post(url, json=HELLO, headers={"x-goog-api-key": "k"}) as response:
            return len(_sse_events(await response.read()))

    assert await asyncio.gather(*(one() for _ in range(20))) == [5] * 20


async def test_reset_restores_start_up_settings(sim: SimulatorHandle) -> None:
    sim.configure(stream_chunks=2, validate=False)
    sim.add_fault(status=500)
    sim.reset()
    config = sim.configure()
    assert config["stream_chunks"] == 5 and config["validate"] is True
    assert sim.requests() == []


async def test_status_counts_open_streams(sim: SimulatorHandle) -> None:
    sim.configure(stream_chunks=30, chunk_delay=0.05)
    async with aiohttp.ClientSession() as session:
        url = f"{sim.url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        response = await session.post(url, json=HELLO, headers={"x-goog-api-key": "k"})
        await response.content.readline()  # the stream has started
        assert sim.status()["open_streams"] == 1
        response.close()  # the client walks away mid-stream
    for _ in range(40):
        if sim.status()["open_streams"] == 0:
            break
        await asyncio.sleep(0.05)
    assert sim.status() == {"open_streams": 0, "requests": 1, "faults": 0, "files": 0}
