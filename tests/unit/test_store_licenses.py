"""Licenses: issuing, hashing, authenticating through the cache, and what check() allows."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gemini_gateway.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from gemini_gateway.store.database import Store
from gemini_gateway.store.licenses import License
from tests.fixtures.store import store_settings

KEY_SHAPE = re.compile(r"^gg-[A-Za-z0-9_-]{32,}$")


def _license(**fields: object) -> License:
    now = datetime.now(UTC)
    values: dict[str, object] = {"id": "lic_1", "name": "t", "key_prefix": "gg-abcdefgh",
                                 "created_at": now, "updated_at": now, **fields}  # fmt: skip
    return License(**values)  # type: ignore[arg-type]


async def test_create_returns_a_high_entropy_key_stored_only_as_its_hash(any_store: Store) -> None:
    lic, key = await any_store.licenses.create(name="alice", rpm=60, models=["gemini-2.5-*"])
    assert KEY_SHAPE.match(key)
    assert lic.key_prefix == key[:11] and lic.redacted_key == key[:11] + "…"
    async with any_store.database.read() as conn:
        row = (await conn.execute(sa.text("SELECT * FROM licenses"))).mappings().one()
    assert key not in {str(v) for v in row.values()}
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    _, other = await any_store.licenses.create(name="bob")
    assert other != key


async def test_authenticate(any_store: Store) -> None:
    lic, key = await any_store.licenses.create(name="alice", tpm=1000, note="team a")
    found = await any_store.licenses.authenticate(key)
    assert found == lic and found is not None and found.tpm == 1000 and found.note == "team a"
    assert (
        await any_store.licenses.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    )
    assert await any_store.licenses.authenticate("sk-not-ours") is None
    assert await any_store.licenses.authenticate("") is None


async def test_authenticate_is_cached_then_sees_changes_from_another_process(
    tmp_path: Path,
) -> None:
    settings = store_settings(tmp_path / "data")
    server, cli = await Store.open(settings), await Store.open(settings)
    try:
        server.licenses.cache_ttl = 0.3
        lic, key = await cli.licenses.create(name="alice")
        assert await server.licenses.authenticate(key) == lic
        await cli.licenses.set_enabled("alice", False)
        # Still cached: no database round trip on the hot path.
        assert await server.licenses.authenticate(key) == lic
        await asyncio.sleep(0.35)
        with pytest.raises(AuthenticationFailed) as caught:
            await server.licenses.authenticate(key)
        assert caught.value.status == 401 and caught.value.code == "license_disabled"

        await cli.licenses.set_enabled("alice", True)
        _, new_key = await cli.licenses.rotate("alice")
        await asyncio.sleep(0.35)
        assert await server.licenses.authenticate(key) is None
        found = await server.licenses.authenticate(new_key)
        assert found is not None and found.id == lic.id and found.enabled
    finally:
        await server.close()
        await cli.close()


async def test_concurrent_cache_misses_share_one_lookup(sqlite_store: Store) -> None:
    _, key = await sqlite_store.licenses.create(name="alice")
    queries: list[str] = []
    sa.event.listen(
        sqlite_store.database.engine.sync_engine,
        "before_cursor_execute",
        lambda *args: queries.append(args[2]),
    )
    found = await asyncio.gather(*(sqlite_store.licenses.authenticate(key) for _ in range(50)))
    assert len({f.id for f in found if f}) == 1
    assert len([q for q in queries if "FROM licenses" in q]) == 1


async def test_rotate_changes_the_key_of_the_same_license(any_store: Store) -> None:
    lic, old = await any_store.licenses.create(name="alice", rpm=5)
    rotated, new = await any_store.licenses.rotate(lic.id)
    assert new != old and KEY_SHAPE.match(new)
    assert rotated.id == lic.id and rotated.rpm == 5 and rotated.key_prefix == new[:11]
    assert await any_store.licenses.authenticate(old) is None
    assert (await any_store.licenses.authenticate(new)) == rotated


async def test_get_by_id_name_or_prefix_update_and_delete(any_store: Store) -> None:
    lic, key = await any_store.licenses.create(name="alice")
    for ref in (lic.id, "alice", lic.key_prefix):
        assert (await any_store.licenses.get(ref)).id == lic.id
    updated = await any_store.licenses.update(
        "alice", name="alice2", quota=1000, quota_period="month", networks=["10.1.2.3/8"]
    )
    assert updated.name == "alice2" and updated.quota == 1000 and updated.quota_period == "month"
    assert updated.networks == ("10.0.0.0/8",)
    assert updated.updated_at >= lic.updated_at
    assert [x.name for x in await any_store.licenses.list()] == ["alice2"]
    await any_store.licenses.delete("alice2")
    with pytest.raises(NotFound):
        await any_store.licenses.get("alice2")
    assert await any_store.licenses.authenticate(key) is None


async def test_names_are_unique(any_store: Store) -> None:
    await any_store.licenses.create(name="alice")
    with pytest.raises(InvalidRequest, match="already exists"):
        await any_store.licenses.create(name="alice")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"rpm": -1}, id="negative-rpm"),
        pytest.param({"quota_period": "week"}, id="period"),
        pytest.param({"networks": ["not-a-cidr"]}, id="network"),
        pytest.param({"models": "gemini-*"}, id="models-not-a-list"),
        pytest.param({"colour": "red"}, id="unknown-field"),
        pytest.param({"name": " "}, id="blank-name"),
    ],
)
async def test_invalid_fields_are_refused(sqlite_store: Store, fields: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        await sqlite_store.licenses.create(**{"name": "x", **fields})  # type: ignore[arg-type]


async def test_expired_license_is_refused_with_401(sqlite_store: Store) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    _, key = await sqlite_store.licenses.create(name="old", expires_at=past)
    with pytest.raises(AuthenticationFailed) as caught:
        await sqlite_store.licenses.authenticate(key)
    assert caught.value.code == "license_expired"


@pytest.mark.parametrize(
    ("patterns", "model", "allowed"),
    [
        pytest.param((), "gemini-2.5-pro", True, id="no-patterns-allow-all"),
        pytest.param(("gemini-2.5-*",), "gemini-2.5-flash", True, id="glob"),
        pytest.param(("gemini-2.5-*",), "models/gemini-2.5-flash", True, id="models-prefix"),
        pytest.param(("gemini-2.5-*",), "gemini-3-pro-preview", False, id="other-family"),
        pytest.param(("gemini-2.5-flash",), "gemini-2.5-flash-lite", False, id="exact"),
        pytest.param(("gemini-2.5-flash", "imagen-*"), "imagen-4.0-generate-001", True, id="any"),
    ],
)
def test_check_model(patterns: tuple[str, ...], model: str, allowed: bool) -> None:
    lic = _license(models=patterns)
    if allowed:
        lic.check(model, "127.0.0.1")
    else:
        with pytest.raises(PermissionDenied) as caught:
            lic.check(model, "127.0.0.1")
        assert caught.value.status == 403 and model in caught.value.message
        assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("networks", "ip", "allowed"),
    [
        pytest.param((), "203.0.113.9", True, id="any"),
        pytest.param(("10.0.0.0/8",), "10.20.30.40", True, id="inside"),
        pytest.param(("10.0.0.0/8",), "192.168.1.1", False, id="outside"),
        pytest.param(("10.0.0.0/8",), "::ffff:10.0.0.1", True, id="v4-mapped-v6"),
        pytest.param(("2001:db8::/32",), "2001:db8::1", True, id="v6"),
        pytest.param(("10.0.0.0/8",), "", False, id="unknown-address"),
    ],
)
def test_check_network(networks: tuple[str, ...], ip: str, allowed: bool) -> None:
    lic = _license(networks=networks)
    if allowed:
        lic.check("gemini-2.5-flash", ip)
    else:
        with pytest.raises(PermissionDenied) as caught:
            lic.check("gemini-2.5-flash", ip)
        assert caught.value.code == "network_not_allowed"


def test_check_disabled_and_expired() -> None:
    with pytest.raises(AuthenticationFailed):
        _license(enabled=False).check("gemini-2.5-flash", "127.0.0.1")
    with pytest.raises(AuthenticationFailed):
        _license(expires_at=datetime.now(UTC) - timedelta(seconds=1)).check("m", "127.0.0.1")
    _license(expires_at=datetime.now(UTC) + timedelta(days=1)).check("m", "127.0.0.1")


def test_to_dict_never_holds_the_key() -> None:
    data = _license(rpm=3).to_dict()
    assert data["object"] == "license" and data["redacted_value"] == "gg-abcdefgh…"
    assert "key" not in data and "key_hash" not in data


async def test_limits_must_fit_their_columns(sqlite_store: Store) -> None:
    with pytest.raises(InvalidRequest):
        await sqlite_store.licenses.create(name="x", tpm=2**31)
    lic, _ = await sqlite_store.licenses.create(name="y", quota=2**40, tpm=0)
    assert lic.quota == 2**40 and lic.tpm is None  # 0 means no limit
