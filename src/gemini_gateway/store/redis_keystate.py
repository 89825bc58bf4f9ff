"""Upstream key state on Redis, so replicas share cool-downs and disabled flags.

One hash per upstream key id (never the key itself): ``cooling_until`` (unix seconds),
``disabled``, ``reason``, ``last_error``, ``successes``, ``failures``. ``get`` reads every key in
one pipelined round trip; the pool calls it at most once a second (see ``upstream/keypool.py``).
A cool-down only ever moves later, in a Lua script, so two replicas reporting the same key at
once keep the later end. The hashes never expire: a disabled key stays disabled until enabled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gemini_gateway.errors import GatewayError
from gemini_gateway.upstream.keypool import KeyStatus

# KEYS: the key's hash. ARGV: until, reason. Keeps the later of the two cool-down ends.
_COOL_DOWN = """
local current = tonumber(redis.call('HGET', KEYS[1], 'cooling_until') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'cooling_until', ARGV[1], 'reason', ARGV[2])
end
return 1
"""


class RedisKeyState:
    """``KeyState`` on Redis. ``prefix`` namespaces the hashes (tests use a random one)."""

    def __init__(self, client: Redis, *, prefix: str = "gg:") -> None:
        self._client = client
        self._prefix = prefix
        self._cool_down = client.register_script(_COOL_DOWN)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gg:") -> RedisKeyState:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        return cls(client, prefix=prefix)

    def _key(self, key_id: str) -> str:
        return f"{self._prefix}upstream_key:{key_id}"

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        async with _translated(), self._client.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(self._key(key_id))
            replies = await pipe.execute()
        return {
            key_id: _status(fields) for key_id, fields in zip(ids, replies, strict=True) if fields
        }

    async def cool_down(self, key_id: str, until: float, reason: str) -> None:
        async with _translated():
            await self._cool_down(keys=[self._key(key_id)], args=[repr(until), reason])

    async def disable(self, key_id: str, reason: str) -> None:
        async with _translated():
            await self._client.hset(self._key(key_id), mapping={"disabled": 1, "reason": reason})

    async def enable(self, key_id: str) -> None:
        async with _translated(), self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(key_id), mapping={"disabled": 0, "cooling_until": 0})
            pipe.hdel(self._key(key_id), "reason")
            await pipe.execute()

    async def record(
        self, key_id: str, *, successes: int = 0, failures: int = 0, error: str | None = None
    ) -> None:
        if not (successes or failures or error is not None):
            return
        name = self._key(key_id)
        async with _translated(), self._client.pipeline(transaction=True) as pipe:
            if successes:
                pipe.hincrby(name, "successes", successes)
            if failures:
                pipe.hincrby(name, "failures", failures)
            if error is not None:
                pipe.hset(name, "last_error", error)
            await pipe.execute()

    async def close(self) -> None:
        await self._client.aclose()


def _status(fields: dict[bytes, bytes]) -> KeyStatus:
    """A hash as Redis returns it (bytes) to a ``KeyStatus``."""
    text = {k.decode(): v.decode() for k, v in fields.items()}
    return KeyStatus(
        cooling_until=float(text.get("cooling_until") or 0),
        disabled=text.get("disabled") == "1",
        reason=text.get("reason"),
        last_error=text.get("last_error"),
        successes=int(text.get("successes") or 0),
        failures=int(text.get("failures") or 0),
    )


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Redis errors become a GatewayError here, so nothing above sees a Redis exception."""
    try:
        yield
    except RedisError as exc:
        raise GatewayError(
            "The key state store (Redis) is unreachable.", code="key_state_unavailable"
        ) from exc
