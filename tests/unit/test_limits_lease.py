"""Blocks of a shared limit held by one replica (``store/limits_lease.py``), on both stores.

The rules themselves are checked through ``LeasedCounters`` in ``test_limits.py`` (its
``leased-*`` backends). Here: that big limits really save round trips, that blocks never let
replicas exceed a limit, that one replica still counts exactly, and that blocks go back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from gemini_gateway.errors import RateLimited
from gemini_gateway.store.limits import (
    CounterBackend,
    CounterCheck,
    LicenseLimits,
    Limiter,
    ReserveResult,
    SlotCheck,
)
from gemini_gateway.store.limits_lease import LeasedCounters
from gemini_gateway.store.limits_memory import MemoryCounters
from gemini_gateway.store.limits_redis import RedisCounters

T0 = datetime(2026, 11, 25, 12, 0, 1, tzinfo=UTC).timestamp()  # a minute just begun

BIG = LicenseLimits(
    "big", rpm=1_000_000, tpm=1_000_000_000, token_quota=10**12, max_concurrent=10_000
)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A real store, counting the calls that reach it."""

    def __init__(self, inner: CounterBackend) -> None:
        self.inner = inner
        self.remote = inner.remote
        self.reserves = 0
        self.adjusts = 0

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult:
        self.reserves += 1
        return await self.inner.reserve(counters, slot)

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        self.adjusts += 1
        await self.inner.adjust(deltas, slot_key, members)

    async def seed(self, key: str, value: int, ttl: int) -> None:
        await self.inner.seed(key, value, ttl)

    async def close(self) -> None:
        await self.inner.close()


StoreFactory = Callable[[], CounterBackend]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Connections to one shared store: each call is what one more replica would open."""
    made: list[CounterBackend] = []
    if request.param == "memory":
        shared = MemoryCounters()

        def factory() -> CounterBackend:
            return shared
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_key_prefix")

        def factory() -> CounterBackend:
            store = RedisCounters.from_url(url, prefix=prefix)
            made.append(store)
            return store

    yield factory
    for store in made:
        await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def replica(stores: StoreFactory, clock: Clock) -> tuple[Limiter, LeasedCounters, CountingStore]:
    store = CountingStore(stores())
    leased = LeasedCounters(store, clock=clock)
    return Limiter(leased, clock=clock), leased, store


async def shared_count(stores: StoreFactory, key: str) -> int:
    """The store's value of a counter, read by reserving 0 of it."""
    result = await stores().reserve([CounterCheck(key, 10**15, 0, 0)], None)
    return result.values[0]


def minute_key(license_id: str, kind: str) -> str:
    return f"lim:{{{license_id}}}:{kind}:{int(T0 // 60)}"


async def test_big_limits_need_few_round_trips(stores: StoreFactory, clock: Clock) -> None:
    limiter, leased, store = replica(stores, clock)
    for _ in range(200):
        admission = await limiter.admit(BIG, estimated_tokens=50)
        await admission.settle(48)
        await asyncio.sleep(0.001)  # a server's loop runs other work between requests
    # Without blocks: 200 reserves and 200 adjusts. Blocks cover 64 requests; a top-up is asked
    # for in the background once one is half used.
    assert store.reserves <= 200 // 32 + 2
    assert store.adjusts == 0
    await leased.close()


async def test_one_replica_counts_exactly(stores: StoreFactory, clock: Clock) -> None:
    limiter, leased, store = replica(stores, clock)
    lic = LicenseLimits("exact", rpm=2048)  # big enough for blocks of 64
    remaining = []
    for _ in range(2048):
        admission = await limiter.admit(lic, estimated_tokens=1)
        remaining.append(int(admission.headers["x-ratelimit-remaining-requests"]))
        await asyncio.sleep(0)  # background top-ups run, as between a server's requests
    assert remaining == list(range(2047, -1, -1))
    with pytest.raises(RateLimited):
        await limiter.admit(lic, estimated_tokens=1)
    # Blocks of 64 in the first half; in the second half every request asks the store.
    assert 1024 <= store.reserves <= 1024 + 64 + 1024 // 64
    await leased.give_back(everything=True)
    assert await shared_count(stores, minute_key("exact", "rpm")) == 2048
    await leased.close()


async def test_replicas_never_exceed_a_limit(stores: StoreFactory, clock: Clock) -> None:
    replicas = [replica(stores, clock) for _ in range(3)]
    lic = LicenseLimits("shared", rpm=4096)

    async def one(i: int) -> bool:
        try:
            await replicas[i % 3][0].admit(lic, estimated_tokens=1)
        except RateLimited:
            return False
        return True

    served = sum(await asyncio.gather(*(one(i) for i in range(5000))))
    # Never more than the limit; fewer only by blocks other replicas still hold unused.
    assert 4096 - 3 * 2 * 64 <= served <= 4096
    assert await shared_count(stores, minute_key("shared", "rpm")) <= 4096
    for _, leased, _ in replicas:
        await leased.give_back(everything=True)  # as on close
    assert await shared_count(stores, minute_key("shared", "rpm")) == served


async def test_blocks_go_back_when_idle(stores: StoreFactory, clock: Clock) -> None:
    limiter, leased, _ = replica(stores, clock)
    lic = LicenseLimits("idle", tpm=10_000_000)
    admission = await limiter.admit(lic, estimated_tokens=100)
    assert await shared_count(stores, minute_key("idle", "tpm")) > 100  # a block was taken
    await admission.settle(90)  # 10 refunded into the block
    await leased.give_back()
    assert await shared_count(stores, minute_key("idle", "tpm")) > 90  # not idle yet
    clock.now += 1.0
    await leased.give_back()
    assert await shared_count(stores, minute_key("idle", "tpm")) == 90
    await leased.close()


async def test_give_back_runs_by_itself(stores: StoreFactory) -> None:
    store = stores()
    leased = LeasedCounters(store, idle=0.05)
    limiter = Limiter(leased)
    lic = LicenseLimits("auto", tpm=10_000_000)
    await limiter.admit(lic, estimated_tokens=100)
    minute = next(k for k in leased._allowances if ":tpm:" in k)
    for _ in range(100):
        if await shared_count(stores, minute) == 100:
            break
        await asyncio.sleep(0.02)
    assert await shared_count(stores, minute) == 100
    await leased.close()


async def test_slots_are_reused_then_given_back(stores: StoreFactory, clock: Clock) -> None:
    limiter, leased, store = replica(stores, clock)
    lic = LicenseLimits("slots", max_concurrent=2048)

    async def twenty_at_once() -> None:
        held = []
        for _ in range(20):
            held.append(await limiter.admit(lic, estimated_tokens=1))
            await asyncio.sleep(0.001)
        for admission in held:
            await admission.settle(1)

    await twenty_at_once()
    await twenty_at_once()
    # Without blocks: 40 reserves and 40 adjusts. Blocks of 16 slots, freed into a local pool.
    assert store.reserves + store.adjusts <= 4
    clock.now += 1.0
    await leased.give_back()
    other = await stores().reserve([], SlotCheck("lim:{slots}:slots", 1, "probe", T0, T0 + 9))
    assert other.slots == 1  # only the probe: every slot of the replica went back
    await leased.close()


async def test_a_slot_past_most_of_its_lease_is_not_reused(
    stores: StoreFactory, clock: Clock
) -> None:
    limiter, leased, store = replica(stores, clock)
    lic = LicenseLimits("lease", max_concurrent=2048)
    first = await limiter.admit(lic, estimated_tokens=1)
    await first.settle(1)
    clock.now += 0.2 * 900  # a fifth of the 15-minute lease gone
    second = await limiter.admit(lic, estimated_tokens=1)
    assert store.reserves == 2  # a fresh block, not the old slots
    await second.settle(1)
    await leased.close()


async def test_small_limits_are_checked_on_every_request(
    stores: StoreFactory, clock: Clock
) -> None:
    limiter, leased, store = replica(stores, clock)
    lic = LicenseLimits("small", rpm=1000, tpm=100_000, token_quota=5000, max_concurrent=100)
    for _ in range(5):
        admission = await limiter.admit(lic, estimated_tokens=100)
        await admission.settle(100)
    assert (store.reserves, store.adjusts) == (5, 5)
    assert not leased._allowances
    await leased.close()


async def test_a_refused_request_takes_nothing_from_the_block(
    stores: StoreFactory, clock: Clock
) -> None:
    limiter, leased, _ = replica(stores, clock)
    # rpm has blocks; the quota is small, so each request asks the store, which refuses.
    lic = LicenseLimits("mixed", rpm=1_000_000, token_quota=150)
    await limiter.admit(lic, estimated_tokens=100)
    rpm_left = leased._allowances[minute_key("mixed", "rpm")].units
    with pytest.raises(Exception, match="quota"):
        await limiter.admit(lic, estimated_tokens=100)
    assert leased._allowances[minute_key("mixed", "rpm")].units == rpm_left
    await leased.close()


async def test_settling_from_blocks_is_known_to_be_local(
    stores: StoreFactory, clock: Clock
) -> None:
    limiter, leased, store = replica(stores, clock)
    big = await limiter.admit(BIG, estimated_tokens=50)
    assert not big.remote  # the gateway then settles inline, without a task
    small = await limiter.admit(LicenseLimits("small-ones", rpm=10, tpm=1000), estimated_tokens=5)
    assert small.remote is store.remote  # on Redis a round trip, overlapped with the ledger
    await big.settle(50)
    await small.settle(5)
    await leased.close()
