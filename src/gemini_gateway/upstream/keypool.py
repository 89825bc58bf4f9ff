"""The upstream key pool: which Gemini API key serves the next request.

Selection is round-robin over the keys that are neither cooling down nor disabled: O(1) while most
keys are healthy, O(keys) only when most of them are cooling. A 429 cools a key down (until
Google's ``retryDelay``, until midnight Pacific for a per-day quota, else 60 s); an invalid or
forbidden key is disabled until an operator enables it again.

Where that state lives is ``KeyState``'s business: ``MemoryKeyState`` for one process, a Redis one
(in ``store/``) for replicas that share keys. The pool keeps a local copy and refreshes it at most
every ``refresh_interval`` seconds (1 s by default), so ``acquire`` touches the network only at that
refresh. The trade-off: a cool-down set by another replica is seen here up to a second late, which
costs at most a few extra 429s that failover absorbs; our own reports apply to the local copy at
once. Success and failure counters are counted locally and flushed at the same refresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from gemini_gateway.errors import RateLimited, UpstreamUnavailable

log = logging.getLogger("gemini_gateway.upstream")

DEFAULT_COOL_DOWN = 60.0  # seconds, when a 429 carries no RetryInfo
QUOTA_RESET_ZONE = "America/Los_Angeles"  # Gemini's per-day quotas reset at midnight Pacific


class UpstreamKey:
    """A Gemini API key that shows only its id; the secret comes out through ``reveal()`` alone."""

    __slots__ = ("id", "_secret")

    def __init__(self, secret: str) -> None:
        secret = secret.strip()
        if not secret:
            raise ValueError("an upstream key cannot be empty")
        self._secret = secret
        self.id = key_id(secret)

    def reveal(self) -> str:
        return self._secret

    def __repr__(self) -> str:
        return f"UpstreamKey({self.id})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UpstreamKey) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def key_id(secret: str) -> str:
    """``k-`` + the first 8 hex digits of the key's sha256: safe to log and to show."""
    return "k-" + hashlib.sha256(secret.strip().encode()).hexdigest()[:8]


@dataclass(slots=True)
class KeyStatus:
    """One key's shared state. Times are unix seconds so replicas agree on them."""

    cooling_until: float = 0.0
    disabled: bool = False
    reason: str | None = None  # why it is cooling down or disabled
    last_error: str | None = None
    successes: int = 0
    failures: int = 0

    def usable(self, now: float) -> bool:
        return not self.disabled and self.cooling_until <= now


class KeyState(Protocol):
    """Where cool-downs, disabled flags and counters live (in-process, or Redis for replicas)."""

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        """Statuses of the given keys; a key never reported may be missing (it is healthy)."""
        ...

    async def cool_down(self, key_id: str, until: float, reason: str) -> None: ...

    async def disable(self, key_id: str, reason: str) -> None: ...

    async def enable(self, key_id: str) -> None:
        """Clear both the disabled flag and any cool-down."""
        ...

    async def record(
        self, key_id: str, *, successes: int = 0, failures: int = 0, error: str | None = None
    ) -> None:
        """Add to the counters; ``error`` (when given) becomes the key's last error."""
        ...


class MemoryKeyState:
    """The in-process ``KeyState``: a dict, for a single gateway process."""

    def __init__(self) -> None:
        self._status: dict[str, KeyStatus] = {}

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        # Copies: the pool edits its local view, which must not double-count into ours.
        return {i: dataclasses.replace(s) for i in ids if (s := self._status.get(i)) is not None}

    async def cool_down(self, key_id: str, until: float, reason: str) -> None:
        status = self._status.setdefault(key_id, KeyStatus())
        if until > status.cooling_until:
            status.cooling_until = until
            status.reason = reason

    async def disable(self, key_id: str, reason: str) -> None:
        status = self._status.setdefault(key_id, KeyStatus())
        status.disabled = True
        status.reason = reason

    async def enable(self, key_id: str) -> None:
        status = self._status.setdefault(key_id, KeyStatus())
        status.disabled = False
        status.cooling_until = 0.0
        status.reason = None

    async def record(
        self, key_id: str, *, successes: int = 0, failures: int = 0, error: str | None = None
    ) -> None:
        status = self._status.setdefault(key_id, KeyStatus())
        status.successes += successes
        status.failures += failures
        if error is not None:
            status.last_error = error


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """One row of ``key list`` and /readyz."""

    id: str
    state: str  # "healthy", "cooling" or "disabled"
    cooling_until: float | None
    reason: str | None
    last_error: str | None
    successes: int
    failures: int

    @property
    def usable(self) -> bool:
        return self.state == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def next_quota_reset(now: float) -> float:
    """The next midnight in Pacific time, when Gemini's per-day quotas reset."""
    local = datetime.fromtimestamp(now, ZoneInfo(QUOTA_RESET_ZONE))
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


class KeyPool:
    """Hands out healthy keys in turn and takes reports of how each request went."""

    def __init__(
        self,
        keys: Iterable[str],
        state: KeyState | None = None,
        *,
        refresh_interval: float = 1.0,
    ) -> None:
        self._state: KeyState = state if state is not None else MemoryKeyState()
        self._keys: dict[str, UpstreamKey] = {}
        for secret in keys:
            key = UpstreamKey(secret)
            self._keys.setdefault(key.id, key)
        self._order: list[UpstreamKey] = list(self._keys.values())
        self._next = 0
        self._status: dict[str, KeyStatus] = {}  # local view of the shared state
        # not yet flushed to the state: key id -> [successes, failures, last error]
        self._pending: dict[str, list[Any]] = {}
        self.refresh_interval = refresh_interval
        self._refresh_due = 0.0
        self._refreshing = False

    def __len__(self) -> int:
        return len(self._order)

    @property
    def key_ids(self) -> list[str]:
        return [k.id for k in self._order]

    def get(self, key_id: str) -> UpstreamKey | None:
        return self._keys.get(key_id)

    # -- selection -----------------------------------------------------------------------------

    async def acquire(
        self, exclude: Collection[str] = (), pinned: str | None = None
    ) -> UpstreamKey:
        """The next usable key. Keys in ``exclude`` are used only when no other key is usable.

        Raises ``RateLimited`` (retry_after = soonest cool-down end) when every enabled key is
        cooling down, ``UpstreamUnavailable`` when no key is enabled. ``pinned`` allows that key
        only (a file uploaded with one key is visible to that key alone).
        """
        now = time.time()
        if now >= self._refresh_due and not self._refreshing:
            await self.refresh()
            now = time.time()
        if pinned is not None:
            return self._acquire_pinned(pinned, now)
        order = self._order
        count = len(order)
        status = self._status
        fallback: UpstreamKey | None = None
        for _ in range(count):
            i = self._next % count
            self._next = i + 1
            key = order[i]
            st = status.get(key.id)
            if st is not None and not st.usable(now):
                continue
            if key.id in exclude:
                fallback = fallback or key
                continue
            return key
        if fallback is not None:
            return fallback
        raise self._exhausted(now)

    def _acquire_pinned(self, pinned: str, now: float) -> UpstreamKey:
        key = self._keys.get(pinned)
        if key is None:
            raise UpstreamUnavailable(f"Upstream key {pinned} is no longer configured.")
        st = self._status.get(pinned)
        if st is not None and st.disabled:
            raise UpstreamUnavailable(f"Upstream key {pinned} is disabled.")
        if st is not None and st.cooling_until > now:
            raise RateLimited(
                f"Upstream key {pinned} is rate-limited.", retry_after=st.cooling_until - now
            )
        return key

    def _exhausted(self, now: float) -> RateLimited | UpstreamUnavailable:
        retry_after = self.retry_after(now)
        if retry_after is not None:
            return RateLimited("All upstream keys are rate-limited.", retry_after=retry_after)
        return UpstreamUnavailable("No enabled upstream key.")

    def retry_after(self, now: float | None = None) -> float | None:
        """Seconds until the soonest cool-down of an enabled key ends; None if none is cooling."""
        now = time.time() if now is None else now
        ends = [
            st.cooling_until
            for kid in self._keys
            if (st := self._status.get(kid)) is not None
            and not st.disabled
            and st.cooling_until > now
        ]
        return min(ends) - now if ends else None

    # -- reports -------------------------------------------------------------------------------

    def report_success(self, key_id: str) -> None:
        pending = self._pending.get(key_id)
        if pending is None:
            self._pending[key_id] = [1, 0, None]
        else:
            pending[0] += 1

    def report_failure(self, key_id: str, error: str) -> None:
        """A failure that is not the key's fault (5xx, timeout): counted, no cool-down."""
        self._count(key_id, 0, 1, error)
        self._local(key_id).last_error = error

    def _count(self, key_id: str, successes: int, failures: int, error: str | None) -> None:
        pending = self._pending.get(key_id)
        if pending is None:
            self._pending[key_id] = [successes, failures, error]
            return
        pending[0] += successes
        pending[1] += failures
        if error is not None:
            pending[2] = error

    async def report_rate_limited(
        self,
        key_id: str,
        *,
        retry_delay: float | None = None,
        per_day: bool = False,
        error: str = "RESOURCE_EXHAUSTED",
    ) -> float:
        """Cool the key down; returns the unix time the cool-down ends."""
        now = time.time()
        if per_day:
            until, why = next_quota_reset(now), "per-day quota exhausted"
        elif retry_delay is not None and retry_delay > 0:
            until, why = now + retry_delay, f"rate-limited, retry in {retry_delay:g}s"
        else:
            until, why = now + DEFAULT_COOL_DOWN, "rate-limited"
        status = self._local(key_id)
        if until > status.cooling_until:
            status.cooling_until = until
            status.reason = why
        self.report_failure(key_id, error)
        log.info("upstream key %s cooling down for %.0f s: %s", key_id, until - now, why)
        await self._write(self._state.cool_down(key_id, until, why))
        return until

    async def report_invalid(self, key_id: str, reason: str) -> None:
        """Disable a key Google refuses (invalid, expired, forbidden) until enabled again."""
        status = self._local(key_id)
        status.disabled = True
        status.reason = reason
        self.report_failure(key_id, reason)
        log.warning("upstream key %s disabled: %s", key_id, reason)
        await self._write(self._state.disable(key_id, reason))

    async def _write(self, change: Awaitable[None]) -> None:
        """Apply a change to the shared state; on failure the local view still has it."""
        try:
            await change
        except Exception as exc:  # the state backend's own errors: see refresh()
            log.warning("key state unavailable, change kept locally: %s: %s",
                        type(exc).__name__, exc)

    async def enable(self, key_id: str) -> None:
        status = self._local(key_id)
        status.disabled = False
        status.cooling_until = 0.0
        status.reason = None
        log.info("upstream key %s enabled", key_id)
        await self._state.enable(key_id)

    async def disable(self, key_id: str, reason: str) -> None:
        """An operator's disable: skipped by every process sharing the state until enabled."""
        status = self._local(key_id)
        status.disabled = True
        status.reason = reason
        log.info("upstream key %s disabled: %s", key_id, reason)
        await self._state.disable(key_id, reason)

    def _local(self, key_id: str) -> KeyStatus:
        status = self._status.get(key_id)
        if status is None:
            status = self._status[key_id] = KeyStatus()
        return status

    # -- keys managed at run time ----------------------------------------------------------------

    def add_key(self, secret: str) -> UpstreamKey:
        key = UpstreamKey(secret)
        if key.id not in self._keys:
            self._keys[key.id] = key
            self._order = [*self._order, key]  # a new list: a running acquire keeps its own
        return self._keys[key.id]

    def remove_key(self, key_id: str) -> bool:
        if self._keys.pop(key_id, None) is None:
            return False
        self._order = [k for k in self._order if k.id != key_id]
        self._status.pop(key_id, None)
        self._pending.pop(key_id, None)
        return True

    # -- shared state ----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Flush local counters to the state and reload every key's status from it.

        A failing state (Redis down) must not fail requests: the pool keeps its local view and
        the unflushed counters, and tries again after the next interval.
        """
        self._refreshing = True
        pending, self._pending = self._pending, {}
        try:
            while pending:
                kid, (successes, failures, error) = next(iter(pending.items()))
                await self._state.record(kid, successes=successes, failures=failures, error=error)
                del pending[kid]
            self._status = await self._state.get(list(self._keys))
        except Exception as exc:  # the state backend's own errors: requests go on without it
            log.warning("key state unavailable, using the local view: %s: %s",
                        type(exc).__name__, exc)
            for kid, (successes, failures, error) in pending.items():
                self._count(kid, successes, failures, error)
        finally:
            self._refreshing = False
            self._refresh_due = time.time() + self.refresh_interval

    def snapshot(self) -> list[KeySnapshot]:
        """Every key's state as this process sees it (``await refresh()`` first for news)."""
        now = time.time()
        rows = []
        for key in self._order:
            st = self._status.get(key.id) or KeyStatus()
            successes, failures, error = self._pending.get(key.id) or (0, 0, None)
            if st.disabled:
                state = "disabled"
            elif st.cooling_until > now:
                state = "cooling"
            else:
                state = "healthy"
            rows.append(
                KeySnapshot(
                    id=key.id,
                    state=state,
                    cooling_until=st.cooling_until if state == "cooling" else None,
                    reason=st.reason if state != "healthy" else None,
                    last_error=error if error is not None else st.last_error,
                    successes=st.successes + successes,
                    failures=st.failures + failures,
                )
            )
        return rows
