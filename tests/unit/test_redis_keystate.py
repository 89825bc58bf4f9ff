"""RedisKeyState: the KeyState contract (same cases as MemoryKeyState), shared across replicas."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from gemini_gateway.errors import GatewayError
from gemini_gateway.store.redis_keystate import RedisKeyState
from gemini_gateway.upstream.keypool import KeyPool, KeyState, MemoryKeyState, key_id

StateFactory = Callable[[], KeyState]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[StateFactory]:
    """Factory of states over one store: two of them behave as two replicas."""
    made: list[RedisKeyState] = []
    if request.param == "memory":
        shared = MemoryKeyState()

        def factory() -> KeyState:
            return shared
    else:
        redis_url = request.getfixturevalue("redis_url")
        redis_key_prefix = request.getfixturevalue("redis_key_prefix")

        def factory() -> KeyState:
            state = RedisKeyState.from_url(redis_url, prefix=redis_key_prefix)
            made.append(state)
            return state

    yield factory
    for state in made:
        await state.close()


async def test_unknown_keys_are_missing(make_state: StateFactory) -> None:
    assert await make_state().get(["k-00000000"]) == {}
    assert await make_state().get([]) == {}


async def test_cool_down_is_seen_by_another_replica_and_only_moves_later(
    make_state: StateFactory,
) -> None:
    one, two = make_state(), make_state()
    until = time.time() + 30.5
    await one.cool_down("k-aaaa0001", until, "rate-limited, retry in 30.5s")
    await two.cool_down("k-aaaa0001", until - 20, "rate-limited")  # earlier: ignored
    status = (await two.get(["k-aaaa0001", "k-other"]))["k-aaaa0001"]
    assert status.cooling_until == pytest.approx(until)
    assert status.reason == "rate-limited, retry in 30.5s"
    assert not status.usable(time.time())
    assert status.usable(until + 1)


async def test_disable_then_enable(make_state: StateFactory) -> None:
    one, two = make_state(), make_state()
    await one.cool_down("k-bbbb0001", time.time() + 60, "rate-limited")
    await one.disable("k-bbbb0001", "API_KEY_INVALID")
    status = (await two.get(["k-bbbb0001"]))["k-bbbb0001"]
    assert status.disabled and status.reason == "API_KEY_INVALID"
    await two.enable("k-bbbb0001")
    status = (await one.get(["k-bbbb0001"]))["k-bbbb0001"]
    assert not status.disabled
    assert status.cooling_until == 0
    assert status.reason is None
    assert status.usable(time.time())


async def test_record_adds_up_across_replicas(make_state: StateFactory) -> None:
    one, two = make_state(), make_state()
    await one.record("k-cccc0001", successes=3)
    await two.record("k-cccc0001", successes=1, failures=2, error="HTTP 503")
    await one.record("k-cccc0001")
    status = (await one.get(["k-cccc0001"]))["k-cccc0001"]
    assert (status.successes, status.failures, status.last_error) == (4, 2, "HTTP 503")


async def test_a_key_cooled_by_one_pool_is_avoided_by_the_other(make_state: StateFactory) -> None:
    secrets = ["sim-key-one", "sim-key-two"]
    replica_a = KeyPool(secrets, state=make_state(), refresh_interval=0)
    replica_b = KeyPool(secrets, state=make_state(), refresh_interval=0)
    cooled = key_id("sim-key-one")
    await replica_a.report_rate_limited(cooled, retry_delay=30)
    picked = {(await replica_b.acquire()).id for _ in range(6)}
    assert picked == {key_id("sim-key-two")}
    await replica_a.report_invalid(key_id("sim-key-two"), "API_KEY_INVALID")
    await replica_b.refresh()
    rows = {row.id: row.state for row in replica_b.snapshot()}
    assert rows == {cooled: "cooling", key_id("sim-key-two"): "disabled"}


async def test_redis_down_is_a_gateway_error() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    state = RedisKeyState.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(GatewayError, match="key state store"):
            await state.get(["k-dddd0001"])
    finally:
        await state.close()
