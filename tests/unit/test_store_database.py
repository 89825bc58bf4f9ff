"""The database layer: URL rewriting, migrations to one schema on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gemini_gateway.store.database import Store, async_database_url, connect, migrate
from gemini_gateway.store.tables import metadata
from tests.fixtures.store import store_settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db", id="pg"),
        pytest.param("postgres://u@h/db", "postgresql+asyncpg://u@h/db", id="pg-short"),
        pytest.param("sqlite:////var/gg/gateway.db", "sqlite+aiosqlite:////var/gg/gateway.db",
                     id="sqlite"),
        pytest.param("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db", id="kept"),
    ],
)  # fmt: skip
def test_async_database_url(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


# The schema both engines must end up with: table -> columns (name, kind, nullable), primary key,
# unique constraints, indexes. Kinds are portable families, so SQLite's and PostgreSQL's spellings
# of one type compare equal.
EXPECTED: dict[str, dict[str, Any]] = {
    "licenses": {
        "columns": [
            ("id", "string", False), ("name", "string", False), ("key_hash", "string", False),
            ("key_prefix", "string", False), ("created_at", "datetime", False),
            ("updated_at", "datetime", False), ("expires_at", "datetime", True),
            ("enabled", "boolean", False), ("models", "json", False),
            ("networks", "json", False), ("rpm", "integer", True), ("tpm", "integer", True),
            ("quota", "integer", True), ("quota_period", "string", False),
            ("concurrency", "integer", True), ("note", "text", False),
        ],
        "pk": ["id"],
        "unique": [["key_hash"], ["name"]],
        "indexes": [],
    },
    "upstream_keys": {
        "columns": [
            ("id", "string", False), ("secret", "text", False), ("enabled", "boolean", False),
            ("created_at", "datetime", False), ("updated_at", "datetime", False),
            ("note", "text", False),
        ],
        "pk": ["id"],
        "unique": [],
        "indexes": [],
    },
    "ledger": {
        "columns": [
            ("id", "integer", False), ("created_at", "datetime", False),
            ("request_id", "string", False), ("license_id", "string", True),
            ("license_name", "string", True), ("model_requested", "string", False),
            ("model_sent", "string", False), ("key_id", "string", True),
            ("status", "integer", False), ("error_code", "string", True),
            ("prompt_tokens", "integer", False), ("completion_tokens", "integer", False),
            ("reasoning_tokens", "integer", False), ("cached_tokens", "integer", False),
            ("latency_ms", "float", False), ("ttft_ms", "float", True),
            ("stream", "boolean", False),
        ],
        "pk": ["id"],
        "unique": [],
        "indexes": [
            ("ix_ledger_created_at", ["created_at"]),
            ("ix_ledger_license_id_created_at", ["license_id", "created_at"]),
        ],
    },
}  # fmt: skip


def _kind(column_type: Any) -> str:
    for kind, family in (
        ("boolean", sa.Boolean), ("datetime", sa.DateTime), ("json", sa.JSON),
        ("float", sa.Float), ("integer", sa.Integer), ("text", sa.Text), ("string", sa.String),
    ):  # fmt: skip
        if isinstance(column_type, family):
            return kind
    # SQLite reflects JSON columns as a NullType/"JSON" spelling on some versions.
    return str(column_type).lower()


def _schema(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    inspector = sa.inspect(conn)
    schema = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        schema[table] = {
            "columns": [
                (c["name"], _kind(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted(u["column_names"] for u in inspector.get_unique_constraints(table)),
            "indexes": sorted(
                (i["name"], i["column_names"])
                for i in inspector.get_indexes(table)
                if not i.get("unique")
            ),
        }
    return schema


async def _migrated_schema(url: str) -> tuple[dict[str, Any], list[Any], str | None]:
    database = connect(url)
    try:
        await migrate(database)
        async with database.read() as conn:
            schema = await conn.run_sync(_schema)
            drift = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        return schema, drift, version
    finally:
        await database.close()


async def test_sqlite_empty_to_head_matches_expected_schema(tmp_path: Path) -> None:
    schema, drift, version = await _migrated_schema(f"sqlite:///{tmp_path / 'new' / 'gg.db'}")
    assert schema == EXPECTED
    assert drift == []  # tables.py and the migrations describe the same schema
    assert version == "0001"


@pytest.mark.postgres
async def test_postgres_empty_to_head_matches_expected_schema(empty_postgres_url: str) -> None:
    schema, drift, version = await _migrated_schema(empty_postgres_url)
    assert schema == EXPECTED
    assert drift == []
    assert version == "0001"


@pytest.mark.postgres
async def test_two_processes_migrating_one_postgres_at_once(empty_postgres_url: str) -> None:
    # Separate engines, like two gateway processes starting together; the advisory lock
    # serialises them and the second finds the schema at head.
    results = await asyncio.gather(*(_migrated_schema(empty_postgres_url) for _ in range(3)))
    assert all(schema == EXPECTED and version == "0001" for schema, _, version in results)


async def test_open_creates_sqlite_file_in_data_dir_in_wal_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    store = await Store.open(store_settings(data_dir))
    await store.close()
    db_file = data_dir / "gateway.db"
    assert db_file.is_file()
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Opening again is a no-op migration.
    store = await Store.open(store_settings(data_dir))
    assert store.keys is store.upstream_keys
    await store.close()


async def test_sqlite_concurrent_opens_on_one_file(tmp_path: Path) -> None:
    settings = store_settings(tmp_path / "data")
    stores = await asyncio.gather(*(Store.open(settings) for _ in range(3)))
    for store in stores:
        await store.close()
