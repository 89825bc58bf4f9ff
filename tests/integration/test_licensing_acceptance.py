"""Acceptance of licenses, limits, upstream keys in the database and the usage ledger (issue 3).

Everything runs through real gateway processes over HTTP, driven as a client would (the ``openai``
SDK, raw HTTP, the real CLI), against the simulator; the ledger is read straight from the database
the gateway wrote.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import openai
import pytest

from gemini_gateway.store.upstream_keys import upstream_key_id
from tests.fixtures.gateway import GatewayProcess, launch_gateway
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.helpers import RawResponse, assert_openai_error, get, post

MODEL = "gemini-2.0-flash"
# "hi" is 2 characters: the gateway reserves 2 // 4 + 1 + max_tokens = 101 tokens for it.
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
RESERVED = 101
ADMIN_TOKEN = "acceptance-admin-token-0123456789"
LEDGER_COLUMNS = (
    "created_at", "request_id", "license_id", "license_name", "model_requested", "model_sent",
    "key_id", "status", "error_code", "prompt_tokens", "completion_tokens", "reasoning_tokens",
    "cached_tokens", "latency_ms", "ttft_ms", "stream",
)  # fmt: skip


def _auth(license: str, bearer: bool = True) -> dict[str, str]:
    return {"Authorization": f"Bearer {license}" if bearer else license}


def _ask(gw: GatewayProcess, license: str, body: dict[str, Any] | None = None) -> RawResponse:
    return post(gw.base_url + "/chat/completions", body or ASK, _auth(license))


def _ledger(gw: GatewayProcess) -> list[dict[str, Any]]:
    """Every ledger row, read from the SQLite file the gateway writes (a separate connection)."""
    conn = sqlite3.connect(gw.data_dir / "gateway.db")
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger ORDER BY id")
        return [dict(r) for r in rows]
    finally:
        conn.close()


def _rows_for(gw: GatewayProcess, request_id: str) -> list[dict[str, Any]]:
    return [r for r in _ledger(gw) if r["request_id"] == request_id]


def _wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _early_in_a_minute(margin: float = 15.0) -> None:
    """Per-minute windows are aligned to the clock: start a test well inside one."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.2)


def _cli_json(gw: GatewayProcess, *args: str) -> Any:
    return json.loads(gw.cli(*args, "--json").stdout)


# --- every request is checked ------------------------------------------------------------------


def test_unknown_disabled_and_expired_licenses_are_401(gateway: GatewayProcess) -> None:
    resp = _ask(gateway, "gg-not-a-license-at-all-000000000000000000000")
    assert assert_openai_error(resp, 401, "authentication_error")["code"] == "invalid_api_key"
    resp = post(gateway.base_url + "/chat/completions", ASK)
    assert_openai_error(resp, 401, "authentication_error")

    disabled = gateway.create_license("acc-disabled")
    gateway.cli("license", "disable", "acc-disabled")
    err = assert_openai_error(_ask(gateway, disabled), 401, "authentication_error")
    assert err["code"] == "license_disabled"

    expiring = gateway.create_license("acc-expiring", "--expires", "2s")
    assert _ask(gateway, expiring).status == 200
    time.sleep(2.2)
    err = assert_openai_error(_ask(gateway, expiring), 401, "authentication_error")
    assert err["code"] == "license_expired"

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.base_url, api_key=disabled, max_retries=0).models.list()


def test_model_and_network_rules_are_403(gateway: GatewayProcess) -> None:
    only_25 = gateway.create_license("acc-models", "--models", "gemini-2.5-*")
    err = assert_openai_error(_ask(gateway, only_25), 403, "permission_error")
    assert err["code"] == "model_not_allowed"
    assert _ask(gateway, only_25, {**ASK, "model": "gemini-2.5-flash"}).status == 200

    elsewhere = gateway.create_license("acc-net-no", "--networks", "10.0.0.0/8,192.168.0.0/16")
    err = assert_openai_error(_ask(gateway, elsewhere), 403, "permission_error")
    assert err["code"] == "network_not_allowed"
    loopback = gateway.create_license("acc-net-yes", "--networks", "127.0.0.0/8")
    assert _ask(gateway, loopback).status == 200

    client = openai.OpenAI(base_url=gateway.base_url, api_key=only_25, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_rpm_refusal_has_retry_after_and_ratelimit_headers(gateway: GatewayProcess) -> None:
    license = gateway.create_license("acc-rpm", "--rpm", "2", "--tpm", "100000")
    _early_in_a_minute()
    first = _ask(gateway, license)
    assert first.status == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(100000 - RESERVED)
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert first.headers[name].endswith("s"), first.headers[name]
    assert _ask(gateway, license).status == 200
    refused = _ask(gateway, license)
    err = assert_openai_error(refused, 429, "rate_limit_error")
    assert err["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"

    # The openai SDK sees a RateLimitError and can read the headers it retries on.
    client = openai.OpenAI(base_url=gateway.base_url, api_key=license, max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**ASK)
    assert caught.value.response.headers["retry-after"]
    assert caught.value.response.headers["x-ratelimit-limit-requests"] == "2"


def test_streamed_answers_carry_the_ratelimit_headers(gateway: GatewayProcess) -> None:
    license = gateway.create_license("acc-rpm-stream", "--rpm", "50")
    _early_in_a_minute()
    client = openai.OpenAI(base_url=gateway.base_url, api_key=license, max_retries=0)
    with client.chat.completions.with_streaming_response.create(**ASK, stream=True) as resp:
        assert resp.headers["x-ratelimit-limit-requests"] == "50"
        assert resp.headers["x-ratelimit-remaining-requests"] == "49"
        assert any(chunk for chunk in resp.iter_lines())


def test_tpm_refusal(gateway: GatewayProcess) -> None:
    license = gateway.create_license("acc-tpm", "--tpm", str(2 * RESERVED))
    _early_in_a_minute()
    assert _ask(gateway, license).status == 200
    big = {**ASK, "max_tokens": 5000}
    refused = _ask(gateway, license, big)
    err = assert_openai_error(refused, 429, "rate_limit_error")
    assert "tokens per minute" in err["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-tokens"] == str(2 * RESERVED)


def test_concurrency_limit(gateway: GatewayProcess, sim: SimulatorHandle) -> None:
    license = gateway.create_license("acc-conc", "--concurrency", "2")
    sim.configure(latency=0.8)

    async def run() -> list[int]:
        async with aiohttp.ClientSession() as session:

            async def one() -> int:
                async with session.post(
                    gateway.base_url + "/chat/completions", json=ASK, headers=_auth(license)
                ) as resp:
                    body = await resp.json()
                    if resp.status == 429:
                        assert body["error"]["type"] == "rate_limit_error"
                        assert resp.headers["Retry-After"] == "1"
                    return resp.status

            return await asyncio.gather(*(one() for _ in range(6)))

    statuses = asyncio.run(run())
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
    sim.configure(latency=0.0)
    assert _ask(gateway, license).status == 200  # the slots came back


def test_quota_200_concurrent_requests_serve_exactly_10(
    gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    license = gateway.create_license("acc-quota", "--quota", str(10 * RESERVED))
    sim.configure(latency=1.0)  # every request is admitted or refused before one settles

    async def run() -> list[tuple[int, dict[str, Any]]]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> tuple[int, dict[str, Any]]:
                async with session.post(
                    gateway.base_url + "/chat/completions", json=ASK, headers=_auth(license)
                ) as resp:
                    return resp.status, dict(resp.headers) | {"body": await resp.json()}

            return await asyncio.gather(*(one() for _ in range(200)))

    results = asyncio.run(run())
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 10, sorted(statuses)
    assert statuses.count(429) == 190
    for status, info in results:
        if status == 429:
            assert info["body"]["error"]["type"] == "insufficient_quota"
            assert info["body"]["error"]["code"] == "insufficient_quota"
    sim.configure(latency=0.0)
    # Settled with the real usage (less than reserved), the quota has a little room left; the
    # ledger holds what was used and never more than the quota.
    used = sum(
        r["prompt_tokens"] + r["completion_tokens"]
        for r in _ledger(gateway)
        if r["license_name"] == "acc-quota"
    )
    assert 0 < used <= 10 * RESERVED


# --- the ledger ---------------------------------------------------------------------------------


def test_ledger_row_for_a_plain_request_has_every_field(gateway: GatewayProcess) -> None:
    resp = post(
        gateway.base_url + "/chat/completions",
        {**ASK, "model": "gemini-2.5-flash-thinking"},
        {**_auth(gateway.license), "x-request-id": "acc-plain-1"},
    )
    assert resp.status == 200, resp.body
    usage = resp.json()["usage"]
    (row,) = _rows_for(gateway, "acc-plain-1")
    assert row["license_name"] == "tests" and row["license_id"].startswith("lic_")
    assert row["model_requested"] == "gemini-2.5-flash-thinking"
    assert row["model_sent"] == "gemini-2.5-flash"
    assert row["key_id"].startswith("k-") and "sim-key" not in row["key_id"]
    assert (row["status"], row["error_code"], row["stream"]) == (200, None, 0)
    assert row["prompt_tokens"] == usage["prompt_tokens"] > 0
    assert row["completion_tokens"] == usage["completion_tokens"] > 0
    assert row["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert row["cached_tokens"] == 0
    assert row["latency_ms"] > 0
    assert row["created_at"]


def test_ledger_row_for_a_stream_has_time_to_first_token(
    gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    sim.configure(stream_chunks=4, chunk_delay=0.05)
    resp = post(
        gateway.base_url + "/chat/completions",
        {**ASK, "stream": True, "stream_options": {"include_usage": True}},
        {**_auth(gateway.license), "x-request-id": "acc-stream-1"},
    )
    assert resp.status == 200
    usage = resp.chunks()[-1]["usage"]
    (row,) = _rows_for(gateway, "acc-stream-1")
    assert (row["status"], row["stream"]) == (200, 1)
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"] > 0
    assert 0 < row["ttft_ms"] < row["latency_ms"]


def test_ledger_row_for_an_upstream_failure(gateway: GatewayProcess, sim: SimulatorHandle) -> None:
    sim.add_fault(times=1, status=400, body={"error": {"code": 400, "message": "bad",
                                              "status": "INVALID_ARGUMENT"}})  # fmt: skip
    resp = post(
        gateway.base_url + "/chat/completions",
        ASK,
        {**_auth(gateway.license), "x-request-id": "acc-fail-1"},
    )
    assert resp.status == 400
    (row,) = _rows_for(gateway, "acc-fail-1")
    assert row["status"] == 400 and row["error_code"]
    assert row["prompt_tokens"] == row["completion_tokens"] == 0


def test_refused_requests_have_ledger_rows_too(
    gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    license = gateway.create_license("acc-refused", "--rpm", "1", "--models", "gemini-2.0-*")
    _early_in_a_minute()
    statuses = []
    for request_id, model in (("acc-r1", MODEL), ("acc-r2", MODEL), ("acc-r3", "gemini-2.5-pro")):
        resp = post(
            gateway.base_url + "/chat/completions",
            {**ASK, "model": model},
            {**_auth(license), "x-request-id": request_id},
        )
        statuses.append(resp.status)
    assert statuses == [200, 429, 403]
    rows = {r["request_id"]: r for r in _ledger(gateway) if r["license_name"] == "acc-refused"}
    assert (rows["acc-r2"]["status"], rows["acc-r2"]["error_code"]) == (429, "rate_limit_exceeded")
    assert (rows["acc-r3"]["status"], rows["acc-r3"]["error_code"]) == (403, "model_not_allowed")
    assert rows["acc-r2"]["completion_tokens"] == 0


async def _disconnect_after_first_bytes(gw: GatewayProcess, license: str, request_id: str) -> None:
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({**ASK, "max_tokens": 2000, "stream": True}).encode()
    writer.write(
        b"POST /gemini/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n"
        + f"Authorization: {license}\r\nx-request-id: {request_id}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    seen = b""
    while seen.count(b"data: ") < 3:
        seen += await reader.read(4096)
    writer.close()


def test_a_client_that_disconnects_is_charged_for_what_was_produced(
    gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    license = gateway.create_license("acc-disconnect", "--quota", "100000")
    sim.configure(stream_chunks=40, chunk_delay=0.1)
    asyncio.run(_disconnect_after_first_bytes(gateway, license, "acc-gone-1"))
    rows = _wait_for(lambda: _rows_for(gateway, "acc-gone-1"))
    (row,) = rows
    assert (row["status"], row["error_code"], row["stream"]) == (499, "client_disconnected", 1)
    assert row["prompt_tokens"] > 0
    assert row["completion_tokens"] > 0  # what the stream produced before the client left
    assert row["ttft_ms"] is not None
    # The quota was charged that, not the reservation and not nothing.
    shown = _cli_json(gateway, "usage", "--license", "acc-disconnect")["data"][0]
    assert shown["requests"] == 1
    assert shown["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]


def test_kill_9_after_n_completed_requests_leaves_n_rows(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway()
    ids = [f"acc-kill-{i}" for i in range(12)]
    for i, request_id in enumerate(ids):
        body = {**ASK, "stream": i % 2 == 1}
        resp = post(
            gw.base_url + "/chat/completions",
            body,
            {**_auth(gw.license), "x-request-id": request_id},
        )
        assert resp.status == 200
        if body["stream"]:
            assert resp.sse_events()[-1] == "[DONE]"
    gw.stop(signal.SIGKILL)
    assert gw.process.returncode == -signal.SIGKILL
    assert [r["request_id"] for r in _ledger(gw)] == ids


def test_kill_9_under_concurrent_load_keeps_every_completed_request(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway()
    completed: list[str] = []

    async def client(worker: int, session: aiohttp.ClientSession) -> None:
        for i in range(1000):
            request_id = f"acc-load-{worker}-{i}"
            try:
                async with session.post(
                    gw.base_url + "/chat/completions",
                    json={**ASK, "stream": i % 2 == 0},
                    headers={**_auth(gw.license), "x-request-id": request_id},
                ) as resp:
                    body = await resp.read()
                    if resp.status == 200 and (i % 2 == 1 or body.endswith(b"[DONE]\n\n")):
                        completed.append(request_id)
            except (TimeoutError, aiohttp.ClientError):
                return

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(client(w, session)) for w in range(16)]
            while len(completed) < 150:
                await asyncio.sleep(0.01)
            gw.process.send_signal(signal.SIGKILL)
            await asyncio.gather(*tasks)

    asyncio.run(run())
    gw.process.wait(10)
    recorded = {r["request_id"] for r in _ledger(gw)}
    missing = set(completed) - recorded
    assert not missing, sorted(missing)[:5]


def test_retention_prunes_old_rows(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway(ledger_retention_days=7)
    assert _ask(gw, gw.license).status == 200
    gw.stop(signal.SIGKILL)
    conn = sqlite3.connect(gw.data_dir / "gateway.db")
    with conn:
        cursor = conn.execute("SELECT * FROM ledger")
        columns = [d[0] for d in cursor.description]
        template = dict(zip(columns, cursor.fetchone(), strict=True))
        for request_id, age_days in (("acc-old", 30), ("acc-recent", 3)):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - age_days * 86400))
            row = {**template, "request_id": request_id, "created_at": when}
            row.pop("id")
            conn.execute(
                f"INSERT INTO ledger ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
    conn.close()
    # The same data dir, started again: pruning runs at start and then hourly.
    settings = {"GEMINI_GATEWAY_DATA_DIR": str(gw.data_dir),
                "GEMINI_GATEWAY_LEDGER_RETENTION_DAYS": "7"}  # fmt: skip
    again = launch_gateway(gw.data_dir.parent, sim.url, settings)
    try:
        assert _wait_for(lambda: "acc-old" not in {r["request_id"] for r in _ledger(gw)})
        assert "acc-recent" in {r["request_id"] for r in _ledger(gw)}
    finally:
        again.stop(signal.SIGKILL)


# --- upstream keys in the database ----------------------------------------------------------------


def _admin(gw: GatewayProcess, method: str, path: str, body: Any = None,
           token: str | None = ADMIN_TOKEN) -> RawResponse:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return get(gw.url + "/admin/v1" + path, headers)
    import urllib3

    resp = urllib3.request(method, gw.url + "/admin/v1" + path, json=body, headers=headers,
                           retries=False)  # fmt: skip
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)


def _keys_by_id(data: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in data}


def test_stored_keys_merge_with_env_keys_and_show_their_state(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway(admin_token=ADMIN_TOKEN)
    stored = "sim-stored-key-0001"
    added = json.loads(gw.cli("key", "add", stored, "--note", "db", "--json").stdout)
    stored_id = added["id"]
    env_ids = [upstream_key_id("sim-key-1"), upstream_key_id("sim-key-2")]
    # The running gateway picks the stored key up without a restart.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sim.clear_requests()
        for _ in range(3):
            assert _ask(gw, gw.license).status == 200
        if stored in {r["key"] for r in sim.requests()}:
            break
    assert {r["key"] for r in sim.requests()} == {"sim-key-1", "sim-key-2", stored}

    # A 429 cools one env key down; its state is visible in the admin API and in `key list`.
    sim.add_fault(match={"key": "sim-key-1"}, status=429, retry_delay=300)
    for _ in range(3):
        assert _ask(gw, gw.license).status == 200
    listed = _admin(gw, "GET", "/upstream_keys")
    assert listed.status == 200
    assert "sim-key" not in listed.body.decode() and stored not in listed.body.decode()
    keys = _keys_by_id(listed.json()["data"])
    assert set(keys) == {stored_id, *env_ids}
    assert keys[stored_id]["source"] == "database" and keys[env_ids[0]]["source"] == "env"
    cooled = keys[env_ids[0]]
    assert cooled["state"] == "cooling"
    assert cooled["cooling_until"] > time.time() + 200
    assert "rate-limited" in cooled["reason"]
    assert cooled["last_error"] and cooled["failures"] >= 1
    assert keys[env_ids[1]]["state"] == "healthy" and keys[env_ids[1]]["successes"] >= 1

    table = _wait_for(lambda: "cooling" in (out := gw.cli("key", "list").stdout) and out)
    assert "STATE" in table and "sim-key" not in table and stored not in table
    cli_keys = _keys_by_id(_cli_json(gw, "key", "list")["data"])
    assert cli_keys[env_ids[0]]["state"] == "cooling"
    assert cli_keys[env_ids[0]]["cooling_until"] == cooled["cooling_until"]

    # An operator disables a key with the CLI: the running gateway stops using it.
    sim.clear_faults()
    gw.cli("key", "disable", env_ids[1])
    gw.cli("key", "enable", env_ids[0])  # and clears the cool-down of the other
    time.sleep(1.2)
    sim.clear_requests()
    for _ in range(6):
        assert _ask(gw, gw.license).status == 200
    assert "sim-key-2" not in {r["key"] for r in sim.requests()}
    keys = _keys_by_id(_admin(gw, "GET", "/upstream_keys").json()["data"])
    assert keys[env_ids[1]]["state"] == "disabled" and keys[env_ids[0]]["state"] == "healthy"


def test_stored_keys_can_be_encrypted_at_rest(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway(key_encryption_secret="operator-secret-" + secrets.token_hex(16))
    stored = "sim-stored-encrypted-0001"
    key_id = json.loads(gw.cli("key", "add", stored, "--json").stdout)["id"]
    conn = sqlite3.connect(gw.data_dir / "gateway.db")
    try:
        (raw,) = conn.execute("SELECT secret FROM upstream_keys WHERE id = ?", (key_id,)).fetchone()
    finally:
        conn.close()
    assert raw.startswith("enc1:") and stored not in raw
    # The running gateway decrypts it and uses it beside the keys from the environment.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and stored not in {r["key"] for r in sim.requests()}:
        assert _ask(gw, gw.license).status == 200
    assert stored in {r["key"] for r in sim.requests()}
    listed = gw.cli("key", "list").stdout
    assert key_id in listed and stored not in listed and "enc1:" not in listed
    assert stored not in gw.logs()


def test_an_invalid_key_disabled_by_the_gateway_can_be_enabled_again(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway(admin_token=ADMIN_TOKEN)
    bad_id = upstream_key_id("sim-key-1")
    sim.add_fault(match={"key": "sim-key-1"}, status=400, times=1, body={"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT", "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
            "domain": "googleapis.com"}]}})  # fmt: skip
    for _ in range(2):
        assert _ask(gw, gw.license).status == 200
    keys = _keys_by_id(_admin(gw, "GET", "/upstream_keys").json()["data"])
    assert keys[bad_id]["state"] == "disabled" and "API_KEY_INVALID" in keys[bad_id]["reason"]
    assert _keys_by_id(_cli_json(gw, "key", "list")["data"])[bad_id]["state"] == "disabled"

    enabled = _admin(gw, "POST", f"/upstream_keys/{bad_id}/enable")
    assert enabled.status == 200 and enabled.json()["state"] == "healthy"
    sim.clear_requests()
    for _ in range(4):
        assert _ask(gw, gw.license).status == 200
    assert "sim-key-1" in {r["key"] for r in sim.requests()}


def test_admin_api_on_the_real_gateway(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway(admin_token=ADMIN_TOKEN)
    assert assert_openai_error(_admin(gw, "GET", "/licenses", token=None), 401)
    assert_openai_error(_admin(gw, "GET", "/licenses", token="wrong"), 401)
    assert_openai_error(_admin(gw, "GET", "/licenses", token=gw.license), 401)

    created = _admin(
        gw,
        "POST",
        "/licenses",
        {"name": "acc-admin", "rpm": 1, "models": ["gemini-2.0-*"], "note": "from the API"},
    )
    assert created.status == 200, created.body
    key = created.json()["key"]
    assert key.startswith("gg-") and created.json()["redacted_value"] in key[:11] + "…"
    assert _ask(gw, key).status == 200
    assert key not in _admin(gw, "GET", "/licenses").body.decode()
    assert _admin(gw, "PATCH", "/licenses/acc-admin", {"enabled": False}).json()["enabled"] is False
    usage = _admin(gw, "GET", "/usage?license=acc-admin&by=model").json()
    assert usage["data"][0]["group"] == MODEL and usage["data"][0]["requests"] == 1
    assert _admin(gw, "DELETE", "/licenses/acc-admin").json()["deleted"] is True

    spec = get(gw.url + "/openapi.json").json()
    for path in ("/admin/v1/licenses", "/admin/v1/upstream_keys", "/admin/v1/usage"):
        assert path in spec["paths"]
    assert "AdminUpstreamKey" in spec["components"]["schemas"]


def test_admin_api_is_off_without_its_token(gateway: GatewayProcess) -> None:
    for token in (None, "", "admin", "changeme"):
        resp = _admin(gateway, "GET", "/licenses", token=token)
        assert resp.status == 404, resp.body


# --- the CLI --------------------------------------------------------------------------------------


def test_license_cli_lifecycle_against_the_running_gateway(
    gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    out = gateway.cli("license", "create", "--name", "acc-cli", "--rpm", "60", "--tpm", "5000",
                      "--quota", "90000", "--quota-period", "day", "--concurrency", "3",
                      "--models", "gemini-2.*", "--networks", "127.0.0.1/32,::1",
                      "--expires", "30d", "--note", "sold to Bob").stdout  # fmt: skip
    key = out.strip().splitlines()[-1]
    assert key.startswith("gg-") and len(key) >= 40
    shown = _cli_json(gateway, "license", "show", "acc-cli")
    assert key not in json.dumps(shown)
    assert key.startswith(shown["redacted_value"].rstrip("…"))
    assert shown | {"id": None, "created_at": None, "updated_at": None, "expires_at": None} == {
        "id": None, "object": "license", "name": "acc-cli",
        "redacted_value": shown["redacted_value"], "created_at": None, "updated_at": None,
        "expires_at": None, "enabled": True, "models": ["gemini-2.*"],
        "networks": ["127.0.0.1/32", "::1/128"], "rpm": 60, "tpm": 5000, "quota": 90000,
        "quota_period": "day", "concurrency": 3, "note": "sold to Bob",
    }  # fmt: skip
    assert 29 * 86400 < shown["expires_at"] - time.time() <= 30 * 86400
    assert _ask(gateway, key).status == 200

    table = gateway.cli("license", "list").stdout
    assert "acc-cli" in table and key not in table and "NAME" in table
    listed = _cli_json(gateway, "license", "list")["data"]
    assert "acc-cli" in {lic["name"] for lic in listed}
    assert key not in gateway.cli("license", "show", "acc-cli").stdout

    updated = _cli_json(gateway, "license", "update", "acc-cli", "--models", "gemini-2.5-*")
    assert updated["models"] == ["gemini-2.5-*"] and updated["updated_at"] >= shown["updated_at"]
    rotated = json.loads(gateway.cli("license", "rotate", "acc-cli", "--json").stdout)
    new_key = rotated["key"]
    assert new_key != key
    assert gateway.cli("license", "rotate", "acc-cli").stdout.strip().splitlines()[-1] != new_key
    latest = gateway.cli("license", "rotate", "acc-cli").stdout.strip().splitlines()[-1]
    # Changes made by another process reach the gateway within its license cache's few seconds.
    assert _wait_for(lambda: _ask(gateway, key).status == 401, timeout=8)
    assert _ask(gateway, latest, {**ASK, "model": "gemini-2.5-flash"}).status == 200
    assert _ask(gateway, latest).status == 403

    assert _cli_json(gateway, "license", "disable", "acc-cli")["enabled"] is False
    assert _wait_for(lambda: _ask(gateway, latest).status == 401, timeout=8)
    assert _cli_json(gateway, "license", "enable", "acc-cli")["enabled"] is True
    gone = gateway.cli("license", "delete", "acc-cli")  # not a terminal: no question asked
    assert "Deleted" in gone.stdout
    assert gateway.cli("license", "show", "acc-cli", check=False).returncode != 0
    assert _wait_for(lambda: _ask(gateway, latest).status == 401, timeout=8)


def test_usage_cli_totals(
    start_gateway: Callable[..., GatewayProcess], sim: SimulatorHandle
) -> None:
    gw = start_gateway()
    other = gw.create_license("acc-usage-other")
    answers = [
        _ask(gw, gw.license).json(),
        _ask(gw, gw.license, {**ASK, "model": "gemini-2.5-flash"}).json(),
        _ask(gw, other).json(),
    ]
    total = sum(a["usage"]["total_tokens"] for a in answers)
    everything = _cli_json(gw, "usage")["data"]
    assert len(everything) == 1
    assert everything[0]["requests"] == 3 and everything[0]["total_tokens"] == total
    assert everything[0]["prompt_tokens"] == sum(a["usage"]["prompt_tokens"] for a in answers)

    by_model = {t["group"]: t for t in _cli_json(gw, "usage", "--by", "model")["data"]}
    assert set(by_model) == {MODEL, "gemini-2.5-flash"} and by_model[MODEL]["requests"] == 2
    by_license = {
        t["group"]: t["requests"] for t in _cli_json(gw, "usage", "--by", "license")["data"]
    }
    assert by_license == {"tests": 2, "acc-usage-other": 1}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    by_day = _cli_json(gw, "usage", "--by", "day", "--since", "7d")["data"]
    assert [(t["group"], t["requests"]) for t in by_day] == [(today, 3)]
    mine = _cli_json(gw, "usage", "--license", "acc-usage-other")["data"][0]
    assert mine["requests"] == 1
    table = gw.cli("usage", "--by", "model").stdout
    assert MODEL in table and "REQUESTS" in table
    assert _cli_json(gw, "usage", "--since", "2099-01-01")["data"][0]["requests"] == 0


# --- PostgreSQL and Redis -------------------------------------------------------------------------


def _pg_ledger(url: str, request_prefix: str) -> list[dict[str, Any]]:
    import asyncpg

    async def read() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger WHERE request_id LIKE $1 "
                "ORDER BY id",
                request_prefix + "%",
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def pg_redis_gateway(
    simulator: SimulatorHandle,
    postgres_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """One gateway on the session's PostgreSQL and Redis, with upstream keys of its own."""
    tag = secrets.token_hex(3)
    settings = {
        "GEMINI_GATEWAY_DATABASE_URL": postgres_url,
        "GEMINI_GATEWAY_REDIS_URL": redis_url,
        "GEMINI_GATEWAY_UPSTREAM_KEYS": f"sim-acc-{tag}-1,sim-acc-{tag}-2",
    }
    gw = launch_gateway(tmp_path_factory.mktemp("pg-redis"), simulator.url, settings)
    try:
        gw.license = gw.create_license(f"acc-pg-{tag}")
        gw.env["ACC_POSTGRES_URL"] = postgres_url
        yield gw
    finally:
        gw.stop(signal.SIGKILL)


@pytest.mark.postgres
@pytest.mark.redis
def test_postgres_and_redis_quota_under_200_concurrent_requests(
    pg_redis_gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    gw = pg_redis_gateway
    name = f"acc-pg-quota-{time.monotonic_ns()}"
    license = gw.create_license(name, "--quota", str(10 * RESERVED), "--rpm", "1000")
    sim.configure(latency=1.0)

    async def run() -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> int:
                headers = {**_auth(license), "x-request-id": f"{name}-{i}"}
                async with session.post(
                    gw.base_url + "/chat/completions", json=ASK, headers=headers
                ) as resp:
                    await resp.read()
                    return resp.status

            return await asyncio.gather(*(one(i) for i in range(200)))

    statuses = asyncio.run(run())
    assert statuses.count(200) == 10 and statuses.count(429) == 190
    rows = _pg_ledger(gw.env["ACC_POSTGRES_URL"], name)
    assert len(rows) == 200
    served = [r for r in rows if r["status"] == 200]
    assert len(served) == 10 and all(r["key_id"].startswith("k-") for r in served)
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in served) <= 10 * RESERVED


@pytest.mark.postgres
@pytest.mark.redis
def test_postgres_kill_9_after_n_requests_leaves_n_rows(
    pg_redis_gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    # A process of its own on the same database, since this one is killed.
    settings = {k: v for k, v in pg_redis_gateway.env.items() if k in (
        "GEMINI_GATEWAY_DATABASE_URL", "GEMINI_GATEWAY_REDIS_URL", "GEMINI_GATEWAY_UPSTREAM_KEYS"
    )}  # fmt: skip
    gw = launch_gateway(pg_redis_gateway.data_dir.parent, sim.url, settings)
    gw.license = pg_redis_gateway.license
    prefix = f"acc-pg-kill-{time.monotonic_ns()}-"
    for i in range(8):
        body = {**ASK, "stream": i % 2 == 0}
        headers = {**_auth(gw.license), "x-request-id": f"{prefix}{i}"}
        resp = post(gw.base_url + "/chat/completions", body, headers)
        assert resp.status == 200
    gw.stop(signal.SIGKILL)
    assert gw.process.returncode == -signal.SIGKILL
    rows = _pg_ledger(pg_redis_gateway.env["ACC_POSTGRES_URL"], prefix)
    assert [r["request_id"] for r in rows] == [f"{prefix}{i}" for i in range(8)]
    assert [r["stream"] for r in rows] == [i % 2 == 0 for i in range(8)]
    assert all(r["completion_tokens"] > 0 and r["latency_ms"] > 0 for r in rows)


@pytest.mark.postgres
@pytest.mark.redis
def test_redis_key_state_is_visible_to_the_cli(
    pg_redis_gateway: GatewayProcess, sim: SimulatorHandle
) -> None:
    gw = pg_redis_gateway
    secret = gw.env["GEMINI_GATEWAY_UPSTREAM_KEYS"].split(",")[1]
    cooled = upstream_key_id(secret)
    sim.add_fault(match={"key": secret}, status=429, retry_delay=90)
    for _ in range(3):
        assert _ask(gw, gw.license).status == 200
    keys = _keys_by_id(_cli_json(gw, "key", "list")["data"])
    assert keys[cooled]["state"] == "cooling" and keys[cooled]["cooling_until"] > time.time() + 60
    gw.cli("key", "enable", cooled)
    sim.clear_faults()
    time.sleep(1.2)
    sim.clear_requests()
    for _ in range(4):
        assert _ask(gw, gw.license).status == 200
    assert secret in {r["key"] for r in sim.requests()}


# --- a different Gemini: usage only on the last event, CRLF line endings, no index ---------------


class _TerseGemini:
    """A fake Gemini unlike ours: streams ``usageMetadata`` only with the last event, ends SSE
    lines with CRLF, leaves out ``index`` and adds fields nobody knows. Runs in its own thread."""

    def __init__(self, events: int, delay: float) -> None:
        self.events, self.delay = events, delay
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _stream(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(self.events):
            last = i == self.events - 1
            event: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": "word " * 5}]},
                                "someNewField": {"x": 1}}],
                "modelVersion": "gemini-2.0-flash-001",
            }  # fmt: skip
            if last:
                event["candidates"][0]["finishReason"] = "STOP"
                event["usageMetadata"] = {"totalTokenCount": 7 + 5 * self.events,
                                          "promptTokenCount": 7,
                                          "candidatesTokenCount": 5 * self.events}  # fmt: skip
            await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
            await asyncio.sleep(self.delay)
        return response

    async def _generate(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({
            "candidates": [{"content": {"parts": [{"text": "hello there"}]},
                            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
        })  # fmt: skip

    def _run(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_post("/v1beta/models/{model}:streamGenerateContent", self._stream)
        app.router.add_post("/v1beta/models/{model}:generateContent", self._generate)
        runner = aiohttp.web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> _TerseGemini:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_usage_only_on_the_last_event_is_still_charged(
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    with _TerseGemini(events=30, delay=0.1) as upstream:
        gw = start_gateway(upstream_base_url=upstream.url)
        license = gw.create_license("acc-terse", "--quota", "100000")
        # A whole stream: charged what the last event says.
        fast = _TerseGemini(events=3, delay=0.0)
        upstream.events, upstream.delay = fast.events, fast.delay
        resp = post(gw.base_url + "/chat/completions", {**ASK, "stream": True},
                    {**_auth(license), "x-request-id": "acc-terse-whole"})  # fmt: skip
        assert resp.status == 200 and resp.sse_events()[-1] == "[DONE]"
        (row,) = _rows_for(gw, "acc-terse-whole")
        assert (row["prompt_tokens"], row["completion_tokens"]) == (7, 15)
        # A stream the client leaves before the usage came: charged an estimate, not nothing.
        upstream.events, upstream.delay = 30, 0.1
        asyncio.run(_disconnect_after_first_bytes(gw, license, "acc-terse-gone"))
        (row,) = _wait_for(lambda: _rows_for(gw, "acc-terse-gone"))
        assert row["status"] == 499 and row["prompt_tokens"] >= 1
        assert row["completion_tokens"] >= 2  # at least two events of 25 characters
        used = _cli_json(gw, "usage", "--license", "acc-terse")["data"][0]["total_tokens"]
        assert used == 22 + row["prompt_tokens"] + row["completion_tokens"]


# --- the key state file two processes share ------------------------------------------------------


async def test_key_state_file_is_shared_between_two_holders(tmp_path: Path) -> None:
    from gemini_gateway.store.key_state import FileKeyState

    path = tmp_path / "state.json"
    gateway_side, cli_side = FileKeyState(path), FileKeyState(path)
    await gateway_side.cool_down("k-1", time.time() + 60, "rate-limited")
    await gateway_side.record("k-1", failures=1, error="RESOURCE_EXHAUSTED")
    await gateway_side.record("k-2", successes=3)
    seen = await cli_side.get(["k-1", "k-2", "k-3"])  # counters not yet flushed: not seen
    assert seen["k-1"].cooling_until > time.time() and "k-2" not in seen
    await gateway_side.get([])  # the pool's refresh flushes them
    seen = await cli_side.get(["k-1", "k-2"])
    assert (seen["k-1"].failures, seen["k-1"].last_error) == (1, "RESOURCE_EXHAUSTED")
    assert seen["k-2"].successes == 3
    await cli_side.enable("k-1")
    await cli_side.disable("k-2", "disabled by an operator")
    back = await gateway_side.get(["k-1", "k-2"])
    assert back["k-1"].usable(time.time()) and back["k-1"].failures == 1
    assert back["k-2"].disabled and back["k-2"].successes == 3
    assert "k-" in path.read_text() and "secret" not in path.read_text()
    path.write_text("not json")
    assert (await FileKeyState(path).get(["k-1"])) == {}
