"""The database: one async engine for SQLite (default) or PostgreSQL, migrated on open.

SQLite runs in WAL mode so the CLI can write (``license create``) while the server runs, and every
write transaction opens with ``BEGIN IMMEDIATE`` (take the write lock up front, wait for it with
``busy_timeout``) instead of upgrading a read lock mid-transaction, which fails under contention.
``synchronous=FULL`` makes a commit durable before ``commit()`` returns; the ledger's group commit
pays that fsync once per batch, not per request.

Migrations run inside one transaction that first takes a lock (PostgreSQL: an advisory lock;
SQLite: the write lock), so two processes starting at once migrate one after the other and the
second finds the schema already at head.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gemini_gateway.config import Settings
from gemini_gateway.store.key_cipher import KeyCipher
from gemini_gateway.store.ledger import Ledger
from gemini_gateway.store.licenses import Licenses
from gemini_gateway.store.upstream_keys import UpstreamKeys

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger("gemini_gateway.keys")
# Any fixed 64-bit number; every gateway process agrees on it.
_MIGRATION_LOCK = 7_263_617_046_179_871_001
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def async_database_url(url: str) -> str:
    """Pick the async driver: postgresql:// → postgresql+asyncpg://, sqlite:// → +aiosqlite."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Database:
    """The engine plus the two ways to use it: ``read()`` and ``write()`` transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success; on SQLite it holds the write lock throughout."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def connect(url: str) -> Database:
    """Create the engine (and an SQLite file's folder); no connection is made yet."""
    url = async_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    else:
        # No pre-ping (a round trip per checkout on the hot path); stale connections fail once
        # and the ledger retries, and recycling keeps them from going stale behind proxies.
        engine = create_async_engine(url, pool_recycle=1800)
    return Database(engine)


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and never IMMEDIATE; take it over
    # (the recipe in SQLAlchemy's SQLite dialect docs).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def migrate(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` under a lock, so concurrent starts are safe."""
    async with database.write() as conn:
        if not database.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


class Store:
    """Everything persistent: licenses, upstream keys and the usage ledger over one database."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.licenses = Licenses(database)
        secret = str(settings.key_encryption_secret)
        self.upstream_keys = UpstreamKeys(database, KeyCipher(secret) if secret else None)
        self.ledger = Ledger(database, retention_days=int(settings.ledger_retention_days))

    @property
    def keys(self) -> UpstreamKeys:
        """Alias of ``upstream_keys`` (the name docs/internals.md uses)."""
        return self.upstream_keys

    @classmethod
    async def open(cls, settings: Settings, *, background: bool = True) -> Store:
        """Connect, migrate to head and (``background``) start the ledger's pruning task."""
        database = connect(settings.effective_database_url)
        try:
            await migrate(database)
            store = cls(database, settings)
            encrypted = await store.upstream_keys.encrypt_stored()
        except BaseException:
            await database.close()
            raise
        if encrypted:
            log.warning("encrypted %d upstream keys stored in plain text before", encrypted)
        if background:
            store.ledger.start_pruning()
        return store

    async def close(self) -> None:
        """Flush the ledger, stop background tasks, close connections."""
        await self.ledger.close()
        await self.database.close()
