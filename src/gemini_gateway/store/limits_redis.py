"""Limit counters on Redis, shared by every replica: one Lua script per admit, one per settle.

A script runs atomically on the server, so "check every counter, then apply all or none" holds
across replicas without locks or retries. Times (windows, slot leases) come from the limiter, so
the scripts hold no rules of their own; they mirror ``limits_memory.MemoryCounters`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gemini_gateway.errors import GatewayError
from gemini_gateway.store.limits import CounterCheck, ReserveResult, SlotCheck
from gemini_gateway.store.resp import RespClient, Script
from gemini_gateway.store.resp import supports as resp_supports

# KEYS: n counters, then the slot set if any. ARGV: n, (limit, amount, ttl, extra, cap) per
# counter, then slot limit, member, now, lease end, key ttl, extra, cap.
# Returns {refused, slots held, slots granted, values..., granted...}.
_RESERVE = """
local n = tonumber(ARGV[1])
local values, grants = {}, {}
local refused = 0
for i = 1, n do
  local a = 2 + (i - 1) * 5
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  local amount = tonumber(ARGV[a + 1])
  values[i] = v
  grants[i] = amount
  if refused == 0 and v + amount > tonumber(ARGV[a]) then
    refused = i
  end
  local extra = tonumber(ARGV[a + 3])
  if extra > 0 and v + amount + extra <= tonumber(ARGV[a + 4]) then
    grants[i] = amount + extra
  end
end
local held, taken = 0, 0
local s = 2 + n * 5
local slot = KEYS[n + 1]
if slot then
  redis.call('ZREMRANGEBYSCORE', slot, '-inf', ARGV[s + 2])
  held = redis.call('ZCARD', slot)
  if refused == 0 and held >= tonumber(ARGV[s]) then
    refused = n + 1
  end
end
if refused == 0 then
  for i = 1, n do
    values[i] = redis.call('INCRBY', KEYS[i], grants[i])
    local ttl = tonumber(ARGV[2 + (i - 1) * 5 + 2])
    if ttl > 0 and redis.call('TTL', KEYS[i]) < 0 then
      redis.call('EXPIRE', KEYS[i], ttl)
    end
  end
  if slot then
    local lease, member = ARGV[s + 3], ARGV[s + 1]
    local extra = tonumber(ARGV[s + 5])
    redis.call('ZADD', slot, lease, member)
    taken = 1
    if extra > 0 and held + 1 + extra <= tonumber(ARGV[s + 6]) then
      for k = 1, extra do
        redis.call('ZADD', slot, lease, member .. '+' .. k)
      end
      taken = taken + extra
    end
    redis.call('EXPIRE', slot, ARGV[s + 4])
    held = held + taken
  end
end
local out = {refused, held, taken}
for i = 1, n do
  out[i + 3] = values[i]
  out[n + i + 3] = refused == 0 and grants[i] or 0
end
return out
"""

# KEYS: n counters, then the slot set if any. ARGV: n, a delta per counter, then the members.
_ADJUST = """
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], ARGV[i + 1]) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
if KEYS[n + 1] and #ARGV > n + 1 then
  redis.call('ZREM', KEYS[n + 1], unpack(ARGV, n + 2))
end
return 1
"""


class RedisCounters:
    """``CounterBackend`` on Redis. ``prefix`` namespaces every key (tests use a random one)."""

    remote = True

    def __init__(
        self, client: Redis, *, prefix: str = "gg:", fast: RespClient | None = None
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._fast = fast  # the two scripts on every request's path go through it when set
        self._reserve = client.register_script(_RESERVE)
        self._adjust = client.register_script(_ADJUST)
        self._reserve_script = Script(_RESERVE)
        self._adjust_script = Script(_ADJUST)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gg:") -> RedisCounters:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        return cls(client, prefix=prefix, fast=RespClient(url) if resp_supports(url) else None)

    async def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        if self._fast is not None:
            return await self._fast.evalsha(script, keys, args)
        registered = self._reserve if script is self._reserve_script else self._adjust
        return await registered(keys=keys, args=args)

    async def reserve(
        self, counters: Sequence[CounterCheck], slot: SlotCheck | None
    ) -> ReserveResult:
        keys = [self._prefix + c.key for c in counters]
        args: list[str | int | float] = [len(counters)]
        for c in counters:
            args += [c.limit, c.amount, c.ttl, c.extra, c.cap]
        if slot is not None:
            keys.append(self._prefix + slot.key)
            key_ttl = int(slot.expires_at - slot.now) + 60
            args += [slot.limit, slot.member, repr(slot.now), repr(slot.expires_at), key_ttl]
            args += [slot.extra, slot.cap]
        try:
            reply = await self._run(self._reserve_script, keys, args)
        except RedisError as exc:
            raise _unreachable() from exc
        refused = int(reply[0]) - 1  # the script counts from 1, 0 meaning "admitted"
        n = len(counters)
        return ReserveResult(
            refused=None if refused < 0 else refused,
            values=[int(v) for v in reply[3 : 3 + n]],
            slots=int(reply[1]),
            granted=[] if refused >= 0 else [int(v) for v in reply[3 + n : 3 + 2 * n]],
            slots_granted=int(reply[2]),
        )

    async def adjust(
        self, deltas: Sequence[tuple[str, int]], slot_key: str | None, members: Sequence[str]
    ) -> None:
        keys = [self._prefix + key for key, _ in deltas]
        args: list[str | int] = [len(deltas), *(delta for _, delta in deltas)]
        if slot_key is not None and members:
            keys.append(self._prefix + slot_key)
            args.extend(members)
        await self._run(self._adjust_script, keys, args)

    async def seed(self, key: str, value: int, ttl: int) -> None:
        try:
            await self._client.set(self._prefix + key, value, nx=True, ex=ttl or None)
        except RedisError as exc:
            raise _unreachable() from exc

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        await self._client.aclose()


def _unreachable() -> GatewayError:
    return GatewayError("The limits store (Redis) is unreachable.", code="limits_unavailable")
