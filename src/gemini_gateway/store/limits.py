"""Per-license limits: requests and tokens per minute, a token quota, concurrent requests.

The rules live here once; a backend only applies them atomically. For each admission the
``Limiter`` turns a license's limits into a list of ``CounterCheck``s (one key, a limit, an
amount, a time to live) plus an optional ``SlotCheck`` (concurrency), and the backend does
"check all, then apply all, or apply none" in one step: ``limits_memory.MemoryCounters`` for one
process, ``limits_redis.RedisCounters`` (one Lua script, one round trip) for replicas sharing Redis,
behind ``limits_lease.LeasedCounters`` so that most requests take from a block held locally.

Windows are fixed and aligned to UTC: the minute for rpm/tpm, the calendar day or month for a
windowed quota. Tokens are reserved before the upstream call (an estimate) and replaced by the
real usage in ``Admission.settle``; docs/limits.md explains the overspend bound that gives.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from gemini_gateway.config import Settings
from gemini_gateway.errors import QuotaExceeded, RateLimited

log = logging.getLogger("gemini_gateway.limits")

QuotaPeriod = Literal["total", "day", "month"]
# The ledger's ``tokens_used(license_id, since)``: tokens a license used since then (None: ever).
TokensUsed = Callable[[str, datetime | None], Awaitable[int]]

# A concurrency slot is a lease: if a replica dies holding it, it frees itself after this long.
DEFAULT_SLOT_LEASE = 900.0
# Counters outlive their window a little so a late settle still lands in the window it reserved.
_WINDOW_GRACE = 120


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """Add ``amount`` to ``key`` only if the result stays within ``limit``; expire after ``ttl``
    seconds (0: never).

    ``extra`` asks for that much more on top (a block for ``limits_lease``), granted only if the
    counter then stays within ``cap``; the check against ``limit`` is about ``amount`` alone.
    """

    key: str
    limit: int
    amount: int
    ttl: int
    extra: int = 0
    cap: int = 0


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """Hold one of ``limit`` concurrency slots as ``member`` until ``expires_at`` (a lease).

    ``extra`` asks for that many more slots (``extra_slot_member(member, 1..extra)``), granted
    only if the slots held then stay within ``cap``.
    """

    key: str
    limit: int
    member: str
    now: float
    expires_at: float
    extra: int = 0
    cap: int = 0


def extra_slot_member(member: str, index: int) -> str:
    """The name of the ``index``-th extra slot taken along with ``member`` (1-based)."""
    return f"{member}+{index}"


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """``refused``: index of the first check that failed (``len(counters)`` = the slot), or None.
    ``values``: each counter's value (after the increment when admitted); ``slots``: slots held.
    ``granted``: what was added to each counter (its amount, plus its extra when that fitted);
    ``slots_granted``: slots taken (1, or 1 + the slot's extra). Both empty/0 when refused."""

    refused: int | None
    values: list[int]
    slots: int
    granted: list[int] = field(default_factory=list)
    slots_granted: int = 0


class CounterBackend(Protocol):
    """The atomic operations a limiter needs; nothing about licenses or windows."""

    remote: bool  # each call is a network round trip (worth overlapping with other I/O)

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult: ...

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        """Add each delta to its counter if it still exists; free the slots ``members``."""
        ...

    async def seed(self, key: str, value: int, ttl: int) -> None:
        """Set a counter that does not exist yet (a quota, from the ledger); else leave it."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LicenseLimits:
    """The limits of one license; ``None`` (or 0) means that limit is off."""

    license_id: str
    rpm: int | None = None
    tpm: int | None = None
    token_quota: int | None = None
    quota_period: QuotaPeriod = "total"
    max_concurrent: int | None = None

    @classmethod
    def of(cls, license: Any) -> LicenseLimits:
        """Read the limits off a ``store.licenses.License``; 0 and None both mean "off"."""
        period: QuotaPeriod = "total"
        if license.quota_period in ("day", "month"):
            period = license.quota_period
        return cls(
            license_id=str(license.id),
            rpm=license.rpm or None,
            tpm=license.tpm or None,
            token_quota=license.quota or None,
            quota_period=period,
            max_concurrent=license.concurrency or None,
        )

    @property
    def unlimited(self) -> bool:
        return not (self.rpm or self.tpm or self.token_quota or self.max_concurrent)


def format_reset(seconds: float) -> str:
    """A duration as OpenAI's ``x-ratelimit-reset-*`` headers write it: "12ms", "1s", "6m0s"."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True, slots=True)
class _QuotaWindow:
    suffix: str  # the end of the counter's key
    start: datetime | None  # None: a total quota, which never resets
    end: float | None


def _quota_window(now: float, period: QuotaPeriod) -> _QuotaWindow:
    """The quota window containing ``now``: a UTC calendar day or month, or all time."""
    cached = _window_cache.get(period)
    if cached is not None and cached[0] <= now < cached[1]:
        return cached[2]
    window = _compute_quota_window(now, period)
    if window.start is not None and window.end is not None:  # cached until the window ends
        _window_cache[period] = (window.start.timestamp(), window.end, window)
    return window


_window_cache: dict[str, tuple[float, float, _QuotaWindow]] = {}


def _compute_quota_window(now: float, period: QuotaPeriod) -> _QuotaWindow:
    if period == "total":
        return _QuotaWindow("quota", None, None)
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        end = (day + timedelta(days=1)).timestamp()
        return _QuotaWindow(day.strftime("quota:d%Y%m%d"), day, end)
    month = day.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return _QuotaWindow(month.strftime("quota:m%Y%m"), month, following.timestamp())


@dataclass
class Admission:
    """An admitted request: its headers, and the reservation still to settle or release."""

    headers: dict[str, str]
    _backend: CounterBackend | None = None
    _reserved: list[tuple[str, int]] = field(default_factory=list)
    _slot_key: str | None = None
    _member: str | None = None
    _done: bool = False

    @property
    def pending(self) -> bool:
        """Whether settling has anything to do (a license without limits has nothing)."""
        return self._backend is not None and not self._done

    @property
    def remote(self) -> bool:
        """Whether settling is likely a network round trip (Redis), not a few dict operations
        (then the caller overlaps it with its own I/O; a task is not worth it otherwise)."""
        backend = self._backend
        if backend is None or not backend.remote:
            return False
        settles_locally = getattr(backend, "settles_locally", None)  # limits_lease's blocks
        keys = [key for key, _ in self._reserved]
        return settles_locally is None or not settles_locally(keys, self._member)

    async def settle(self, actual_tokens: int) -> None:
        """Replace the token reservation by the real usage and free the concurrency slot (once)."""
        await self._finish([(key, max(0, actual_tokens) - held) for key, held in self._reserved])

    async def release(self) -> None:
        """Refund the token reservation and free the slot: for failures before upstream answered.
        The request still counts towards requests per minute."""
        await self._finish([(key, -held) for key, held in self._reserved])

    async def _finish(self, deltas: list[tuple[str, int]]) -> None:
        if self._done:
            return
        self._done = True
        deltas = [(key, delta) for key, delta in deltas if delta]
        if self._backend is None or not (deltas or self._member):
            return
        try:
            members = (self._member,) if self._member else ()
            await self._backend.adjust(deltas, self._slot_key, members)
        except Exception:  # the response is already out; losing one adjustment beats failing it
            log.warning("could not settle a limits reservation", exc_info=True)


class Limiter:
    """Admits requests against a license's limits, in the order rpm, tpm, quota, concurrency.

    ``tokens_used(license_id, since)`` (the ledger's) seeds a quota counter the backend does not
    have yet (a restart, a fresh Redis), once per counter and process, so quotas survive both.
    """

    def __init__(
        self,
        backend: CounterBackend,
        *,
        clock: Callable[[], float] = time.time,
        slot_lease: float = DEFAULT_SLOT_LEASE,
        tokens_used: TokensUsed | None = None,
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._slot_lease = slot_lease
        self._tokens_used = tokens_used
        self._seeded: set[str] = set()
        # Concurrency slot members: unique across replicas without a system call per request.
        self._member_prefix = secrets.token_hex(8)
        self._member_count = itertools.count()

    async def _seed_quota(self, key: str, window: _QuotaWindow, license_id: str) -> None:
        if self._tokens_used is None or key in self._seeded:
            return
        used = await self._tokens_used(license_id, window.start)
        await self.backend.seed(key, used, _quota_ttl(window, self._clock()))
        if len(self._seeded) > 100_000:  # mostly past windows: forget them, re-seeding is harmless
            self._seeded.clear()
        self._seeded.add(key)

    async def admit(self, license: Any, *, estimated_tokens: int) -> Admission:
        """Reserve what this request may use, or raise RateLimited/QuotaExceeded saying which."""
        limits = license if isinstance(license, LicenseLimits) else LicenseLimits.of(license)
        if limits.unlimited:
            return Admission(headers={})  # no limits: no round trip at all
        now = self._clock()
        tag = "lim:{" + limits.license_id + "}:"  # braces: one Redis Cluster slot per license
        minute_start = now // 60 * 60
        minute_reset = minute_start + 60 - now
        minute = int(minute_start // 60)
        estimate = max(0, estimated_tokens)

        counters: list[CounterCheck] = []
        kinds: list[str] = []
        if limits.rpm:
            counters.append(CounterCheck(f"{tag}rpm:{minute}", limits.rpm, 1, _WINDOW_GRACE))
            kinds.append("rpm")
        if limits.tpm:
            # A request larger than the whole minute's budget still gets into an empty minute.
            amount = min(estimate, limits.tpm)
            counters.append(CounterCheck(f"{tag}tpm:{minute}", limits.tpm, amount, _WINDOW_GRACE))
            kinds.append("tpm")
        quota_window = _quota_window(now, limits.quota_period)
        if limits.token_quota:
            key = tag + quota_window.suffix
            await self._seed_quota(key, quota_window, limits.license_id)
            ttl = _quota_ttl(quota_window, now)
            counters.append(CounterCheck(key, limits.token_quota, estimate, ttl))
            kinds.append("quota")
        slot = None
        if limits.max_concurrent:
            slot = SlotCheck(
                f"{tag}slots",
                limits.max_concurrent,
                f"{self._member_prefix}{next(self._member_count):x}",
                now,
                now + self._slot_lease,
            )

        result = await self.backend.reserve(counters, slot)
        values = dict(zip(kinds, result.values, strict=True))
        headers = _headers(limits, values, minute_reset)
        if result.refused is not None:
            raise _refusal(
                limits, counters, kinds, result, minute_reset, quota_window, now, headers
            )
        # Token counters, even those reserved at 0: settle charges the real usage to each.
        reserved = [
            (c.key, c.amount) for c, kind in zip(counters, kinds, strict=True) if kind != "rpm"
        ]
        return Admission(
            headers=headers,
            _backend=self.backend,
            _reserved=reserved,
            _slot_key=slot.key if slot else None,
            _member=slot.member if slot else None,
        )

    async def close(self) -> None:
        await self.backend.close()


def _headers(limits: LicenseLimits, values: dict[str, int], reset: float) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers, for the per-minute limits this license has."""
    headers: dict[str, str] = {}
    text = format_reset(reset)
    if limits.rpm:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, limits.rpm - values["rpm"]))
        headers["x-ratelimit-reset-requests"] = text
    if limits.tpm:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, limits.tpm - values["tpm"]))
        headers["x-ratelimit-reset-tokens"] = text
    return headers


def _refusal(
    limits: LicenseLimits,
    counters: list[CounterCheck],
    kinds: list[str],
    result: ReserveResult,
    minute_reset: float,
    quota_window: _QuotaWindow,
    now: float,
    headers: dict[str, str],
) -> RateLimited:
    """The error for the first limit that refused, saying which limit and when to retry."""
    assert result.refused is not None
    if result.refused == len(counters):
        return RateLimited(
            f"Concurrency limit reached: at most {limits.max_concurrent} requests at once "
            "for this license.",
            retry_after=1.0,
            headers=headers,
        )
    kind = kinds[result.refused]
    used = result.values[result.refused]
    limit = counters[result.refused].limit
    if kind == "rpm":
        return RateLimited(
            f"Rate limit reached: {limit} requests per minute for this license.",
            retry_after=minute_reset,
            headers=headers,
        )
    if kind == "tpm":
        return RateLimited(
            f"Rate limit reached: {limit} tokens per minute for this license "
            f"(used {used}, this request may need {counters[result.refused].amount}).",
            retry_after=minute_reset,
            headers=headers,
        )
    period = {"total": "in total", "day": "per day", "month": "per month"}[limits.quota_period]
    return QuotaExceeded(
        f"Token quota exceeded: {limit} tokens {period} for this license "
        f"({max(0, limit - used)} left, this request may need {counters[result.refused].amount}).",
        retry_after=None if quota_window.end is None else quota_window.end - now,
        headers=headers,
    )


def _quota_ttl(window: _QuotaWindow, now: float) -> int:
    """A windowed quota counter lives a day past its window (late settles); a total one forever."""
    return 0 if window.end is None else int(window.end - now) + 86_400


def build_limiter(settings: Settings, *, tokens_used: TokensUsed | None = None) -> Limiter:
    """Redis-backed (shared by replicas) when ``redis_url`` is set, else in-process.

    Pass ``tokens_used=store.ledger.tokens_used`` so that quotas start from what the ledger has.
    """
    if settings.redis_url:
        from gemini_gateway.store.limits_lease import LeasedCounters
        from gemini_gateway.store.limits_redis import RedisCounters

        shared = RedisCounters.from_url(str(settings.redis_url))
        return Limiter(LeasedCounters(shared), tokens_used=tokens_used)
    from gemini_gateway.store.limits_memory import MemoryCounters

    return Limiter(MemoryCounters(), tokens_used=tokens_used)
