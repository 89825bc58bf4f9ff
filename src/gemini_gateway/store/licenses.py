"""Licenses: the keys the operator issues to clients, with what each may do.

A license key is ``gg-`` + 43 URL-safe random characters (256 bits), shown once at creation or
rotation. The database keeps only its SHA-256 (a fast hash is enough for a random 256-bit secret:
there is nothing to brute-force) and a short visible prefix so people can tell licenses apart.

``authenticate`` runs on every request. It hashes the key and answers from a small in-process cache
whose entries live a few seconds, so most requests cost no database round trip, while a disable,
rotation or delete made by another process (the CLI, another replica) takes effect within the TTL.

Status mapping, following OpenAI: an unknown key, and a disabled or expired license, is 401
(``authentication_error``; codes ``invalid_api_key``, ``license_disabled``, ``license_expired``),
as OpenAI answers 401 for revoked keys. A valid license used for a model or from a network it does
not allow is 403 (``permission_error``), as OpenAI answers 403 for a key lacking a permission.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gemini_gateway.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from gemini_gateway.store._dates import utcnow
from gemini_gateway.store.tables import licenses as licenses_table

if TYPE_CHECKING:
    from gemini_gateway.store.database import Database

KEY_PREFIX = "gg-"
QUOTA_PERIODS = ("total", "day", "month")
_VISIBLE_CHARS = 8  # characters after "gg-" kept in key_prefix
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Fields a caller may set on create/update, with the checks in _validated().
EDITABLE = (
    "name", "expires_at", "enabled", "models", "networks", "rpm", "tpm", "quota",
    "quota_period", "concurrency", "note",
)  # fmt: skip


@dataclass(frozen=True)
class License:
    """One license as stored (never its key). ``check`` decides whether a request may proceed."""

    id: str
    name: str
    key_prefix: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    enabled: bool = True
    models: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    quota: int | None = None
    quota_period: str = "total"
    concurrency: int | None = None
    note: str = ""
    _parsed_networks: tuple[_IPNetwork, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        parsed = tuple(ipaddress.ip_network(n, strict=False) for n in self.networks)
        object.__setattr__(self, "_parsed_networks", parsed)

    @property
    def redacted_key(self) -> str:
        return f"{self.key_prefix}…"

    def ensure_usable(self, now: datetime | None = None) -> None:
        """401 when the license is disabled or expired."""
        if not self.enabled:
            raise AuthenticationFailed("This license is disabled.", code="license_disabled")
        if self.expires_at is not None and (now or utcnow()) >= self.expires_at:
            raise AuthenticationFailed("This license has expired.", code="license_expired")

    def check(self, model: str, client_ip: str, *, now: datetime | None = None) -> None:
        """Raise unless this license may call ``model`` from ``client_ip`` now."""
        self.ensure_usable(now)
        if not self.allows_model(model):
            raise PermissionDenied(
                f"This license may not use the model '{model}'.",
                param="model",
                code="model_not_allowed",
            )
        if not self.allows_address(client_ip):
            raise PermissionDenied(
                f"This license may not be used from the address {client_ip or 'unknown'}.",
                code="network_not_allowed",
            )

    def allows_model(self, model: str) -> bool:
        if not self.models:
            return True
        name = model.removeprefix("models/")
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.models)

    def allows_address(self, client_ip: str) -> bool:
        if not self._parsed_networks:
            return True
        try:
            address = ipaddress.ip_address(client_ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._parsed_networks)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (CLI ``--json`` and the admin API); never the key."""
        return {
            "id": self.id,
            "object": "license",
            "name": self.name,
            "redacted_value": self.redacted_key,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
            "expires_at": int(self.expires_at.timestamp()) if self.expires_at else None,
            "enabled": self.enabled,
            "models": list(self.models),
            "networks": list(self.networks),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "quota": self.quota,
            "quota_period": self.quota_period,
            "concurrency": self.concurrency,
            "note": self.note,
        }


def hash_license_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_license_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class Licenses:
    """Create, change and look up licenses; ``authenticate`` is the cached hot path."""

    def __init__(
        self, database: Database, *, cache_ttl: float = 5.0, cache_size: int = 10_000
    ) -> None:
        self._db = database
        self.cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._cache: dict[str, tuple[float, License | None]] = {}
        self._inflight: dict[str, asyncio.Future[License | None]] = {}

    async def authenticate(self, plaintext: str) -> License | None:
        """The license with this key; None if there is none; 401 if it is disabled or expired."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 256:
            return None
        digest = hash_license_key(plaintext)
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            found = hit[1]
        else:
            found = await self._load_once(digest)
        if found is not None:
            found.ensure_usable()
        return found

    async def _load_once(self, digest: str) -> License | None:
        # Concurrent misses for one key share a single query (no stampede when an entry expires).
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[License | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            async with self._db.read() as conn:
                row = (
                    await conn.execute(
                        sa.select(licenses_table).where(licenses_table.c.key_hash == digest)
                    )
                ).first()
            found = _from_row(row._mapping) if row is not None else None
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self.cache_ttl, found)
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            del self._inflight[digest]

    def forget_cached(self) -> None:
        """Drop cached lookups (this process made a change, so it need not wait for the TTL)."""
        self._cache.clear()

    async def create(self, *, name: str, **fields: Any) -> tuple[License, str]:
        """A new license and its key (the only time the key is available)."""
        values = _validated({"name": name, **fields}, creating=True)
        plaintext = new_license_key()
        now = utcnow()
        row = {
            "id": "lic_" + secrets.token_hex(8),
            "key_hash": hash_license_key(plaintext),
            "key_prefix": plaintext[: len(KEY_PREFIX) + _VISIBLE_CHARS],
            "created_at": now,
            "updated_at": now,
            "expires_at": None,
            "enabled": True,
            "models": [],
            "networks": [],
            "rpm": None,
            "tpm": None,
            "quota": None,
            "quota_period": "total",
            "concurrency": None,
            "note": "",
            **values,
        }
        async with self._db.write() as conn:
            await self._ensure_name_free(conn, row["name"])
            try:
                await conn.execute(licenses_table.insert().values(**row))
            except IntegrityError as exc:  # lost a race for the name on PostgreSQL
                raise _name_taken(row["name"]) from exc
        return _from_row(row), plaintext

    async def list(self) -> list[License]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(licenses_table).order_by(licenses_table.c.created_at)
            )
            return [_from_row(r._mapping) for r in rows]

    async def get(self, ref: str) -> License:
        """By id (``lic_…``), name or visible key prefix; 404 if none matches."""
        async with self._db.read() as conn:
            return _from_row(await self._find(conn, ref))

    async def update(self, ref: str, **changes: Any) -> License:
        values = _validated(changes, creating=False)
        async with self._db.write() as conn:
            current = await self._find(conn, ref)
            if "name" in values and values["name"] != current["name"]:
                await self._ensure_name_free(conn, values["name"])
            values["updated_at"] = utcnow()
            await conn.execute(
                licenses_table.update().where(licenses_table.c.id == current["id"]).values(**values)
            )
        self.forget_cached()
        return _from_row({**current, **values})

    async def set_enabled(self, ref: str, enabled: bool) -> License:
        return await self.update(ref, enabled=enabled)

    async def rotate(self, ref: str) -> tuple[License, str]:
        """A new key for the same license; the old key stops working (other processes: TTL)."""
        plaintext = new_license_key()
        values = {
            "key_hash": hash_license_key(plaintext),
            "key_prefix": plaintext[: len(KEY_PREFIX) + _VISIBLE_CHARS],
            "updated_at": utcnow(),
        }
        async with self._db.write() as conn:
            current = await self._find(conn, ref)
            await conn.execute(
                licenses_table.update().where(licenses_table.c.id == current["id"]).values(**values)
            )
        self.forget_cached()
        return _from_row({**current, **values}), plaintext

    async def delete(self, ref: str) -> License:
        async with self._db.write() as conn:
            current = await self._find(conn, ref)
            await conn.execute(licenses_table.delete().where(licenses_table.c.id == current["id"]))
        self.forget_cached()
        return _from_row(current)

    async def _find(self, conn: Any, ref: str) -> Mapping[str, Any]:
        c = licenses_table.c
        for column in (c.id, c.name, c.key_prefix):
            rows = (await conn.execute(sa.select(licenses_table).where(column == ref))).all()
            if len(rows) == 1:
                return dict(rows[0]._mapping)
        raise NotFound(f"No license '{ref}'.", code="license_not_found")

    async def _ensure_name_free(self, conn: Any, name: str) -> None:
        taken = await conn.scalar(sa.select(sa.func.count()).where(licenses_table.c.name == name))
        if taken:
            raise _name_taken(name)


def _name_taken(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"A license named '{name}' already exists.", param="name", code="license_exists"
    )


def _from_row(row: Mapping[str, Any]) -> License:
    return License(
        id=row["id"],
        name=row["name"],
        key_prefix=row["key_prefix"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        enabled=bool(row["enabled"]),
        models=tuple(row["models"] or ()),
        networks=tuple(row["networks"] or ()),
        rpm=row["rpm"],
        tpm=row["tpm"],
        quota=row["quota"],
        quota_period=row["quota_period"],
        concurrency=row["concurrency"],
        note=row["note"] or "",
    )


def _validated(changes: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check and normalise license fields; 400 naming the field on the first bad one."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE:
            raise InvalidRequest(f"Unknown license field '{key}'.", param=key)
        if key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidRequest("name: 1 to 200 characters.", param="name")
            value = value.strip()
        elif key in ("rpm", "tpm", "concurrency", "quota"):
            # None or 0 means "no limit".
            top = 2**63 - 1 if key == "quota" else 2**31 - 1  # the column's width
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top
            ):
                raise InvalidRequest(
                    f"{key}: a whole number from 0 (no limit) to {top}.", param=key
                )
            value = value or None
        elif key == "quota_period":
            if value not in QUOTA_PERIODS:
                raise InvalidRequest(f"quota_period: one of {', '.join(QUOTA_PERIODS)}.", param=key)
        elif key == "models":
            value = _string_list(key, value)
        elif key == "networks":
            value = [_network(text) for text in _string_list(key, value)]
        elif key == "expires_at":
            if value is not None and not isinstance(value, datetime):
                raise InvalidRequest("expires_at: a date and time, or null.", param=key)
        elif key == "enabled":
            if not isinstance(value, bool):
                raise InvalidRequest("enabled: true or false.", param=key)
        elif key == "note":
            if value is None:
                value = ""
            if not isinstance(value, str) or len(value) > 4000:
                raise InvalidRequest("note: text up to 4000 characters.", param=key)
        out[key] = value
    if creating and "name" not in out:
        raise InvalidRequest("name is required.", param="name")
    return out


def _string_list(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidRequest(f"{key}: a list of strings.", param=key)
    given = list(value)
    items = [item.strip() for item in given if isinstance(item, str) and item.strip()]
    if len(items) != len(given):
        raise InvalidRequest(f"{key}: a list of non-empty strings.", param=key)
    return items


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise InvalidRequest(
            f"networks: '{text}' is not an address or CIDR network.", param="networks"
        ) from None
