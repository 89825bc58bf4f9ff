"""Round-trip floors for the limits and the ledger: one Redis script call, one PostgreSQL insert.

With limits on Redis and the ledger on PostgreSQL, a request waits for at least one Redis round
trip before it goes upstream (admission) and one PostgreSQL commit before its last byte (the
ledger row; the Redis settle overlaps it). This measures both round trips from Python on uvloop
with nothing else in the way, the least those two waits can cost on the machine, to set beside
what the gateway adds at concurrency 1 (``run.py --gateway-config baseline,limits-pg-redis``).

Run: ``python bench/roundtrips.py [--redis-url URL] [--postgres-url URL]`` (defaults: the local
servers the tests use). It writes one Redis key (deleted after) and uses a temporary table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from urllib.parse import urlsplit

import asyncpg
import uvloop

_SCRIPT = b"return redis.call('INCRBY', KEYS[1], ARGV[1])"
_KEY = b"gg:bench:roundtrips"


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


async def redis_round_trip_us(url: str, rounds: int) -> float:
    """Median wall time of one EVAL (a one-line script) on a raw RESP connection."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    reader, writer = await asyncio.open_connection(host, port)
    command = _command(b"EVAL", _SCRIPT, b"1", _KEY, b"1")
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            writer.write(command)
            await reader.readuntil(b"\r\n")
            times.append(time.perf_counter() - started)
        writer.write(_command(b"DEL", _KEY))
        await reader.readuntil(b"\r\n")
    finally:
        writer.close()
    return statistics.median(times) * 1e6


async def postgres_insert_us(url: str, rounds: int) -> float:
    """Median wall time of one single-row INSERT, committed with synchronous_commit=off."""
    conn = await asyncpg.connect(url, server_settings={"synchronous_commit": "off"})
    times = []
    try:
        await conn.execute("CREATE TEMP TABLE roundtrips (n int, label text, at timestamptz)")
        for n in range(rounds):
            started = time.perf_counter()
            await conn.execute("INSERT INTO roundtrips VALUES ($1, $2, now())", n, "bench")
            times.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return statistics.median(times) * 1e6


async def main(redis_url: str, postgres_url: str, rounds: int) -> None:
    redis = await redis_round_trip_us(redis_url, rounds)
    postgres = await postgres_insert_us(postgres_url, rounds)
    print(f"Redis EVAL round trip: {redis:.0f} µs p50 (median of {rounds})")
    print(f"PostgreSQL INSERT, synchronous_commit=off: {postgres:.0f} µs p50")
    print(f"Least added at concurrency 1 (admission + ledger commit): {redis + postgres:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    uvloop.run(main(args.redis_url, args.postgres_url, args.rounds))
