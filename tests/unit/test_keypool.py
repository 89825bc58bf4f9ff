"""KeyPool: spreading, cool-downs, disabling, pinning, shared state and snapshots."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gemini_gateway.errors import RateLimited, UpstreamUnavailable
from gemini_gateway.upstream.keypool import (
    KeyPool,
    KeyStatus,
    MemoryKeyState,
    UpstreamKey,
    next_quota_reset,
)

SECRETS = ["AIzaFakeKeyOne000000000000000000000001", "AIzaFakeKeyTwo000000000000000000000002",
           "AIzaFakeKeyThree0000000000000000000003"]


def _id(secret: str) -> str:
    return "k-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def test_key_shows_only_its_id() -> None:
    key = UpstreamKey(SECRETS[0])
    assert key.id == _id(SECRETS[0])
    assert key.reveal() == SECRETS[0]
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert SECRETS[0] not in shown
        assert key.id in shown


def test_empty_key_refused() -> None:
    with pytest.raises(ValueError):
        UpstreamKey("  ")


async def test_requests_spread_over_keys() -> None:
    pool = KeyPool(SECRETS)
    seen = Counter([(await pool.acquire()).id for _ in range(30)])
    assert seen == {_id(s): 10 for s in SECRETS}


async def test_duplicate_keys_counted_once() -> None:
    pool = KeyPool([SECRETS[0], SECRETS[0] + " ", SECRETS[1]])
    assert pool.key_ids == [_id(SECRETS[0]), _id(SECRETS[1])]


async def test_rate_limited_key_cools_down_for_retry_delay() -> None:
    pool = KeyPool(SECRETS[:2])
    a, b = _id(SECRETS[0]), _id(SECRETS[1])
    until = await pool.report_rate_limited(a, retry_delay=37.0)
    assert until == pytest.approx(time.time() + 37, abs=1)
    assert {(await pool.acquire()).id for _ in range(6)} == {b}
    snap = {row.id: row for row in pool.snapshot()}
    assert snap[a].state == "cooling"
    assert snap[a].cooling_until == pytest.approx(until)
    assert snap[b].state == "healthy"


async def test_cool_down_ends_on_its_own() -> None:
    pool = KeyPool(SECRETS[:1])
    await pool.report_rate_limited(_id(SECRETS[0]), retry_delay=0.05)
    with pytest.raises(RateLimited):
        await pool.acquire()
    time.sleep(0.06)
    assert (await pool.acquire()).id == _id(SECRETS[0])


async def test_default_cool_down_is_60_seconds() -> None:
    pool = KeyPool(SECRETS[:1])
    until = await pool.report_rate_limited(_id(SECRETS[0]))
    assert until - time.time() == pytest.approx(60, abs=1)


async def test_per_day_quota_cools_until_pacific_midnight() -> None:
    pool = KeyPool(SECRETS[:1])
    until = await pool.report_rate_limited(_id(SECRETS[0]), retry_delay=20.0, per_day=True)
    assert until == pytest.approx(next_quota_reset(time.time()), abs=1)


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        pytest.param("2026-07-01T12:00:00", "2026-07-02T07:00:00", id="summer-PDT"),
        pytest.param("2026-01-15T12:00:00", "2026-01-16T08:00:00", id="winter-PST"),
        pytest.param("2026-01-16T07:59:00", "2026-01-16T08:00:00", id="a-minute-before"),
        pytest.param("2026-03-08T12:00:00", "2026-03-09T07:00:00", id="dst-starts-that-day"),
    ],
)
def test_next_quota_reset(now: str, reset: str) -> None:
    def utc(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    assert next_quota_reset(utc(now)) == utc(reset)


async def test_all_keys_cooling_raises_rate_limited_with_soonest_end() -> None:
    pool = KeyPool(SECRETS[:2])
    await pool.report_rate_limited(_id(SECRETS[0]), retry_delay=37.0)
    await pool.report_rate_limited(_id(SECRETS[1]), retry_delay=12.0)
    with pytest.raises(RateLimited) as info:
        await pool.acquire()
    assert info.value.retry_after == pytest.approx(12, abs=1)
    assert info.value.headers["Retry-After"] in {"12", "13"}


async def test_invalid_key_disabled_and_logged_by_id(caplog: pytest.LogCaptureFixture) -> None:
    pool = KeyPool(SECRETS[:2])
    a = _id(SECRETS[0])
    with caplog.at_level(logging.WARNING, logger="gemini_gateway.upstream"):
        await pool.report_invalid(a, "API_KEY_INVALID: API key not valid.")
    assert a in caplog.text
    assert "API_KEY_INVALID" in caplog.text
    assert all(s not in caplog.text for s in SECRETS)
    assert {(await pool.acquire()).id for _ in range(4)} == {_id(SECRETS[1])}
    snap = {row.id: row for row in pool.snapshot()}
    assert snap[a].state == "disabled"
    assert snap[a].reason == "API_KEY_INVALID: API key not valid."
    await pool.enable(a)
    assert {(await pool.acquire()).id for _ in range(4)} == {a, _id(SECRETS[1])}


async def test_no_enabled_key_is_unavailable() -> None:
    pool = KeyPool(SECRETS[:2])
    for s in SECRETS[:2]:
        await pool.report_invalid(_id(s), "PERMISSION_DENIED")
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire()
    with pytest.raises(UpstreamUnavailable):
        await KeyPool([]).acquire()


async def test_disabled_keys_do_not_set_retry_after() -> None:
    pool = KeyPool(SECRETS[:2])
    await pool.report_rate_limited(_id(SECRETS[0]), retry_delay=30.0)
    await pool.report_invalid(_id(SECRETS[0]), "API_KEY_INVALID")
    await pool.report_invalid(_id(SECRETS[1]), "API_KEY_INVALID")
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire()
    assert pool.retry_after() is None


async def test_pinned_key_only() -> None:
    pool = KeyPool(SECRETS)
    b = _id(SECRETS[1])
    assert {(await pool.acquire(pinned=b)).id for _ in range(5)} == {b}
    await pool.report_rate_limited(b, retry_delay=9.0)
    with pytest.raises(RateLimited) as info:
        await pool.acquire(pinned=b)
    assert info.value.retry_after == pytest.approx(9, abs=1)
    await pool.report_invalid(b, "PERMISSION_DENIED")
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire(pinned=b)
    with pytest.raises(UpstreamUnavailable):
        await pool.acquire(pinned="k-00000000")


async def test_excluded_keys_used_only_as_a_last_resort() -> None:
    pool = KeyPool(SECRETS[:2])
    a, b = _id(SECRETS[0]), _id(SECRETS[1])
    assert {(await pool.acquire(exclude={a})).id for _ in range(4)} == {b}
    assert (await pool.acquire(exclude={a, b})).id in {a, b}


async def test_add_and_remove_keys() -> None:
    pool = KeyPool(SECRETS[:1])
    added = pool.add_key(SECRETS[2])
    assert added.id == _id(SECRETS[2])
    assert pool.add_key(SECRETS[2]) is added
    assert {(await pool.acquire()).id for _ in range(4)} == {_id(SECRETS[0]), added.id}
    assert pool.remove_key(_id(SECRETS[0]))
    assert not pool.remove_key(_id(SECRETS[0]))
    assert {(await pool.acquire()).id for _ in range(4)} == {added.id}
    assert [row.id for row in pool.snapshot()] == [added.id]


async def test_snapshot_counts_outcomes() -> None:
    pool = KeyPool(SECRETS[:2])
    a, b = _id(SECRETS[0]), _id(SECRETS[1])
    pool.report_success(a)
    pool.report_success(a)
    pool.report_failure(a, "The upstream API did not respond.")
    pool.report_success(b)
    rows = {row.id: row.to_dict() for row in pool.snapshot()}
    assert rows[a] == {
        "id": a, "state": "healthy", "cooling_until": None, "reason": None,
        "last_error": "The upstream API did not respond.", "successes": 2, "failures": 1,
    }
    assert (rows[b]["successes"], rows[b]["failures"]) == (1, 0)
    await pool.refresh()
    pool.report_success(a)
    assert {r.id: r.successes for r in pool.snapshot()}[a] == 3  # flushed once, not twice
    await pool.refresh()
    assert {r.id: r.successes for r in pool.snapshot()}[a] == 3


class CountingState(MemoryKeyState):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        self.gets += 1
        return await super().get(ids)


async def test_acquire_reads_shared_state_at_most_once_per_interval() -> None:
    state = CountingState()
    pool = KeyPool(SECRETS, state, refresh_interval=60.0)
    for _ in range(200):
        await pool.acquire()
    assert state.gets == 1


async def test_replicas_share_cool_downs_through_the_state() -> None:
    state = MemoryKeyState()
    first = KeyPool(SECRETS[:2], state, refresh_interval=60.0)
    second = KeyPool(SECRETS[:2], state, refresh_interval=60.0)
    await second.acquire()  # loads its cache now, before the cool-down
    a, b = _id(SECRETS[0]), _id(SECRETS[1])
    await first.report_rate_limited(a, retry_delay=30.0)
    await first.report_invalid(b, "API_KEY_INVALID")
    # The second replica sees it at its next refresh (here forced; normally within 1 s).
    await second.refresh()
    with pytest.raises(UpstreamUnavailable):  # b is disabled
        await second.acquire(pinned=b)
    with pytest.raises(RateLimited):  # and a, the only enabled key, is cooling down
        await second.acquire()
    await first.enable(a)
    await second.refresh()
    assert (await second.acquire()).id == a


class BrokenState(MemoryKeyState):
    """A shared state whose backend is down (as Redis can be)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        if self.down:
            raise ConnectionError("state backend down")
        return await super().get(ids)

    async def cool_down(self, key_id: str, until: float, reason: str) -> None:
        if self.down:
            raise ConnectionError("state backend down")
        await super().cool_down(key_id, until, reason)

    async def record(
        self, key_id: str, *, successes: int = 0, failures: int = 0, error: str | None = None
    ) -> None:
        if self.down:
            raise ConnectionError("state backend down")
        await super().record(key_id, successes=successes, failures=failures, error=error)


async def test_a_failing_state_does_not_fail_requests(caplog: pytest.LogCaptureFixture) -> None:
    state = BrokenState()
    pool = KeyPool(SECRETS[:2], state, refresh_interval=0.0)
    a, b = _id(SECRETS[0]), _id(SECRETS[1])
    with caplog.at_level(logging.WARNING, logger="gemini_gateway.upstream"):
        pool.report_success(a)
        assert (await pool.acquire()).id in {a, b}
        await pool.report_rate_limited(a, retry_delay=30.0)  # kept locally
        assert {(await pool.acquire()).id for _ in range(3)} == {b}
    assert "key state unavailable" in caplog.text
    state.down = False
    await pool.refresh()
    stored = await state.get([a])
    assert (stored[a].successes, stored[a].failures) == (1, 1)
    rows = {row.id: row for row in pool.snapshot()}
    assert rows[a].successes == 1  # the counters waited for the state to come back
    assert rows[a].failures == 1
