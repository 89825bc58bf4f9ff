"""The ledger's SQLite writer: one thread, one connection, one call per batch.

Through SQLAlchemy's async engine a batch costs a pool checkout, ``BEGIN IMMEDIATE``, the insert
and the commit, each a round trip to aiosqlite's thread: about a millisecond of CPU per request on
an idle gateway. Here the whole batch is one call on a dedicated thread holding its own
connection, and the event loop only waits for the result.

The connection runs WAL with ``synchronous=NORMAL``: a committed row is in the operating system's
hands, so it survives the gateway being killed (``kill -9``), which is the ledger's promise; only a
power loss or kernel crash can take the last commits with it (``FULL`` would fsync every batch).
Values go through the table's own column types, so rows are stored exactly as SQLAlchemy would.

``try_write_now`` commits a single row on the event loop's own thread, on a second connection
that never waits for SQLite's write lock: a WAL append costs about 20 µs of CPU, less than handing
the row to the thread and waking the loop again. When another writer holds the lock it returns
False and the row takes the thread. That connection never checkpoints (a checkpoint can take
milliseconds); the thread does, every ``_CHECKPOINT_EVERY`` direct commits.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect

from gemini_gateway.store.tables import ledger as ledger_table

_BUSY_TIMEOUT_S = 30.0
_CHECKPOINT_EVERY = 500
log = logging.getLogger("gemini_gateway.ledger")


class SqliteLedgerWriter:
    def __init__(self, path: str, columns: Sequence[str]) -> None:
        self._path = path
        self._columns = tuple(columns)
        dialect = sqlite_dialect.dialect()
        self._processors = tuple(
            ledger_table.c[name].type.bind_processor(dialect) for name in self._columns
        )
        placeholders = ", ".join("?" for _ in self._columns)
        self._sql = f"INSERT INTO ledger ({', '.join(self._columns)}) VALUES ({placeholders})"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._direct: sqlite3.Connection | None = None  # the event loop's own, never waits
        self._direct_commits = 0
        self._checkpoint: asyncio.Future[None] | None = None
        self._closed = False

    async def write(self, rows: list[dict[str, Any]]) -> None:
        values = self._values(rows)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, values)

    def try_write_now(self, rows: list[dict[str, Any]]) -> bool:
        """Commit ``rows`` right here if the write lock is free at once; False if it is not."""
        if self._closed:
            return False
        conn = self._direct or self._connect_direct()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # "database is locked": another writer is at work
            return False
        try:
            conn.executemany(self._sql, self._values(rows))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._direct_commits += 1
        if self._direct_commits >= _CHECKPOINT_EVERY and self._checkpoint is None:
            self._direct_commits = 0
            self._checkpoint = asyncio.get_running_loop().run_in_executor(
                self._executor, self._run_checkpoint
            )
            self._checkpoint.add_done_callback(self._checkpoint_done)
        return True

    def _values(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(
                    (row[name] for name in self._columns), self._processors, strict=True
                )
            )
            for row in rows
        ]

    def _write(self, values: list[tuple[Any, ...]]) -> None:
        conn = self._conn or self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(self._sql, values)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._conn = conn
        return conn

    def _connect_direct(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the thread checkpoints, off the loop
        self._direct = conn
        return conn

    def _run_checkpoint(self) -> None:
        conn = self._conn or self._connect()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("ledger: WAL checkpoint failed", exc_info=future.exception())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._direct is not None:
            self._direct.close()
            self._direct = None

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)
