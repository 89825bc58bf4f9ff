"""The usage ledger: group commit, durability under kill -9, totals and pruning."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.store.database import Store
from gemini_gateway.store.ledger import LedgerEntry
from tests.fixtures.store import store_settings

NOW = datetime.now(UTC).replace(microsecond=0)
DAY1 = (NOW - timedelta(days=2)).replace(hour=10)
DAY2 = (NOW - timedelta(days=1)).replace(hour=23, minute=59)


def _entry(request_id: str, **fields: object) -> LedgerEntry:
    return LedgerEntry(request_id=request_id, model_requested="gemini-2.5-flash", **fields)  # type: ignore[arg-type]


async def _count(store: Store) -> int:
    async with store.database.read() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM ledger")) or 0)


async def test_record_writes_every_field(any_store: Store) -> None:
    entry = LedgerEntry(
        request_id="req-1", model_requested="gemini-2.5-pro-thinking", model_sent="gemini-2.5-pro",
        license_id="lic_1", license_name="alice", key_id="k-0123abcd", status=429,
        error_code="rate_limit_exceeded", prompt_tokens=11, completion_tokens=22,
        reasoning_tokens=5, cached_tokens=3, latency_ms=123.45, ttft_ms=67.5, stream=True,
        created_at=DAY1,
    )  # fmt: skip
    await any_store.ledger.record(entry)
    async with any_store.database.read() as conn:
        row = (await conn.execute(sa.select(sa.table("ledger", *(
            sa.column(n) for n in ("request_id", "model_sent", "license_name", "key_id",
                                   "status", "error_code", "reasoning_tokens", "latency_ms",
                                   "ttft_ms", "stream")))))).one()  # fmt: skip
    assert tuple(row) == (
        "req-1", "gemini-2.5-pro", "alice", "k-0123abcd", 429, "rate_limit_exceeded", 5,
        123.45, 67.5, True,
    )  # fmt: skip


async def test_concurrent_records_share_commits(sqlite_store: Store) -> None:
    writer = sqlite_store.ledger._batch_writer  # SQLite files: one call per batch on its thread
    assert writer is not None
    batches: list[int] = []
    write = writer.write

    async def counted(rows: list[dict[str, object]]) -> None:
        batches.append(len(rows))
        await write(rows)

    write_now = writer.try_write_now

    def counted_now(rows: list[dict[str, object]]) -> bool:
        done = write_now(rows)
        if done:
            batches.append(len(rows))
        return done

    writer.write = counted  # type: ignore[method-assign]
    writer.try_write_now = counted_now  # type: ignore[method-assign]
    await asyncio.gather(*(sqlite_store.ledger.record(_entry(f"r{i}")) for i in range(300)))
    assert await _count(sqlite_store) == 300
    assert sum(batches) == 300
    # One commit per batch, not one per request: the first row may go straight in, and the
    # rest of the burst is queued behind it.
    assert len(batches) <= 4


async def test_a_lone_record_commits_without_the_writer_task(sqlite_store: Store) -> None:
    ledger = sqlite_store.ledger
    await ledger.record(_entry("alone"))
    assert ledger._writer is None  # committed on the spot; no task was woken
    assert await _count(sqlite_store) == 1


async def test_a_locked_database_sends_the_row_to_the_writer_thread(sqlite_store: Store) -> None:
    """The direct commit never waits for SQLite's lock, so the event loop is never stuck."""
    path = sqlite_store.database.engine.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        started = time.perf_counter()
        task = asyncio.create_task(sqlite_store.ledger.record(_entry("waits")))
        await asyncio.sleep(0.2)
        assert time.perf_counter() - started < 0.5  # the loop kept running
        assert not task.done()  # the thread waits for the lock, the caller for the thread
    finally:
        holder.execute("COMMIT")
        holder.close()
    await asyncio.wait_for(task, 10)
    assert await _count(sqlite_store) == 1


async def test_recording_costs_well_under_a_millisecond_of_cpu(sqlite_store: Store) -> None:
    await sqlite_store.ledger.record(_entry("warm-up"))
    cpu = time.process_time()
    for wave in range(20):
        await asyncio.gather(
            *(sqlite_store.ledger.record(_entry(f"{wave}-{i}")) for i in range(100))
        )
    per_entry_ms = (time.process_time() - cpu) * 1000 / 2000
    assert per_entry_ms < 0.5


async def test_a_cancelled_caller_still_gets_its_row(sqlite_store: Store) -> None:
    task = asyncio.create_task(sqlite_store.ledger.record(_entry("cancelled")))
    await asyncio.sleep(0)
    task.cancel()
    await sqlite_store.ledger.record(_entry("after"))
    assert await _count(sqlite_store) == 2


async def test_close_flushes_and_then_refuses(tmp_path: Path) -> None:
    store = await Store.open(store_settings(tmp_path / "data"))
    tasks = [asyncio.create_task(store.ledger.record(_entry(f"r{i}"))) for i in range(10)]
    await asyncio.sleep(0)
    await store.ledger.close()
    await asyncio.gather(*tasks)
    with pytest.raises(RuntimeError):
        await store.ledger.record(_entry("late"))
    await store.close()
    store = await Store.open(store_settings(tmp_path / "data"))
    assert await _count(store) == 10
    await store.close()


_RECORDER = """
import asyncio, sys
from gemini_gateway.config import load_settings
from gemini_gateway.store.database import Store
from gemini_gateway.store.ledger import LedgerEntry

async def worker(store, w):
    i = 0
    while True:
        rid = f"{w}-{i}"
        await store.ledger.record(LedgerEntry(request_id=rid, model_requested="gemini-2.5-flash"))
        sys.stdout.write(rid + "\\n")
        sys.stdout.flush()
        i += 1

async def main():
    store = await Store.open(load_settings())
    await asyncio.gather(*(worker(store, w) for w in range(20)))

asyncio.run(main())
"""


def _record_until_killed(env: dict[str, str], count: int) -> tuple[set[str], int]:
    """Run the recorder, SIGKILL it once ``count`` rows were acknowledged; all acknowledged ids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORDER], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    acknowledged: set[str] = set()
    try:
        while len(acknowledged) < count:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(proc.stderr.read())
            acknowledged.add(line.strip())
        proc.kill()  # SIGKILL while batches are being written
        acknowledged.update(x.strip() for x in proc.stdout.read().split("\n") if x.strip())
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    return acknowledged, proc.returncode


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_every_acknowledged_row_survives_kill_9(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("empty_postgres_url") if backend == "postgres" else ""
    settings = store_settings(tmp_path / "data", url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_GATEWAY_")}
    env["GEMINI_GATEWAY_DATA_DIR"] = str(tmp_path / "data")
    if url:
        env["GEMINI_GATEWAY_DATABASE_URL"] = url
    acknowledged, returncode = await asyncio.to_thread(_record_until_killed, env, 1500)
    assert returncode == -signal.SIGKILL
    store = await Store.open(settings, background=False)
    try:
        async with store.database.read() as conn:
            stored = set((await conn.execute(sa.text("SELECT request_id FROM ledger"))).scalars())
    finally:
        await store.close()
    assert acknowledged <= stored


async def _seed(store: Store) -> None:
    rows = [
        _entry("a1", license_id="lic_a", license_name="alice", prompt_tokens=10,
               completion_tokens=5, reasoning_tokens=2, cached_tokens=4, created_at=DAY1),
        _entry("a2", license_id="lic_a", license_name="alice", prompt_tokens=20,
               completion_tokens=7, created_at=DAY2),
        _entry("a3", license_id="lic_a", license_name="alice", status=502,
               error_code="bad_gateway", created_at=DAY2),
        LedgerEntry(request_id="b1", model_requested="gemini-2.5-pro", license_id="lic_b",
                    license_name="bob", prompt_tokens=100, completion_tokens=50, created_at=DAY2),
    ]  # fmt: skip
    await asyncio.gather(*(store.ledger.record(r) for r in rows))


async def test_totals(any_store: Store) -> None:
    await _seed(any_store)
    ledger = any_store.ledger
    (everything,) = await ledger.totals()
    assert everything.to_dict() == {
        "object": "usage.totals", "group": None, "requests": 4, "errors": 1,
        "prompt_tokens": 130, "completion_tokens": 62, "reasoning_tokens": 2,
        "cached_tokens": 4, "total_tokens": 192,
    }  # fmt: skip
    by_model = {t.group: (t.requests, t.prompt_tokens) for t in await ledger.totals(by="model")}
    assert by_model == {"gemini-2.5-flash": (3, 30), "gemini-2.5-pro": (1, 100)}
    by_day = {t.group: t.requests for t in await ledger.totals(by="day")}
    assert by_day == {DAY1.date().isoformat(): 1, DAY2.date().isoformat(): 3}
    by_license = {t.group: t.errors for t in await ledger.totals(by="license")}
    assert by_license == {"alice": 1, "bob": 0}
    (alice,) = await ledger.totals(license="alice")
    assert (alice.requests, alice.completion_tokens) == (3, 12)
    assert (await ledger.totals(license="lic_a"))[0].requests == 3
    (recent,) = await ledger.totals(since=DAY2 - timedelta(hours=1))
    assert recent.requests == 3
    assert await ledger.tokens_used("lic_a") == 42
    assert await ledger.tokens_used("lic_a", since=DAY2 - timedelta(hours=1)) == 27


async def test_totals_of_nothing_are_zero(sqlite_store: Store) -> None:
    (nothing,) = await sqlite_store.ledger.totals()
    assert nothing.requests == 0 and nothing.total_tokens == 0
    assert await sqlite_store.ledger.totals(by="model") == []
    with pytest.raises(InvalidRequest):
        await sqlite_store.ledger.totals(by="colour")


async def test_prune_removes_rows_past_retention(any_store: Store) -> None:
    pruner = any_store.ledger._pruner  # the store's own hourly pruning would race this test
    if pruner is not None:
        pruner.cancel()
    old = NOW - timedelta(days=100)
    await asyncio.gather(
        *(any_store.ledger.record(_entry(f"old{i}", created_at=old)) for i in range(5)),
        any_store.ledger.record(_entry("new", created_at=NOW)),
    )
    assert any_store.ledger.retention_days == 90
    assert await any_store.ledger.prune() == 5
    assert await _count(any_store) == 1
    any_store.ledger.retention_days = 0  # keep forever
    assert await any_store.ledger.prune(now=NOW + timedelta(days=1000)) == 0


async def test_oversized_or_odd_text_never_fails_a_batch(any_store: Store) -> None:
    odd = LedgerEntry(request_id="r" * 500, model_requested="m\x00" * 300, error_code="e" * 99)
    await asyncio.gather(any_store.ledger.record(odd), any_store.ledger.record(_entry("fine")))
    assert await _count(any_store) == 2
    (by_model,) = [
        t for t in await any_store.ledger.totals(by="model") if t.group != "gemini-2.5-flash"
    ]
    assert by_model.group == "m" * 200
