"""Limiter rules, run against both backends: in-process and the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from gemini_gateway.config import Settings
from gemini_gateway.errors import GatewayError, QuotaExceeded, RateLimited
from gemini_gateway.store.limits import (
    CounterBackend,
    CounterCheck,
    LicenseLimits,
    Limiter,
    ReserveResult,
    SlotCheck,
    build_limiter,
    format_reset,
)
from gemini_gateway.store.limits_lease import LeasedCounters
from gemini_gateway.store.limits_memory import MemoryCounters
from gemini_gateway.store.limits_redis import RedisCounters

# 2026-11-25 12:00:30 UTC: half a minute into a minute, mid-day, mid-month.
BackendFactory = Callable[[], CounterBackend]

T0 = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingBackend:
    """Wraps a real backend to count round trips."""

    def __init__(self, inner: CounterBackend) -> None:
        self.inner = inner
        self.remote = inner.remote
        self.calls = 0

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult:
        self.calls += 1
        return await self.inner.reserve(counters, slot)

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        self.calls += 1
        await self.inner.adjust(deltas, slot_key, members)

    async def seed(self, key: str, value: int, ttl: int) -> None:
        self.calls += 1
        await self.inner.seed(key, value, ttl)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(
    params=[
        "memory",
        "leased-memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("leased-redis", marks=pytest.mark.redis),
    ]
)
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[BackendFactory]:
    """A factory of backends sharing one store (so two of them act as two replicas).

    The ``leased-*`` ones hand out blocks locally (``limits_lease``); every rule below must hold
    through them as well. Each call gives a new replica with blocks of its own."""
    made: list[CounterBackend] = []
    leased = request.param.startswith("leased-")
    shared: MemoryCounters | None = None
    if request.param.endswith("memory"):
        shared = MemoryCounters()

        def store() -> CounterBackend:
            assert shared is not None
            return shared
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_key_prefix")

        def store() -> CounterBackend:
            return RedisCounters.from_url(url, prefix=prefix)

    def factory() -> CounterBackend:
        backend = LeasedCounters(store()) if leased else store()
        if backend is not shared:
            made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(make_backend: BackendFactory) -> CountingBackend:
    return CountingBackend(make_backend())


@pytest.fixture
def limiter(backend: CountingBackend, clock: FakeClock) -> Limiter:
    return Limiter(backend, clock=clock)


async def test_license_without_limits_costs_no_round_trip(
    limiter: Limiter, backend: CountingBackend
) -> None:
    admission = await limiter.admit(LicenseLimits("free"), estimated_tokens=10_000)
    assert admission.headers == {}
    await admission.settle(123)
    await admission.release()
    assert backend.calls == 0


async def test_rpm_window(limiter: Limiter, clock: FakeClock) -> None:
    lic = LicenseLimits("rpm", rpm=3)
    remaining = []
    for _ in range(3):
        admission = await limiter.admit(lic, estimated_tokens=10)
        remaining.append(admission.headers["x-ratelimit-remaining-requests"])
        await admission.settle(10)
    assert remaining == ["2", "1", "0"]
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(lic, estimated_tokens=10)
    assert type(refused.value) is RateLimited
    assert "3 requests per minute" in refused.value.message
    assert refused.value.retry_after == pytest.approx(30)  # T0 is 30 s into its minute
    assert refused.value.headers["Retry-After"] == "30"
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
    clock.now += 30  # the next minute
    admission = await limiter.admit(lic, estimated_tokens=10)
    assert admission.headers["x-ratelimit-remaining-requests"] == "2"


async def test_tpm_reserves_then_settles_to_actual(limiter: Limiter) -> None:
    lic = LicenseLimits("tpm", tpm=1000)
    first = await limiter.admit(lic, estimated_tokens=400)
    second = await limiter.admit(lic, estimated_tokens=400)
    assert second.headers["x-ratelimit-remaining-tokens"] == "200"
    with pytest.raises(RateLimited, match="1000 tokens per minute"):
        await limiter.admit(lic, estimated_tokens=400)
    await first.settle(100)
    await second.settle(100)
    third = await limiter.admit(lic, estimated_tokens=400)
    assert third.headers["x-ratelimit-remaining-tokens"] == "400"


async def test_tpm_request_bigger_than_the_minute_gets_an_empty_minute(
    limiter: Limiter, clock: FakeClock
) -> None:
    lic = LicenseLimits("big", tpm=1000)
    big = await limiter.admit(lic, estimated_tokens=5000)
    assert big.headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(RateLimited):
        await limiter.admit(lic, estimated_tokens=1)
    clock.now += 60
    await limiter.admit(lic, estimated_tokens=5000)


async def test_quota_total(limiter: Limiter) -> None:
    lic = LicenseLimits("q", token_quota=1000)
    held = [await limiter.admit(lic, estimated_tokens=300) for _ in range(3)]
    with pytest.raises(QuotaExceeded) as refused:
        await limiter.admit(lic, estimated_tokens=300)
    assert refused.value.retry_after is None  # a total quota never resets
    assert "Retry-After" not in refused.value.headers
    assert "1000 tokens in total" in refused.value.message
    assert refused.value.status == 429 and refused.value.code == "insufficient_quota"
    await held[0].settle(0)  # actual usage 0: the reservation comes back
    await limiter.admit(lic, estimated_tokens=300)


async def test_quota_per_day_resets_at_utc_midnight(limiter: Limiter, clock: FakeClock) -> None:
    lic = LicenseLimits("qd", token_quota=500, quota_period="day")
    clock.now = datetime(2026, 11, 25, 23, 59, 0, tzinfo=UTC).timestamp()
    await limiter.admit(lic, estimated_tokens=500)
    with pytest.raises(QuotaExceeded, match="500 tokens per day") as refused:
        await limiter.admit(lic, estimated_tokens=1)
    assert refused.value.retry_after == pytest.approx(60)
    clock.now += 60
    await limiter.admit(lic, estimated_tokens=500)


async def test_quota_per_month_window(limiter: Limiter, clock: FakeClock) -> None:
    lic = LicenseLimits("qm", token_quota=100, quota_period="month")
    await limiter.admit(lic, estimated_tokens=100)
    clock.now = datetime(2026, 11, 30, 23, 0, 0, tzinfo=UTC).timestamp()
    with pytest.raises(QuotaExceeded) as refused:
        await limiter.admit(lic, estimated_tokens=1)
    assert refused.value.retry_after == pytest.approx(3600)
    clock.now += 3600  # 1 December
    await limiter.admit(lic, estimated_tokens=100)


async def test_concurrency_slots(limiter: Limiter, clock: FakeClock) -> None:
    lic = LicenseLimits("c", max_concurrent=2)
    a = await limiter.admit(lic, estimated_tokens=1)
    b = await limiter.admit(lic, estimated_tokens=1)
    with pytest.raises(RateLimited, match="at most 2 requests at once"):
        await limiter.admit(lic, estimated_tokens=1)
    await a.settle(1)
    c = await limiter.admit(lic, estimated_tokens=1)
    await b.release()
    await c.settle(1)
    await limiter.admit(lic, estimated_tokens=1)
    await limiter.admit(lic, estimated_tokens=1)
    with pytest.raises(RateLimited):
        await limiter.admit(lic, estimated_tokens=1)
    clock.now += 901  # holders that never settled (a replica died): their leases run out
    await limiter.admit(lic, estimated_tokens=1)


async def test_slot_leases_that_end_out_of_order_are_all_freed_before_a_refusal(
    backend: CountingBackend,
) -> None:
    """Two limiters on one store with different lease lengths: an expired lease added after a
    live one (the in-process store's cheap pass stops at the first live lease) still frees its
    slot before anyone is refused for want of one."""
    clock = FakeClock()
    long_leases = Limiter(backend, clock=clock, slot_lease=3600)
    short_leases = Limiter(backend, clock=clock, slot_lease=60)
    lic = LicenseLimits("order", max_concurrent=3)
    await long_leases.admit(lic, estimated_tokens=1)  # never settled, ends in an hour
    await short_leases.admit(lic, estimated_tokens=1)  # never settled, ends in a minute
    await short_leases.admit(lic, estimated_tokens=1)
    with pytest.raises(RateLimited):
        await short_leases.admit(lic, estimated_tokens=1)
    clock.now += 61
    await short_leases.admit(lic, estimated_tokens=1)
    await short_leases.admit(lic, estimated_tokens=1)
    with pytest.raises(RateLimited):  # the hour-long lease still holds the third slot
        await short_leases.admit(lic, estimated_tokens=1)


async def test_a_changed_license_record_is_read_again(limiter: Limiter) -> None:
    """The limiter remembers a license's limits per record; an update is a new record."""
    import dataclasses

    from gemini_gateway.store.licenses import License

    now = datetime.now(UTC)
    lic = License(id="lic_upd", name="n", key_prefix="gg-abc", created_at=now, updated_at=now)
    lic = dataclasses.replace(lic, rpm=1)
    await limiter.admit(lic, estimated_tokens=1)
    with pytest.raises(RateLimited, match="1 requests per minute"):
        await limiter.admit(lic, estimated_tokens=1)
    raised = dataclasses.replace(lic, rpm=3)
    admission = await limiter.admit(raised, estimated_tokens=1)
    assert admission.headers["x-ratelimit-limit-requests"] == "3"


async def test_checks_run_in_order_and_a_refusal_applies_nothing(limiter: Limiter) -> None:
    lic = LicenseLimits("order", rpm=5, tpm=100, token_quota=50, max_concurrent=1)
    first = await limiter.admit(lic, estimated_tokens=50)
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    with pytest.raises(QuotaExceeded):  # tpm has room (50 of 100); quota and slot have none
        await limiter.admit(lic, estimated_tokens=10)
    await first.settle(20)
    second = await limiter.admit(lic, estimated_tokens=30)
    with pytest.raises(RateLimited, match="at most 1 requests at once") as refused:
        await limiter.admit(lic, estimated_tokens=0)
    assert type(refused.value) is RateLimited
    await second.settle(30)
    third = await limiter.admit(lic, estimated_tokens=0)
    # The two refused requests took nothing: 3 of 5 requests used, 20 + 30 of 100 tokens.
    assert third.headers["x-ratelimit-remaining-requests"] == "2"
    assert third.headers["x-ratelimit-remaining-tokens"] == "50"


async def test_requests_per_minute_is_checked_before_the_quota(limiter: Limiter) -> None:
    lic = LicenseLimits("first", rpm=1, token_quota=10)
    await limiter.admit(lic, estimated_tokens=10)
    with pytest.raises(RateLimited) as refused:  # both are spent; rpm is reported
        await limiter.admit(lic, estimated_tokens=10)
    assert type(refused.value) is RateLimited
    assert "requests per minute" in refused.value.message


async def test_settle_is_idempotent_and_release_refunds(limiter: Limiter) -> None:
    lic = LicenseLimits("idem", rpm=10, tpm=1000)
    a = await limiter.admit(lic, estimated_tokens=100)
    await a.settle(300)
    await a.settle(300)
    await a.release()
    b = await limiter.admit(lic, estimated_tokens=100)
    assert b.headers["x-ratelimit-remaining-tokens"] == str(1000 - 300 - 100)
    await b.release()
    c = await limiter.admit(lic, estimated_tokens=0)
    assert c.headers["x-ratelimit-remaining-tokens"] == "700"  # b's tokens came back
    assert c.headers["x-ratelimit-remaining-requests"] == "7"  # b still counts as a request


async def test_200_concurrent_admits_against_a_10_request_quota(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    # Two limiters on one store: on Redis these are two replicas with their own connections.
    limiters = [Limiter(make_backend(), clock=clock) for _ in range(2)]
    lic = LicenseLimits("burst", token_quota=10 * 500)

    async def one(i: int) -> bool:
        try:
            admission = await limiters[i % 2].admit(lic, estimated_tokens=500)
        except QuotaExceeded:
            return False
        await asyncio.sleep(0)
        await admission.settle(500)
        return True

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert sum(results) == 10
    with pytest.raises(QuotaExceeded):
        await limiters[0].admit(lic, estimated_tokens=1)


async def test_headers_only_for_the_limits_the_license_has(limiter: Limiter) -> None:
    rpm_only = await limiter.admit(LicenseLimits("h1", rpm=60), estimated_tokens=5)
    assert set(rpm_only.headers) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }
    assert rpm_only.headers["x-ratelimit-limit-requests"] == "60"
    assert rpm_only.headers["x-ratelimit-reset-requests"] == "30s"
    tpm_only = await limiter.admit(LicenseLimits("h2", tpm=150000), estimated_tokens=16)
    assert tpm_only.headers == {
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "30s",
    }
    quota_only = await limiter.admit(LicenseLimits("h3", token_quota=10), estimated_tokens=5)
    assert quota_only.headers == {}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.012, "12ms", id="ms"),
        pytest.param(1, "1s", id="1s"),
        pytest.param(360, "6m0s", id="6m0s"),
        pytest.param(8.64, "8.64s", id="fraction"),
        pytest.param(179.56, "2m59.56s", id="minutes-fraction"),
        pytest.param(3723, "1h2m3s", id="hours"),
        pytest.param(0, "0s", id="zero"),
        pytest.param(-3, "0s", id="negative"),
    ],
)
def test_format_reset(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_license_limits_of_reads_a_license() -> None:
    class Lic:
        id = 7
        rpm = 60
        tpm = 0
        quota = 1000
        quota_period = "month"
        concurrency = None

    limits = LicenseLimits.of(Lic())
    assert limits == LicenseLimits(
        "7", rpm=60, tpm=None, token_quota=1000, quota_period="month", max_concurrent=None
    )


@pytest.mark.redis
async def test_build_limiter_picks_the_backend(redis_url: str) -> None:
    memory = build_limiter(Settings({}))
    assert isinstance(memory.backend, MemoryCounters)
    shared = build_limiter(Settings({"redis_url": redis_url}))
    try:
        assert isinstance(shared.backend, LeasedCounters)
        assert isinstance(shared.backend.store, RedisCounters)
        admission = await shared.admit(LicenseLimits("build", rpm=1), estimated_tokens=1)
        assert admission.headers["x-ratelimit-remaining-requests"] == "0"
    finally:
        await shared.close()
        await memory.close()


async def test_quota_starts_from_the_ledger_once(
    limiter: Limiter, backend: CountingBackend
) -> None:
    asked: list[tuple[str, datetime | None]] = []

    async def tokens_used(license_id: str, since: datetime | None) -> int:
        asked.append((license_id, since))
        return 900

    seeded = Limiter(backend, clock=limiter._clock, tokens_used=tokens_used)
    lic = LicenseLimits("ledger", token_quota=1000, quota_period="day")
    await seeded.admit(lic, estimated_tokens=100)
    with pytest.raises(QuotaExceeded):
        await seeded.admit(lic, estimated_tokens=1)
    assert asked == [("ledger", datetime(2026, 11, 25, tzinfo=UTC))]
    # Another process (replica) seeds too, but the counter exists: it keeps the live value.
    other = Limiter(backend, clock=limiter._clock, tokens_used=tokens_used)
    with pytest.raises(QuotaExceeded):
        await other.admit(lic, estimated_tokens=1)


async def test_the_real_license_record(limiter: Limiter) -> None:
    from gemini_gateway.store.licenses import License

    now = datetime.now(UTC)
    lic = License(
        id="lic_1",
        name="n",
        key_prefix="gg-abc",
        created_at=now,
        updated_at=now,
        rpm=2,
        tpm=None,
        quota=100,
        quota_period="month",
        concurrency=1,
    )
    admission = await limiter.admit(lic, estimated_tokens=100)
    assert admission.headers["x-ratelimit-remaining-requests"] == "1"
    with pytest.raises(QuotaExceeded, match="100 tokens per month"):
        await limiter.admit(lic, estimated_tokens=1)


async def test_redis_unreachable_refuses_limited_requests_only() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    limiter = Limiter(RedisCounters.from_url("redis://127.0.0.1:1/0"))
    try:
        with pytest.raises(GatewayError, match="limits store") as refused:
            await limiter.admit(LicenseLimits("down", rpm=5), estimated_tokens=1)
        assert refused.value.status == 500 and refused.value.code == "limits_unavailable"
        admission = await limiter.admit(LicenseLimits("free"), estimated_tokens=1)
        assert admission.headers == {}
    finally:
        await limiter.close()


async def test_settle_charges_usage_even_without_an_estimate(limiter: Limiter) -> None:
    lic = LicenseLimits("zero", tpm=1000, token_quota=5000)
    admission = await limiter.admit(lic, estimated_tokens=0)
    assert admission.headers["x-ratelimit-remaining-tokens"] == "1000"
    await admission.settle(600)
    after = await limiter.admit(lic, estimated_tokens=0)
    assert after.headers["x-ratelimit-remaining-tokens"] == "400"
