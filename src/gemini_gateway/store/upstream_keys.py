"""Upstream (Google) API keys kept in the database, next to those in GEMINI_GATEWAY_UPSTREAM_KEYS.

A key is known by its id, ``k-`` + the first 8 hex digits of its SHA-256 (the same id the key pool
and the ledger use), and shown masked (``AIza…wxyz``). Without
``GEMINI_GATEWAY_KEY_ENCRYPTION_SECRET`` the secret is stored as given: anyone who can read the
database can use it. With it, keys are stored encrypted (``key_cipher.py``). Only
``list_secrets``/``secret`` return a key, for the key pool and ``key check``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gemini_gateway.errors import GatewayError, InvalidRequest, NotFound
from gemini_gateway.store._dates import utcnow
from gemini_gateway.store.key_cipher import KeyCipher, UnreadableKey, is_encrypted, reveal
from gemini_gateway.store.tables import upstream_keys as keys_table

log = logging.getLogger("gemini_gateway.keys")

if TYPE_CHECKING:
    from gemini_gateway.store.database import Database


def upstream_key_id(secret: str) -> str:
    return "k-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def mask_upstream_key(secret: str) -> str:
    """``AIza…wxyz``: enough to recognise a key, far too little to use it."""
    if len(secret) <= 12:
        return "…" + secret[-2:]
    return f"{secret[:4]}…{secret[-4:]}"


@dataclass(frozen=True)
class UpstreamKeyRecord:
    """A stored upstream key without its secret."""

    id: str
    masked: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "upstream_key",
            "redacted_value": self.masked,
            "enabled": self.enabled,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
            "note": self.note,
        }


class UpstreamKeys:
    """Add, list, disable, enable and remove upstream keys."""

    def __init__(self, database: Database, cipher: KeyCipher | None = None) -> None:
        self._db = database
        self._cipher = cipher

    async def add(self, secret: str, *, note: str = "") -> UpstreamKeyRecord:
        secret = secret.strip()
        if not secret or any(ch.isspace() for ch in secret) or len(secret) > 512:
            raise InvalidRequest("key: one upstream API key, without spaces.", param="key")
        now = utcnow()
        row = {
            "id": upstream_key_id(secret),
            "secret": self._cipher.encrypt(secret) if self._cipher else secret,
            "enabled": True,
            "created_at": now,
            "updated_at": now,
            "note": note or "",
        }
        async with self._db.write() as conn:
            exists = await conn.scalar(
                sa.select(sa.func.count()).where(keys_table.c.id == row["id"])
            )
            if exists:
                raise InvalidRequest(
                    f"The upstream key {row['id']} is already stored.", code="key_exists"
                )
            await conn.execute(keys_table.insert().values(**row))
        return self._record(row)

    async def list(self) -> list[UpstreamKeyRecord]:
        async with self._db.read() as conn:
            rows = await conn.execute(sa.select(keys_table).order_by(keys_table.c.created_at))
            return [self._record(r._mapping) for r in rows]

    async def get(self, key_id: str) -> UpstreamKeyRecord:
        async with self._db.read() as conn:
            return self._record(await _find(conn, key_id))

    async def list_secrets(self) -> list[str]:
        """The enabled keys themselves, for the key pool; keys it cannot decrypt are skipped."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(keys_table.c.id, keys_table.c.secret)
                .where(keys_table.c.enabled.is_(True))
                .order_by(keys_table.c.created_at)
            )
            secrets = []
            for key_id, stored in rows:
                try:
                    secrets.append(reveal(stored, self._cipher))
                except UnreadableKey as exc:
                    log.warning("upstream key %s skipped: %s", key_id, exc)
            return secrets

    async def secret(self, key_id: str) -> str:
        async with self._db.read() as conn:
            row = await _find(conn, key_id)
        try:
            return reveal(str(row["secret"]), self._cipher)
        except UnreadableKey as exc:
            raise KeyUnreadable(f"The upstream key {key_id} is {exc}.") from exc

    async def encrypt_stored(self) -> int:
        """Encrypt keys stored before the secret was set; returns how many were."""
        if self._cipher is None:
            return 0
        async with self._db.write() as conn:
            rows = (await conn.execute(sa.select(keys_table.c.id, keys_table.c.secret))).all()
            plain = [(key_id, stored) for key_id, stored in rows if not is_encrypted(stored)]
            for key_id, stored in plain:
                await conn.execute(
                    keys_table.update()
                    .where(keys_table.c.id == key_id)
                    .values(secret=self._cipher.encrypt(stored))
                )
        return len(plain)

    def _record(self, row: Mapping[str, Any]) -> UpstreamKeyRecord:
        try:
            masked = mask_upstream_key(reveal(row["secret"], self._cipher))
        except UnreadableKey:
            masked = "(encrypted, unreadable here)"
        return _from_row(row, masked)

    async def set_enabled(self, key_id: str, enabled: bool) -> UpstreamKeyRecord:
        async with self._db.write() as conn:
            current = await _find(conn, key_id)
            values = {"enabled": enabled, "updated_at": utcnow()}
            await conn.execute(
                keys_table.update().where(keys_table.c.id == current["id"]).values(**values)
            )
        return self._record({**current, **values})

    async def remove(self, key_id: str) -> UpstreamKeyRecord:
        async with self._db.write() as conn:
            current = await _find(conn, key_id)
            await conn.execute(keys_table.delete().where(keys_table.c.id == current["id"]))
        return self._record(current)


class KeyUnreadable(GatewayError):
    """A stored key this process cannot decrypt: the operator's secret is missing or wrong."""

    status = 409
    type = "invalid_request_error"
    code = "key_unreadable"


async def _find(conn: Any, key_id: str) -> dict[str, Any]:
    row = (await conn.execute(sa.select(keys_table).where(keys_table.c.id == key_id))).first()
    if row is None:
        raise NotFound(f"No upstream key '{key_id}'.", code="key_not_found")
    return dict(row._mapping)


def _from_row(row: Mapping[str, Any], masked: str) -> UpstreamKeyRecord:
    return UpstreamKeyRecord(
        id=row["id"],
        masked=masked,
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        note=row["note"] or "",
    )
