"""Throwaway PostgreSQL and Redis databases for the bench's gateways on PostgreSQL or Redis.

The PostgreSQL database is created fresh and dropped (with any sessions left) afterwards. The
Redis database number is claimed the way the test suite's fixtures claim theirs (``SET NX`` of
their claim key), so a test session started meanwhile will not take and flush it, then flushed
before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import Iterator

import asyncpg
from redis.asyncio import Redis

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# The test fixtures' claim key (tests/fixtures/services.py): they skip a database that holds it.
REDIS_CLAIM_KEY = "gg_test:claimed_by"
REDIS_CLAIM_SECONDS = 3600


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _claim_redis(number: int, token: str) -> bool:
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
    try:
        if not await client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS):
            return False
        await client.flushdb()
        await client.set(REDIS_CLAIM_KEY, token, ex=REDIS_CLAIM_SECONDS)
        return True
    finally:
        await client.aclose()


async def _flush_redis(number: int) -> None:
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database for the block; dropped (sessions and all) afterwards."""
    name = f"gg_bench_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_database(number: int) -> Iterator[str]:
    """The URL of Redis database ``number``, claimed and flushed for the block, flushed after."""
    if not asyncio.run(_claim_redis(number, f"bench-{secrets.token_hex(6)}")):
        sys.exit(f"Redis database {number} is claimed by a test session: pass another --redis-db")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        asyncio.run(_flush_redis(number))
