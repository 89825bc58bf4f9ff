"""Upstream keys in the database: ids, masking, enabled secrets for the pool."""

from __future__ import annotations

import hashlib

import pytest

from gemini_gateway.errors import InvalidRequest, NotFound
from gemini_gateway.store.database import Store
from gemini_gateway.store.upstream_keys import mask_upstream_key, upstream_key_id

KEY_A = "AIzaSyA-test-key-aaaaaaaaaaaaaaaaaaaawxyz"
KEY_B = "AIzaSyB-test-key-bbbbbbbbbbbbbbbbbbbb1234"


def test_id_and_mask() -> None:
    assert upstream_key_id(KEY_A) == "k-" + hashlib.sha256(KEY_A.encode()).hexdigest()[:8]
    assert mask_upstream_key(KEY_A) == "AIza…wxyz"
    assert mask_upstream_key("short") == "…rt"


async def test_add_list_disable_enable_remove(any_store: Store) -> None:
    keys = any_store.upstream_keys
    a = await keys.add(KEY_A, note="project a")
    b = await keys.add(f"  {KEY_B}\n")
    assert (a.id, a.masked, a.enabled, a.note) == (upstream_key_id(KEY_A), "AIza…wxyz", True,
                                                   "project a")  # fmt: skip
    assert [r.id for r in await keys.list()] == [a.id, b.id]
    assert await keys.list_secrets() == [KEY_A, KEY_B]
    assert not (await keys.set_enabled(a.id, False)).enabled
    assert await keys.list_secrets() == [KEY_B]
    assert (await keys.get(a.id)).enabled is False
    await keys.set_enabled(a.id, True)
    assert await keys.secret(a.id) == KEY_A
    await keys.remove(b.id)
    assert await keys.list_secrets() == [KEY_A]
    with pytest.raises(NotFound):
        await keys.remove(b.id)


async def test_records_never_hold_the_secret(sqlite_store: Store) -> None:
    record = await sqlite_store.upstream_keys.add(KEY_A)
    assert KEY_A not in repr(record) and KEY_A not in str(record.to_dict())


@pytest.mark.parametrize("bad", ["", "   ", "two keys", "x" * 600])
async def test_bad_keys_are_refused(sqlite_store: Store, bad: str) -> None:
    with pytest.raises(InvalidRequest):
        await sqlite_store.upstream_keys.add(bad)


async def test_duplicates_are_refused(sqlite_store: Store) -> None:
    await sqlite_store.upstream_keys.add(KEY_A)
    with pytest.raises(InvalidRequest, match="already stored"):
        await sqlite_store.upstream_keys.add(KEY_A)
