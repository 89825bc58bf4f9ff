"""The usage ledger: one row per request, written by group commit.

``record(entry)`` appends to an in-memory queue and waits; one writer task takes everything queued
so far, inserts it in one transaction (on SQLite ``BEGIN IMMEDIATE``, the single writer) and, once
that commit returns, wakes every caller in the batch. Rows arriving during a commit form the next
batch, so under load many requests share one fsync, and an idle gateway commits each row at once.
The HTTP layer awaits ``record`` before the response's last byte: a client that received a whole
response has a durable row, even if the gateway is then killed.

Rows older than ``ledger_retention_days`` are deleted by ``prune``, which ``Store.open`` runs
hourly in the background (0 keeps rows forever).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.store._dates import utcnow
from gemini_gateway.store.ledger_postgres import PostgresLedgerWriter
from gemini_gateway.store.ledger_sqlite import SqliteLedgerWriter
from gemini_gateway.store.tables import ledger as ledger_table

if TYPE_CHECKING:
    from gemini_gateway.store.database import Database

log = logging.getLogger("gemini_gateway.ledger")

GroupBy = Literal["model", "day", "license"]
GROUPINGS: tuple[str, ...] = ("model", "day", "license")
_RETRY_DELAYS = (0.05, 0.25, 1.0)  # a busy or briefly unreachable database gets three retries
_PRUNE_CHUNK = 5000


@dataclass(slots=True)
class LedgerEntry:
    """What one request cost. ``key_id`` is the upstream key's id, never the key."""

    request_id: str
    model_requested: str
    model_sent: str = ""
    license_id: str | None = None
    license_name: str | None = None
    key_id: str | None = None
    status: int = 200
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    created_at: datetime = field(default_factory=utcnow)


_ENTRY_FIELDS = tuple(f.name for f in fields(LedgerEntry))
# Text columns and their widths: client-chosen text (a model name) must never fail a whole batch.
_TEXT_WIDTHS = {
    column.name: column.type.length
    for column in ledger_table.columns
    if isinstance(column.type, sa.String) and column.type.length
}


def _row(entry: LedgerEntry) -> dict[str, Any]:
    row = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    for name, width in _TEXT_WIDTHS.items():
        value = row[name]
        if value is not None and (len(value) > width or "\x00" in value):
            row[name] = value.replace("\x00", "")[:width]
    return row


def _batch_writer_for(database: Database) -> SqliteLedgerWriter | PostgresLedgerWriter | None:
    """A writer that commits a batch in one call; None keeps SQLAlchemy (in-memory SQLite)."""
    url = database.engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLedgerWriter(url, _ENTRY_FIELDS)
    if not database.is_sqlite or not url.database or url.database == ":memory:":
        return None
    return SqliteLedgerWriter(url.database, _ENTRY_FIELDS)


@dataclass(frozen=True)
class UsageTotals:
    """Totals for one group (a model, a day ``YYYY-MM-DD``, a license name) or for everything."""

    group: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "usage.totals",
            "group": self.group,
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
        }


class Ledger:
    """Durable usage rows (group commit) and the totals people ask about."""

    def __init__(
        self,
        database: Database,
        *,
        retention_days: int = 90,
        batch_size: int = 1000,
        prune_interval: float = 3600.0,
    ) -> None:
        self._db = database
        self.retention_days = retention_days
        self._batch_size = batch_size
        self._prune_interval = prune_interval
        self._pending: deque[tuple[LedgerEntry, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._closed = False
        self._batch_writer = _batch_writer_for(database)
        # SQLite can commit a lone row on the spot (see ledger_sqlite.py); PostgreSQL cannot.
        self._direct_writer = (
            self._batch_writer if isinstance(self._batch_writer, SqliteLedgerWriter) else None
        )
        self._writing = False  # a batch is on its way to the database
        self._direct_now = False  # a row was committed directly in this loop iteration

    async def record(self, entry: LedgerEntry) -> None:
        """Return once ``entry``'s row is committed (shared with whatever else was queued)."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        writer = self._direct_writer
        if writer is not None and not (self._pending or self._writing or self._direct_now):
            # Nothing queued: commit right here, without waking the writer task. At most one
            # such commit per loop iteration: the rest of a burst is queued and shares commits.
            try:
                if writer.try_write_now([_row(entry)]):
                    self._direct_now = True
                    asyncio.get_running_loop().call_soon(self._end_direct_turn)
                    return
            except Exception:
                log.warning("ledger: direct write failed, queueing the row", exc_info=True)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="ledger-writer")
        await future

    def _end_direct_turn(self) -> None:
        self._direct_now = False

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            count = min(len(self._pending), self._batch_size)
            batch = [self._pending.popleft() for _ in range(count)]
            self._writing = True
            try:
                await self._insert_with_retries([entry for entry, _ in batch])
            except Exception:
                log.exception("ledger: %d rows could not be written", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError("the ledger row could not be written"))
            else:
                for _, future in batch:
                    if not future.done():  # a caller that was cancelled no longer waits
                        future.set_result(None)
            finally:
                self._writing = False

    async def _insert_with_retries(self, entries: list[LedgerEntry]) -> None:
        rows = [_row(e) for e in entries]
        for delay in (*_RETRY_DELAYS, None):
            try:
                if self._batch_writer is not None:
                    await self._batch_writer.write(rows)
                else:
                    async with self._db.write() as conn:
                        await conn.execute(ledger_table.insert(), rows)
                return
            except Exception:
                if delay is None:
                    raise
                log.warning("ledger: write failed, retrying in %.2fs", delay, exc_info=True)
                await asyncio.sleep(delay)

    async def totals(
        self,
        *,
        since: datetime | None = None,
        license: str | None = None,
        by: str | None = None,
    ) -> list[UsageTotals]:
        """Totals since ``since`` for one license (id or name) or all, optionally grouped."""
        c = ledger_table.c
        group = self._group_expression(by)
        query = sa.select(
            (group if group is not None else sa.null()).label("grp"),
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(sa.case((c.status >= 400, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(c.completion_tokens), 0),
            sa.func.coalesce(sa.func.sum(c.reasoning_tokens), 0),
            sa.func.coalesce(sa.func.sum(c.cached_tokens), 0),
        )
        if since is not None:
            query = query.where(c.created_at >= since)
        if license is not None:
            query = query.where(sa.or_(c.license_id == license, c.license_name == license))
        if group is not None:
            query = query.group_by(group).order_by(group)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        result = [
            UsageTotals(
                group=None if row[0] is None else str(row[0]),
                requests=int(row[1]),
                errors=int(row[2]),
                prompt_tokens=int(row[3]),
                completion_tokens=int(row[4]),
                reasoning_tokens=int(row[5]),
                cached_tokens=int(row[6]),
            )
            for row in rows
        ]
        return [r for r in result if r.requests or group is None]

    async def tokens_used(self, license_id: str, since: datetime | None = None) -> int:
        """Prompt + completion tokens a license used since ``since`` (for quotas)."""
        c = ledger_table.c
        query = sa.select(
            sa.func.coalesce(sa.func.sum(c.prompt_tokens + c.completion_tokens), 0)
        ).where(c.license_id == license_id)
        if since is not None:
            query = query.where(c.created_at >= since)
        async with self._db.read() as conn:
            return int(await conn.scalar(query) or 0)

    def _group_expression(self, by: str | None) -> Any:
        c = ledger_table.c
        if by is None:
            return None
        if by == "model":
            return c.model_requested
        if by == "license":
            return sa.func.coalesce(c.license_name, c.license_id, "")
        if by == "day":
            # Stored as UTC: SQLite keeps naive ISO text, PostgreSQL a timestamptz.
            if self._db.is_sqlite:
                return sa.func.strftime("%Y-%m-%d", c.created_at)
            return sa.func.to_char(sa.func.timezone("UTC", c.created_at), "YYYY-MM-DD")
        raise InvalidRequest(f"by: one of {', '.join(GROUPINGS)}.", param="by")

    async def prune(self, now: datetime | None = None) -> int:
        """Delete rows older than the retention period, in chunks; returns how many went."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        c = ledger_table.c
        deleted = 0
        while True:
            # Chunked so SQLite's write lock is never held for long.
            old = sa.select(c.id).where(c.created_at < cutoff).limit(_PRUNE_CHUNK)
            async with self._db.write() as conn:
                result = await conn.execute(ledger_table.delete().where(c.id.in_(old)))
            deleted += result.rowcount
            if result.rowcount < _PRUNE_CHUNK:
                return deleted

    def start_pruning(self) -> None:
        if self._pruner is None:
            self._pruner = asyncio.create_task(self._prune_loop(), name="ledger-pruner")

    async def _prune_loop(self) -> None:
        while True:
            try:
                removed = await self.prune()
                if removed:
                    log.info("ledger: pruned %d rows", removed)
            except Exception:
                log.exception("ledger: pruning failed")
            await asyncio.sleep(self._prune_interval)

    async def close(self) -> None:
        """Write what is queued, then stop the writer and the pruner."""
        self._closed = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        if self._batch_writer is not None:
            await self._batch_writer.close()
        if self._pruner is not None:
            self._pruner.cancel()
            try:
                await self._pruner
            except asyncio.CancelledError:
                pass
