"""In-process limit counters, for a single replica: a dict, atomic because nothing awaits inside.

Same operations as the Lua scripts in ``limits_redis``: check every counter, then apply all or
none. Expired counters and slot leases are dropped lazily, and swept once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gemini_gateway.store.limits import (
    CounterCheck,
    ReserveResult,
    SlotCheck,
    extra_slot_member,
)

_SWEEP_EVERY = 60.0


class MemoryCounters:
    """``CounterBackend`` kept in this process: counters with expiry, slot leases per key."""

    remote = False

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # expiry only; window and lease times come from the limiter
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (value, expires; 0 = never)
        self._slots: dict[str, dict[str, float]] = {}  # key -> {member: lease end}
        self._last_sweep = clock()

    def _value(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None:
            return 0
        if entry[1] and entry[1] <= now:
            del self._counters[key]
            return 0
        return entry[0]

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult:
        now = self._clock()
        if now - self._last_sweep > _SWEEP_EVERY:
            self._sweep(now)
        values = [self._value(c.key, now) for c in counters]
        refused = next((i for i, c in enumerate(counters) if values[i] + c.amount > c.limit), None)
        held = 0
        if slot is not None:
            leases = self._slots.setdefault(slot.key, {})
            _drop_expired(leases, slot.now, everywhere=False)
            held = len(leases)
            if refused is None and held >= slot.limit:
                _drop_expired(leases, slot.now, everywhere=True)  # exact before refusing
                held = len(leases)
                if held >= slot.limit:
                    refused = len(counters)
        if refused is not None:
            return ReserveResult(refused, values, held)
        granted = []
        for i, c in enumerate(counters):
            expires = self._counters[c.key][1] if c.key in self._counters else 0.0
            if not expires and c.ttl:
                expires = now + c.ttl
            grant = c.amount
            if c.extra > 0 and values[i] + c.amount + c.extra <= c.cap:
                grant += c.extra
            granted.append(grant)
            values[i] += grant
            self._counters[c.key] = (values[i], expires)
        slots_granted = 0
        if slot is not None:
            leases = self._slots[slot.key]
            leases[slot.member] = slot.expires_at
            slots_granted = 1
            if slot.extra > 0 and held + 1 + slot.extra <= slot.cap:
                for index in range(1, slot.extra + 1):
                    leases[extra_slot_member(slot.member, index)] = slot.expires_at
                slots_granted += slot.extra
            held += slots_granted
        return ReserveResult(None, values, held, granted, slots_granted)

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        now = self._clock()
        for key, delta in deltas:
            entry = self._counters.get(key)
            if entry is None or (entry[1] and entry[1] <= now):
                continue  # the window is gone: nothing left to correct
            self._counters[key] = (max(0, entry[0] + delta), entry[1])
        if slot_key is not None:
            leases = self._slots.get(slot_key, {})
            for member in members:
                leases.pop(member, None)

    async def seed(self, key: str, value: int, ttl: int) -> None:
        now = self._clock()
        self._value(key, now)  # drops the key if it has expired
        if key not in self._counters:
            self._counters[key] = (value, now + ttl if ttl else 0.0)

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for key in [k for k, (_, end) in self._counters.items() if end and end <= now]:
            del self._counters[key]
        for key in [k for k, leases in self._slots.items() if not leases]:
            del self._slots[key]

    async def close(self) -> None:
        self._counters.clear()
        self._slots.clear()


def _drop_expired(leases: dict[str, float], now: float, *, everywhere: bool) -> None:
    """Drop leases that ended by ``now``. Leases are mostly added in the order they end (one
    lease length per limiter), so the cheap pass stops at the first live one: a request costs
    O(1), not O(slots held); ``everywhere`` checks them all, for when a refusal depends on it."""
    expired = []
    for member, end in leases.items():
        if end <= now:
            expired.append(member)
        elif not everywhere:
            break
    for member in expired:
        del leases[member]
