"""Blocks of a shared limit, held by one replica, so most requests need no round trip to Redis.

On Redis every admission and every settle of a limited request is a round trip: about a fifth of
what the gateway spends on a small request. ``LeasedCounters`` wraps the shared store and, while a
limit is far from reached, takes a little more than a request needs: a *block* of requests,
tokens or concurrency slots that this replica then hands out locally. The rules:

- A block is counted in the shared store the moment it is taken, so the shared count never
  exceeds a limit: replicas cannot together serve more than the limit allows.
- Only a limit that covers at least 1,024 requests of the size asked gets blocks; smaller limits
  (those a client can exhaust in a test or a burst) are checked on every request, exactly as
  without this module. A counter's block is at most 1/32 of its limit and at most 64 times the
  request's amount; a slot block 16 slots. Blocks are granted only while the shared count stays
  within half the limit (the store checks this atomically): in the second half of every limit,
  each request that its replica's block does not cover is checked against the shared count.
- A request takes what it can from this replica's block and asks the store for the rest. So on
  one replica a limit holds exactly: "used" is the shared count minus the unused block. Once
  less than a block is left, another is asked for in the background (a replica holds up to two),
  so that requests seldom wait for the store.
- A request that settles below its reservation refunds into the block (keeping at most two
  blocks); the rest goes back to the store. Blocks and free slots unused for ``idle`` seconds go
  back to the store, and so does everything on ``close``.
- What blocks cost: a replica may be refused while another holds unused blocks, by at most two
  blocks per replica and only until that replica uses them or gives them back. A replica killed
  while holding blocks leaves them counted: at most two blocks per counter, until the window ends
  (the quota: for good); its slots free themselves when their lease ends, as any slot's.

With the in-process backend there is nothing to save; ``build_limiter`` wraps only Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from gemini_gateway.store.limits import (
    CounterBackend,
    CounterCheck,
    ReserveResult,
    SlotCheck,
    extra_slot_member,
)

log = logging.getLogger("gemini_gateway.limits")

MIN_REQUESTS = 1024  # no block unless the limit covers 1,024 requests of this size
BLOCK_SHARE = 32  # a block is at most 1/32 of the limit
BLOCK_REQUESTS = 64  # … and at most 64 times what the request asks for
SLOT_BLOCK = 16  # … and at most 16 concurrency slots
REUSE_SHARE = 0.9  # a free slot is reused while at least 90 % of its lease is left
DEFAULT_IDLE = 1.0


@dataclass(slots=True)
class _Allowance:
    """This replica's unused part of a shared counter."""

    units: int = 0  # counted in the store, not yet given to a request
    block: int = 0  # the most it keeps (the last block size asked for)
    seen: int = 0  # the store's count after our last call
    used_at: float = 0.0


@dataclass(slots=True)
class _FreeSlot:
    member: str
    lease_end: float
    freed_at: float


class LeasedCounters:
    """``CounterBackend`` that hands out blocks of ``store``'s counters and slots locally."""

    def __init__(
        self,
        store: CounterBackend,
        *,
        idle: float = DEFAULT_IDLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.remote = store.remote
        self._idle = idle
        self._clock = clock  # idle times only; lease times come from the limiter's SlotCheck
        self._allowances: dict[str, _Allowance] = {}
        self._free_slots: dict[str, list[_FreeSlot]] = {}  # slot key -> free members of ours
        self._ours: dict[str, float] = {}  # slot member taken in a block -> its lease end
        self._aliases: dict[str, str] = {}  # the limiter's member -> the free member it got
        self._stale: dict[str, list[str]] = {}  # slot key -> ours, too little lease left to reuse
        self._asking: set[str] = set()  # counters and slot sets with a block on its way
        self._topping_up: set[asyncio.Future[None]] = set()
        self._returner: asyncio.Task[None] | None = None

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult:
        now = self._clock()
        taken = [self._take(check, now) for check in counters]
        asks = [
            (index, self._ask(check, take))
            for index, (check, take) in enumerate(zip(counters, taken, strict=True))
            if take < check.amount or check.key not in self._allowances
        ]
        member = self._free_member(slot) if slot is not None else None
        slot_ask = None
        if slot is not None and member is None:
            extra = 0 if slot.key in self._asking else _block(slot.limit, 1, SLOT_BLOCK) - 1
            slot_ask = replace(slot, extra=max(0, extra), cap=slot.limit // 2)
        values = [self._used(check.key) for check in counters]
        if asks or slot_ask is not None:
            asking = [ask.key for _, ask in asks if ask.extra]
            if slot_ask is not None and slot_ask.extra:
                asking.append(slot_ask.key)
            self._asking.update(asking)
            try:
                result = await self.store.reserve([ask for _, ask in asks], slot_ask)
            except BaseException:
                self._undo(counters, taken, slot, member)
                raise
            finally:
                self._asking.difference_update(asking)
            if result.refused is not None:
                self._undo(counters, taken, slot, member)
                for (index, ask), value in zip(asks, result.values, strict=True):
                    values[index] = max(0, value - self._units(ask.key))
                refused = len(counters) if result.refused == len(asks) else asks[result.refused][0]
                return ReserveResult(refused, values, result.slots)
            lent = False
            for (index, ask), value, grant in zip(asks, result.values, result.granted, strict=True):
                allowance = self._allowances.get(ask.key)
                if allowance is None and grant > ask.amount:
                    allowance = self._allowances[ask.key] = _Allowance(used_at=now)
                if allowance is not None:
                    check = counters[index]
                    allowance.units += grant - ask.amount
                    if ask.extra and grant == ask.amount:  # declined: past half the limit
                        allowance.block = 0  # no more blocks (nor top-ups) for it
                    elif ask.extra:
                        allowance.block = _block(
                            check.limit, check.amount, BLOCK_REQUESTS * check.amount
                        )
                    allowance.seen = value
                    lent = True
                values[index] = max(0, value - self._units(ask.key))
            if slot_ask is not None and result.slots_granted > 1:
                self._lend(slot_ask, result.slots_granted, now)
                lent = True
            if lent:
                self._start_returner()
        if slot is not None and member is not None:
            self._aliases[slot.member] = member
        self._prefetch(counters, slot)
        return ReserveResult(
            None, values, 0, [check.amount for check in counters], 0 if slot is None else 1
        )

    def _prefetch(self, counters: Sequence[CounterCheck], slot: SlotCheck | None) -> None:
        """Top up blocks running low in the background, so requests seldom wait for the store."""
        low = []  # (check, allowance) below two blocks; topped up together once one is
        running_low = False  # below one block
        for check in counters:
            allowance = self._allowances.get(check.key)
            if allowance is None or not allowance.block or check.key in self._asking:
                continue
            if allowance.units < 2 * allowance.block:
                low.append((check, allowance))
                running_low = running_low or allowance.units < allowance.block
        checks = [
            replace(
                check, amount=0, extra=2 * allowance.block - allowance.units, cap=check.limit // 2
            )
            for check, allowance in (low if running_low else ())
        ]
        slot_check = None
        if (
            slot is not None
            and slot.key not in self._asking
            and _block(slot.limit, 1, SLOT_BLOCK) > 1
            and len(self._free_slots.get(slot.key, ())) < SLOT_BLOCK // 2
        ):
            slot_check = replace(
                slot, member=slot.member + "~", extra=SLOT_BLOCK - 1, cap=slot.limit // 2
            )
        if not checks and slot_check is None:
            return
        keys = [check.key for check in checks] + ([slot_check.key] if slot_check else [])
        self._asking.update(keys)  # now, not when the task starts: one top-up at a time
        task = asyncio.ensure_future(self._top_up(checks, slot_check, keys))
        self._topping_up.add(task)
        task.add_done_callback(self._topping_up.discard)

    async def _top_up(
        self, checks: list[CounterCheck], slot: SlotCheck | None, keys: list[str]
    ) -> None:
        try:
            result = await self.store.reserve(checks, slot)
        except Exception:
            log.warning("could not top up a limit block", exc_info=True)
            return
        finally:
            self._asking.difference_update(keys)
        if result.refused is not None:
            return
        now = self._clock()
        for check, value, grant in zip(checks, result.values, result.granted, strict=True):
            allowance = self._allowances.get(check.key)
            if allowance is None:
                allowance = self._allowances[check.key] = _Allowance(used_at=now)
            allowance.units += grant
            if not grant:  # declined: past half the limit, no more top-ups for it
                allowance.block = 0
            allowance.seen = value
        if slot is not None and result.slots_granted:
            self._lend(slot, result.slots_granted, now, primary_free=True)
        self._start_returner()

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        now = self._clock()
        remote: list[tuple[str, int]] = []
        for key, delta in deltas:
            allowance = self._allowances.get(key)
            if allowance is not None:
                allowance.used_at = now
                if delta > 0:  # used more than reserved: from the block first
                    take = min(allowance.units, delta)
                    allowance.units -= take
                    delta -= take
                else:  # refund into the block, keeping at most two blocks
                    keep = min(-delta, max(0, 2 * allowance.block - allowance.units))
                    allowance.units += keep
                    delta += keep
                allowance.seen += delta  # what the store will count once this lands
            if delta:
                remote.append((key, delta))
        freed: list[str] = []
        for member in members:
            member = self._aliases.pop(member, member)
            if slot_key is not None and member in self._ours:
                lease_end = self._ours[member]
                self._free_slots.setdefault(slot_key, []).append(_FreeSlot(member, lease_end, now))
            else:
                freed.append(member)
        if remote or freed:
            await self.store.adjust(remote, slot_key, freed)

    def settles_locally(self, keys: Sequence[str], member: str | None) -> bool:
        """Whether settling these counters and this slot will most likely need no store call."""
        for key in keys:
            allowance = self._allowances.get(key)
            if allowance is None or not allowance.block:
                return False
        return member is None or self._aliases.get(member, member) in self._ours

    async def seed(self, key: str, value: int, ttl: int) -> None:
        await self.store.seed(key, value, ttl)

    async def give_back(self, *, everything: bool = False) -> None:
        """Return blocks and free slots unused for ``idle`` seconds (all, with ``everything``)."""
        now = self._clock()
        deltas: list[tuple[str, int]] = []
        for key, allowance in list(self._allowances.items()):
            if everything or now - allowance.used_at >= self._idle:
                del self._allowances[key]
                if allowance.units:
                    deltas.append((key, -allowance.units))
        slots = self._stale
        self._stale = {}
        for slot_key, free in list(self._free_slots.items()):
            keep = [s for s in free if not everything and now - s.freed_at < self._idle]
            if len(keep) < len(free):
                kept = {id(s) for s in keep}
                gone = [s.member for s in free if id(s) not in kept]
                slots.setdefault(slot_key, []).extend(gone)
                for member in gone:
                    self._ours.pop(member, None)
            if keep:
                self._free_slots[slot_key] = keep
            else:
                del self._free_slots[slot_key]
        if not (deltas or slots):
            return
        try:
            if not slots:
                await self.store.adjust(deltas, None, ())
            for index, (slot_key, members) in enumerate(slots.items()):
                await self.store.adjust(deltas if index == 0 else (), slot_key, members)
        except Exception:  # what was not returned stays counted until its window or lease ends
            log.warning("could not give back unused limit blocks", exc_info=True)

    async def close(self) -> None:
        if self._returner is not None:
            self._returner.cancel()
            self._returner = None
        if self._topping_up:  # let top-ups land, so that what they took is given back below
            await asyncio.gather(*self._topping_up, return_exceptions=True)
        await self.give_back(everything=True)
        await self.store.close()

    def _take(self, check: CounterCheck, now: float) -> int:
        """Take what ``check`` needs from this replica's block of its counter (maybe nothing)."""
        allowance = self._allowances.get(check.key)
        if allowance is None:
            return 0
        take = min(allowance.units, check.amount)
        allowance.units -= take
        allowance.used_at = now
        return take

    def _ask(self, check: CounterCheck, take: int) -> CounterCheck:
        """What the store is asked for: the rest of the amount, and a block when it is far off."""
        extra = 0
        if check.key not in self._asking:  # one block on its way per counter, not one per request
            block = _block(check.limit, check.amount, BLOCK_REQUESTS * check.amount)
            extra = max(0, block - self._units(check.key))
        return replace(check, amount=check.amount - take, extra=extra, cap=check.limit // 2)

    def _units(self, key: str) -> int:
        allowance = self._allowances.get(key)
        return 0 if allowance is None else allowance.units

    def _used(self, key: str) -> int:
        """What this replica knows is used of a counter: the store's count minus its block."""
        allowance = self._allowances.get(key)
        return 0 if allowance is None else max(0, allowance.seen - allowance.units)

    def _free_member(self, slot: SlotCheck) -> str | None:
        """A free slot of ours with most of its lease left, or None; stale ones are dropped."""
        free = self._free_slots.get(slot.key)
        while free:
            candidate = free.pop()
            if candidate.lease_end - slot.now >= REUSE_SHARE * (slot.expires_at - slot.now):
                return candidate.member
            self._ours.pop(candidate.member, None)
            self._stale.setdefault(slot.key, []).append(candidate.member)
        return None

    def _lend(
        self, slot: SlotCheck, granted: int, now: float, *, primary_free: bool = False
    ) -> None:
        """Slots taken in a block are all ours: the request's own (free too when prefetched)
        and the rest, free."""
        self._ours[slot.member] = slot.expires_at
        free = self._free_slots.setdefault(slot.key, [])
        if primary_free:
            free.append(_FreeSlot(slot.member, slot.expires_at, now))
        for index in range(1, granted):
            member = extra_slot_member(slot.member, index)
            self._ours[member] = slot.expires_at
            free.append(_FreeSlot(member, slot.expires_at, now))

    def _undo(
        self,
        counters: Sequence[CounterCheck],
        taken: Sequence[int],
        slot: SlotCheck | None,
        member: str | None,
    ) -> None:
        """A refused or failed admission puts back what it took locally."""
        for check, take in zip(counters, taken, strict=True):
            allowance = self._allowances.get(check.key)
            if allowance is not None:
                allowance.units += take
        if slot is not None and member is not None:
            lease_end = self._ours.get(member, slot.expires_at)
            self._free_slots.setdefault(slot.key, []).append(
                _FreeSlot(member, lease_end, self._clock())
            )

    def _start_returner(self) -> None:
        if self._returner is None or self._returner.done():
            self._returner = asyncio.create_task(self._return_loop(), name="limits-give-back")

    async def _return_loop(self) -> None:
        while self._allowances or self._free_slots or self._stale:
            await asyncio.sleep(self._idle)
            await self.give_back()


def _block(limit: int, amount: int, most: int) -> int:
    """A block for requests of ``amount``: none unless the limit covers ``MIN_REQUESTS`` of them,
    then at most 1/``BLOCK_SHARE`` of the limit and at most ``most``."""
    if amount <= 0 or limit < MIN_REQUESTS * amount:
        return 0
    return min(limit // BLOCK_SHARE, most)
