"""The database schema as SQLAlchemy Core tables: one schema for SQLite and PostgreSQL.

Alembic revisions in ``migrations/versions`` create exactly these tables; a test migrates an empty
database on both engines and compares the result to one expected schema. Times are stored as UTC
(``timestamp with time zone`` on PostgreSQL, ISO text on SQLite) and always come back UTC-aware.
The ledger has no foreign key to licenses: deleting a license keeps its history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A datetime that goes in as UTC and comes out UTC-aware on both engines."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        # SQLite has no time zones; a naive UTC text sorts and compares correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit one for the ledger.
LedgerId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

licenses = sa.Table(
    "licenses",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("models", sa.JSON(), nullable=False),
    sa.Column("networks", sa.JSON(), nullable=False),
    sa.Column("rpm", sa.Integer(), nullable=True),
    sa.Column("tpm", sa.Integer(), nullable=True),
    sa.Column("quota", sa.BigInteger(), nullable=True),
    sa.Column("quota_period", sa.String(8), nullable=False),
    sa.Column("concurrency", sa.Integer(), nullable=True),
    sa.Column("note", sa.Text(), nullable=False),
    sa.UniqueConstraint("name", name="uq_licenses_name"),
    sa.UniqueConstraint("key_hash", name="uq_licenses_key_hash"),
)

upstream_keys = sa.Table(
    "upstream_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", LedgerId, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("license_id", sa.String(32), nullable=True),
    sa.Column("license_name", sa.String(200), nullable=True),
    sa.Column("model_requested", sa.String(200), nullable=False),
    sa.Column("model_sent", sa.String(200), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("prompt_tokens", sa.Integer(), nullable=False),
    sa.Column("completion_tokens", sa.Integer(), nullable=False),
    sa.Column("reasoning_tokens", sa.Integer(), nullable=False),
    sa.Column("cached_tokens", sa.Integer(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("ttft_ms", sa.Float(), nullable=True),
    sa.Column("stream", sa.Boolean(), nullable=False),
    sa.Index("ix_ledger_created_at", "created_at"),
    sa.Index("ix_ledger_license_id_created_at", "license_id", "created_at"),
)
