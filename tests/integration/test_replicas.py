"""Two gateway processes on one PostgreSQL and one Redis behave as one gateway.

One license's rate limit and quota hold across both replicas, and an upstream key that one replica
cooled down (the simulator answered 429 for it) is avoided by the other.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis import Redis

from tests.fixtures.gateway import GatewayProcess, launch_gateway
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.helpers import RawResponse, assert_openai_error, post

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# "hi" is 2 characters: the gateway reserves 2 // 4 + 1 + max_tokens = 101 tokens for it.
ASK = {
    "model": "gemini-2.0-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 100,
}
RESERVED = 101


class Replicas:
    def __init__(self, a: GatewayProcess, b: GatewayProcess, upstream_keys: list[str]) -> None:
        self.a, self.b = a, b
        self.upstream_keys = upstream_keys

    def license(self, *options: str) -> str:
        """A new license made with the real CLI (either replica's: they share the database)."""
        return self.a.create_license(f"replicas-{secrets.token_hex(4)}", *options)


@pytest.fixture(scope="module")
def replicas(
    simulator: SimulatorHandle,
    postgres_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    # Upstream keys of their own, so the key state these replicas share in Redis is theirs alone.
    tag = secrets.token_hex(3)
    keys = [f"sim-replica-{tag}-1", f"sim-replica-{tag}-2"]
    settings = {
        "GEMINI_GATEWAY_DATABASE_URL": postgres_url,
        "GEMINI_GATEWAY_REDIS_URL": redis_url,
        "GEMINI_GATEWAY_UPSTREAM_KEYS": ",".join(keys),
    }
    tmp: Path = tmp_path_factory.mktemp("replicas")
    started: list[GatewayProcess] = []
    try:
        for _ in range(2):
            started.append(launch_gateway(tmp, simulator.url, settings))
        yield Replicas(started[0], started[1], keys)
    finally:
        for gw in started:
            gw.stop(signal.SIGTERM)


def _ask(gw: GatewayProcess, license: str) -> RawResponse:
    return post(gw.base_url + "/chat/completions", ASK, {"Authorization": f"Bearer {license}"})


def _early_in_a_minute(margin: float = 20.0) -> None:
    """Per-minute windows are aligned to the clock: start a test well inside one."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.2)


def test_requests_per_minute_hold_across_replicas(replicas: Replicas, sim: SimulatorHandle) -> None:
    license = replicas.license("--rpm", "4")
    _early_in_a_minute()
    remaining = []
    for gw in (replicas.a, replicas.b, replicas.a, replicas.b):
        resp = _ask(gw, license)
        assert resp.status == 200, resp.body
        assert resp.headers["x-ratelimit-limit-requests"] == "4"
        remaining.append(resp.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["3", "2", "1", "0"]
    for gw in (replicas.a, replicas.b):
        resp = _ask(gw, license)
        err = assert_openai_error(resp, 429, "rate_limit_error")
        assert err["code"] == "rate_limit_exceeded"
        assert "4 requests per minute" in err["message"]
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        assert resp.headers["x-ratelimit-remaining-requests"] == "0"


def test_quota_holds_across_replicas_under_concurrency(
    replicas: Replicas, sim: SimulatorHandle
) -> None:
    license = replicas.license("--quota", str(3 * RESERVED))
    # Slow answers: all 20 requests are admitted or refused before the first one settles.
    sim.add_fault(match={"key": replicas.upstream_keys}, delay=1.5)
    gateways = [replicas.a, replicas.b] * 10
    with ThreadPoolExecutor(max_workers=len(gateways)) as workers:
        responses = list(workers.map(lambda gw: _ask(gw, license), gateways))
    served = [r for r in responses if r.status == 200]
    refused = [r for r in responses if r.status != 200]
    assert len(served) == 3, [r.status for r in responses]
    for resp in refused:
        err = assert_openai_error(resp, 429, "insufficient_quota")
        assert "token quota" in err["message"].lower()
        assert "retry-after" not in resp.headers  # a total quota never resets


def test_a_key_cooled_down_by_one_replica_is_avoided_by_the_other(
    replicas: Replicas, sim: SimulatorHandle
) -> None:
    license = replicas.license()
    cooled, healthy = replicas.upstream_keys
    sim.add_fault(match={"key": cooled}, status=429, retry_delay=120)
    for _ in range(2):  # round-robin: one of the two goes to the cooled key first
        resp = _ask(replicas.a, license)
        assert resp.status == 200, resp.body
    assert [r["key"] for r in sim.requests()].count(cooled) == 1
    time.sleep(1.5)  # a replica reloads shared key state at most once a second
    sim.clear_requests()
    for _ in range(4):
        resp = _ask(replicas.b, license)
        assert resp.status == 200, resp.body
    assert {r["key"] for r in sim.requests()} == {healthy}


def test_big_limits_are_handed_out_in_blocks_and_given_back(
    simulator: SimulatorHandle,
    postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """A limit covering 1,024+ requests is taken from Redis a block at a time (store/
    limits_lease.py): Redis counts more than was served while the replicas run, and exactly what
    was served once they have shut down and given their unused blocks back."""
    settings = {
        "GEMINI_GATEWAY_DATABASE_URL": postgres_url,
        "GEMINI_GATEWAY_REDIS_URL": redis_url,
        "GEMINI_GATEWAY_UPSTREAM_KEYS": f"sim-blocks-{secrets.token_hex(3)}",
    }
    started = [launch_gateway(tmp_path, simulator.url, settings) for _ in range(2)]
    try:
        a, b = started
        name = f"blocks-{secrets.token_hex(4)}"
        license = a.create_license(name, "--rpm", "4096")
        license_id = json.loads(a.cli("license", "show", name, "--json").stdout)["id"]
        _early_in_a_minute()
        for gw in (a, b) * 5:
            resp = _ask(gw, license)
            assert resp.status == 200, resp.body
        # The first request on each replica took a block; the rest came out of it.
        assert int(resp.headers["x-ratelimit-remaining-requests"]) <= 4096 - 5
        minute = int(time.time() // 60)
        key = f"gg:lim:{{{license_id}}}:rpm:{minute}"
        redis = Redis.from_url(redis_url)
        try:
            assert int(redis.get(key) or 0) > 10  # blocks held by the two replicas
            for gw in started:
                gw.stop(signal.SIGTERM)
            assert int(redis.get(key) or 0) == 10  # given back at shutdown
        finally:
            redis.close()
    finally:
        for gw in started:
            gw.stop(signal.SIGTERM)
