"""Alembic environment: runs on the connection ``Store.open`` hands over (never opens its own).

``database.py`` opens the transaction (and takes PostgreSQL's advisory lock or SQLite's write
lock) before calling Alembic, so two processes starting at once migrate one after the other.
"""

from __future__ import annotations

from alembic import context

from gemini_gateway.store.tables import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through gemini_gateway.store.database.Store.open")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
