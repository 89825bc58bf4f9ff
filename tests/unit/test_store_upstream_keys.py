"""Upstream keys in the database: ids, masking, enabled secrets for the pool."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from gemini_gateway.errors import InvalidRequest, NotFound
from gemini_gateway.store.database import Store
from gemini_gateway.store.key_cipher import KeyCipher, UnreadableKey
from gemini_gateway.store.upstream_keys import KeyUnreadable, mask_upstream_key, upstream_key_id
from tests.fixtures.store import store_settings

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


# --- encryption at rest (GEMINI_GATEWAY_KEY_ENCRYPTION_SECRET) ------------------------------

SECRET = "a-long-random-operator-secret-0123456789"


async def _raw_secrets(store: Store) -> list[str]:
    """What the database itself holds, read past the store's own methods."""
    async with store.database.read() as conn:
        rows = await conn.execute(sa.text("SELECT secret FROM upstream_keys ORDER BY created_at"))
        return [r[0] for r in rows]


async def test_keys_are_stored_encrypted_with_a_secret(tmp_path: Path) -> None:
    store = await Store.open(store_settings(tmp_path / "data", key_encryption_secret=SECRET))
    try:
        record = await store.upstream_keys.add(KEY_A)
        (raw,) = await _raw_secrets(store)
        assert raw.startswith("enc1:") and KEY_A not in raw and "wxyz" not in raw
        assert record.masked == "AIza…wxyz" and record.id == upstream_key_id(KEY_A)
        assert await store.upstream_keys.list_secrets() == [KEY_A]
        assert await store.upstream_keys.secret(record.id) == KEY_A
    finally:
        await store.close()


async def test_plain_keys_are_encrypted_when_the_secret_is_set(tmp_path: Path) -> None:
    plain = await Store.open(store_settings(tmp_path / "data"))
    await plain.upstream_keys.add(KEY_A)
    await plain.upstream_keys.add(KEY_B)
    assert await _raw_secrets(plain) == [KEY_A, KEY_B]
    await plain.close()
    store = await Store.open(store_settings(tmp_path / "data", key_encryption_secret=SECRET))
    try:
        raw = await _raw_secrets(store)
        assert all(r.startswith("enc1:") for r in raw) and KEY_A not in str(raw)
        assert await store.upstream_keys.list_secrets() == [KEY_A, KEY_B]
    finally:
        await store.close()


@pytest.mark.parametrize("other", ["", "another-secret-entirely-9876543210"])
async def test_without_the_secret_encrypted_keys_are_skipped_not_leaked(
    tmp_path: Path, other: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(store_settings(tmp_path / "data", key_encryption_secret=SECRET))
    key_id = (await store.upstream_keys.add(KEY_A)).id
    await store.close()
    store = await Store.open(store_settings(tmp_path / "data", key_encryption_secret=other))
    try:
        keys = store.upstream_keys
        assert await keys.list_secrets() == []  # the pool goes on with the keys it can read
        assert key_id in caplog.text and "skipped" in caplog.text
        (record,) = await keys.list()
        assert record.id == key_id and record.masked == "(encrypted, unreadable here)"
        with pytest.raises(KeyUnreadable) as caught:
            await keys.secret(key_id)
        assert caught.value.status == 409 and "enc1:" not in caught.value.message
        await keys.add(KEY_B)  # new keys still work
        assert len(await keys.list()) == 2
    finally:
        await store.close()


def test_a_cipher_round_trips_and_tokens_differ() -> None:
    cipher = KeyCipher(SECRET)
    first, second = cipher.encrypt(KEY_A), cipher.encrypt(KEY_A)
    assert first != second  # a fresh IV each time: equal keys do not show as equal rows
    assert cipher.decrypt(first) == cipher.decrypt(second) == KEY_A
    with pytest.raises(UnreadableKey):
        KeyCipher("not-the-same-secret-at-all").decrypt(first)
