"""Failover, retries, failures mid-stream, disconnects, limits on bodies, shutdown, logs."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time

import pytest

from tests.integration.helpers import assert_openai_error, get, post

PLAIN = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hello"}]}


def _auth(gw) -> dict[str, str]:
    return {"Authorization": gw.license}


def test_429_on_one_key_fails_over_to_another(gateway, sim) -> None:
    sim.add_fault(status=429, times=1)
    resp = post(gateway.base_url + "/chat/completions", PLAIN, _auth(gateway))
    assert resp.status == 200, resp.body
    keys = [r["key"] for r in sim.requests()]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_500_is_retried(gateway, sim) -> None:
    sim.add_fault(status=500, times=1)
    resp = post(gateway.base_url + "/chat/completions", PLAIN, _auth(gateway))
    assert resp.status == 200, resp.body
    assert len(sim.requests()) == 2


def test_all_keys_exhausted_is_429_with_retry_after(start_gateway, sim) -> None:
    gw = start_gateway(upstream_keys="exhausted-a,exhausted-b")
    resp = post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
    assert_openai_error(resp, 429)
    assert int(resp.headers["retry-after"]) >= 1
    # a cooled-down key is not asked again while it cools
    before = len(sim.requests())
    resp = post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
    assert resp.status == 429
    assert len(sim.requests()) == before


def test_invalid_key_is_disabled_and_logged(start_gateway, sim) -> None:
    gw = start_gateway(upstream_keys="invalid-key-1,sim-good-1")
    for _ in range(3):
        resp = post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
        assert resp.status == 200, resp.body
    invalid_hits = [r for r in sim.requests() if r["key"] == "invalid-key-1"]
    assert len(invalid_hits) <= 1
    logs = gw.logs()
    assert "invalid-key-1" not in logs
    assert "disabl" in logs.lower()


def test_persistent_5xx_gives_503_or_502(gateway, sim) -> None:
    sim.add_fault(status=503, times=50)
    resp = post(gateway.base_url + "/chat/completions", PLAIN, _auth(gateway))
    assert_openai_error(resp, resp.status)
    assert resp.status in (502, 503)


def test_upstream_slow_first_byte_times_out_to_504(start_gateway, sim) -> None:
    gw = start_gateway(upstream_timeout="0.5", upstream_max_attempts="2")
    sim.add_fault(delay=3, times=5)
    resp = post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
    assert_openai_error(resp, 504)


def test_stream_cut_midway_ends_with_error_event(gateway, sim) -> None:
    sim.configure(stream_chunks=6)
    sim.add_fault(cut_after=2, times=1)
    resp = post(gateway.base_url + "/chat/completions", {**PLAIN, "stream": True}, _auth(gateway))
    assert resp.status == 200
    events = resp.sse_events()
    assert events[-1] == "[DONE]"
    error_events = [json.loads(e) for e in events[:-1] if "error" in json.loads(e)]
    assert len(error_events) == 1
    assert error_events[0]["error"]["message"]


def test_upstream_failure_before_stream_is_plain_http_error(gateway, sim) -> None:
    sim.add_fault(
        status=400, body={"error": {"code": 400, "message": "nope", "status": "INVALID_ARGUMENT"}}
    )
    resp = post(gateway.base_url + "/chat/completions", {**PLAIN, "stream": True}, _auth(gateway))
    assert_openai_error(resp, 400)


async def test_client_disconnect_cancels_upstream(gateway, sim) -> None:
    sim.configure(stream_chunks=50, chunk_delay=0.2)
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({**PLAIN, "stream": True}).encode()
    writer.write(
        b"POST /gemini/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n"
        + f"Authorization: {gateway.license}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    await reader.read(200)  # the stream has started
    writer.close()
    await asyncio.sleep(1.0)
    status = sim.status()
    assert status["open_streams"] == 0


def test_body_over_limit_is_413(start_gateway) -> None:
    gw = start_gateway(max_body_bytes=1000)
    big = {**PLAIN, "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = post(gw.base_url + "/chat/completions", big, _auth(gw))
    assert_openai_error(resp, 413)


def test_sigterm_lets_open_streams_finish(start_gateway, sim) -> None:
    gw = start_gateway()
    sim.configure(stream_chunks=10, chunk_delay=0.2)
    result: dict[str, object] = {}

    def run() -> None:
        result["resp"] = post(
            gw.base_url + "/chat/completions", {**PLAIN, "stream": True}, _auth(gw)
        )

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.6)
    gw.process.send_signal(signal.SIGTERM)
    thread.join(20)
    resp = result["resp"]
    assert resp.status == 200
    assert resp.sse_events()[-1] == "[DONE]"
    assert not any("error" in e for e in resp.sse_events()[:-1])
    assert gw.process.wait(20) == 0 or gw.process.returncode in (0, -signal.SIGTERM)


def test_log_line_per_request_without_secrets(start_gateway) -> None:
    gw = start_gateway(upstream_keys="sim-secret-key-123")
    post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
    post(gw.base_url + "/chat/completions", PLAIN, {"Authorization": "Bearer not-a-license-xyz"})
    logs = gw.logs()
    assert "sim-secret-key-123" not in logs
    assert gw.license not in logs
    assert "not-a-license-xyz" not in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [x for x in lines if x.get("logger") == "gemini_gateway.access"]
    ok = [
        x for x in requests if x.get("status") == 200 and x.get("path", "").endswith("completions")
    ]
    assert ok, logs
    entry = ok[-1]
    for field in ("request_id", "license", "model", "status", "latency_ms", "key"):
        assert field in entry, entry
    assert entry["key"].startswith("k-")


def test_readyz(gateway) -> None:
    resp = get(gateway.url + "/readyz")
    assert resp.status == 200
    assert resp.json()["usable_keys"] >= 1


@pytest.mark.parametrize("path", ["/healthz"])
def test_healthz(gateway, path) -> None:
    assert get(gateway.url + path).status == 200


async def _streams_then_hang_up(gw, clients: int, seconds: float) -> None:
    """``clients`` keep-alive connections stream back to back, then all vanish at one moment.

    This is how a load generator or a restarting proxy ends: every connection is dropped at once,
    so some are mid-stream and some are between the ledger commit and the stream's last write.
    """
    host, port = gw.url.removeprefix("http://").split(":")
    body = json.dumps({**PLAIN, "stream": True}).encode()
    request = (
        b"POST /gemini/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n"
        + f"Authorization: {gw.license}\r\nx-request-id: gone\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    stop = asyncio.Event()

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not stop.is_set():
                writer.write(request)
                seen = b""
                while not seen.endswith(b"0\r\n\r\n") and not stop.is_set():
                    data = await reader.read(65536)
                    if not data:
                        return
                    seen += data
        finally:
            writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)


def test_clients_hanging_up_mid_stream_are_not_logged_as_errors(start_gateway, sim) -> None:
    gw = start_gateway()
    sim.configure(stream_chunks=20, chunk_delay=0)
    for _ in range(5):
        asyncio.run(_streams_then_hang_up(gw, 32, 0.5))
    time.sleep(0.5)
    logs = gw.logs()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert not [x for x in lines if x.get("level") == "error"], logs
    assert "Traceback" not in logs
    access = [x for x in lines if x.get("logger") == "gemini_gateway.access"]
    assert {x["status"] for x in access if x.get("request_id") == "gone"} <= {200, 499}
    # The gateway is still well: a request after all that is served.
    resp = post(gw.base_url + "/chat/completions", PLAIN, _auth(gw))
    assert resp.status == 200
