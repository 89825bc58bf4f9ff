"""The ledger's PostgreSQL writer: one asyncpg connection of its own, one round trip per batch.

Through SQLAlchemy's async layer every batch pays a pool checkout, ``BEGIN``, the insert and
``COMMIT`` as separate awaits; on an idle gateway that is about half a millisecond of CPU per
request. Here a batch is a single ``executemany`` (atomic in asyncpg; a lone row a plain
``execute``) on a connection kept open for the ledger. Values go through the table's own column
types, so rows are stored exactly as SQLAlchemy would store them; a broken connection is dropped
and the ledger's retry reconnects.

The connection commits with ``synchronous_commit=off``: a committed row is in the PostgreSQL
server's hands before the commit returns, so it survives the gateway being killed (the ledger's
promise); only a crash of the database server itself can lose its last fraction of a second of
rows. This is the same trade as SQLite's ``synchronous=NORMAL`` in ``ledger_sqlite.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import URL

from gemini_gateway.store.tables import ledger as ledger_table


class PostgresLedgerWriter:
    def __init__(self, url: URL, columns: Sequence[str]) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._columns = tuple(columns)
        dialect = asyncpg_dialect.dialect()
        self._processors = tuple(
            ledger_table.c[name].type.bind_processor(dialect) for name in self._columns
        )
        placeholders = ", ".join(f"${i}" for i in range(1, len(self._columns) + 1))
        self._sql = f"INSERT INTO ledger ({', '.join(self._columns)}) VALUES ({placeholders})"
        self._conn: asyncpg.Connection | None = None

    async def write(self, rows: list[dict[str, Any]]) -> None:
        values = [
            tuple(
                value if process is None else process(value)
                for value, process in zip(
                    (row[name] for name in self._columns), self._processors, strict=True
                )
            )
            for row in rows
        ]
        conn = self._conn
        if conn is None or conn.is_closed():
            conn = self._conn = await asyncpg.connect(
                self._dsn, server_settings={"synchronous_commit": "off"}
            )
        try:
            if len(values) == 1:  # an idle gateway's lone row: ~20 µs less CPU than executemany
                await conn.execute(self._sql, *values[0])
            else:
                await conn.executemany(self._sql, values)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            self._conn = None
            conn.terminate()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
