"""Where upstream key state lives outside one process, and how people see it.

Without Redis, a gateway keeps its keys' state (cool-downs, disabled flags, last error, counters)
in ``FileKeyState``: the in-process dict, mirrored to a small JSON file in the data dir. The CLI
on the same box reads that file for ``key list`` and writes it for ``key enable``/``disable``,
and the gateway re-reads it when it changes (the pool asks at most once a second), so an operator's
change reaches a running gateway within a second, as it does through Redis across replicas. The
file holds key ids only, never a key.

``key_state_for(settings)`` picks the backend (Redis when configured, else the file) and
``describe_keys`` merges stored keys, keys from the environment and their state into the one
shape ``key list --json`` and ``GET /admin/v1/upstream_keys`` answer with.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from gemini_gateway.config import Settings
from gemini_gateway.store.upstream_keys import (
    UpstreamKeyRecord,
    mask_upstream_key,
    upstream_key_id,
)
from gemini_gateway.upstream.keypool import KeySnapshot, KeyState, KeyStatus

log = logging.getLogger("gemini_gateway.key_state")

STATE_FILE = "upstream_key_state.json"
OPERATOR_REASON = "disabled by an operator"


class FileKeyState:
    """``KeyState`` for one box: a dict in memory, saved to ``path`` on every change and
    reloaded whenever another process (the CLI) rewrote the file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._status: dict[str, KeyStatus] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of what we last read
        self._dirty = False

    def _reload(self) -> None:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        try:
            data = orjson.loads(self._path.read_bytes())
            self._status = {
                str(kid): KeyStatus(**{k: v for k, v in fields.items() if k in _FIELDS})
                for kid, fields in data.get("keys", {}).items()
            }
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring an unreadable key state file: %s", exc)
        self._stamp = stamp

    def _save(self) -> None:
        self._dirty = False
        data = {"keys": {kid: dataclasses.asdict(st) for kid, st in self._status.items()}}
        tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(data))
            os.replace(tmp, self._path)
            info = self._path.stat()
            self._stamp = (info.st_mtime_ns, info.st_size)
        except OSError as exc:  # a read-only data dir must not fail requests
            log.warning("could not save the key state file: %s", exc)

    def _entry(self, key_id: str) -> KeyStatus:
        self._reload()
        return self._status.setdefault(key_id, KeyStatus())

    async def get(self, ids: Sequence[str]) -> dict[str, KeyStatus]:
        if self._dirty:  # counters recorded just before this read: one write for all of them
            self._save()
        self._reload()
        return {i: dataclasses.replace(s) for i in ids if (s := self._status.get(i)) is not None}

    async def cool_down(self, key_id: str, until: float, reason: str) -> None:
        status = self._entry(key_id)
        if until > status.cooling_until:
            status.cooling_until = until
            status.reason = reason
            self._save()

    async def disable(self, key_id: str, reason: str) -> None:
        status = self._entry(key_id)
        status.disabled = True
        status.reason = reason
        self._save()

    async def enable(self, key_id: str) -> None:
        status = self._entry(key_id)
        status.disabled = False
        status.cooling_until = 0.0
        status.reason = None
        self._save()

    async def record(
        self, key_id: str, *, successes: int = 0, failures: int = 0, error: str | None = None
    ) -> None:
        if not (successes or failures or error is not None):
            return
        status = self._entry(key_id)
        status.successes += successes
        status.failures += failures
        if error is not None:
            status.last_error = error
        self._dirty = True  # saved by the next get(), which the pool calls right after

    async def close(self) -> None:
        if self._dirty:
            self._save()


_FIELDS = {f.name for f in dataclasses.fields(KeyStatus)}


def key_state_for(settings: Settings) -> Any:
    """The key state every process of this deployment shares: Redis, else the data dir's file."""
    if settings.redis_url:
        from gemini_gateway.store.redis_keystate import RedisKeyState

        return RedisKeyState.from_url(str(settings.redis_url))
    return FileKeyState(settings.data_path / STATE_FILE)


def snapshot_of(key_id: str, status: KeyStatus | None, now: float | None = None) -> KeySnapshot:
    """One key's state as people read it: healthy, cooling (until when, why) or disabled."""
    now = time.time() if now is None else now
    st = status or KeyStatus()
    if st.disabled:
        state = "disabled"
    elif st.cooling_until > now:
        state = "cooling"
    else:
        state = "healthy"
    return KeySnapshot(
        id=key_id,
        state=state,
        cooling_until=st.cooling_until if state == "cooling" else None,
        reason=st.reason if state != "healthy" else None,
        last_error=st.last_error,
        successes=st.successes,
        failures=st.failures,
    )


async def read_snapshots(state: KeyState, ids: Sequence[str]) -> dict[str, KeySnapshot]:
    """Every key's snapshot from a shared state; an unreachable state reads as unknown (empty)."""
    try:
        statuses = await state.get(list(ids))
    except Exception as exc:  # the state's own errors: show the keys without it
        log.warning("key state unavailable: %s", exc)
        return {}
    now = time.time()
    return {kid: snapshot_of(kid, statuses.get(kid), now) for kid in ids}


def describe_keys(
    records: Iterable[UpstreamKeyRecord],
    env_secrets: Iterable[str],
    snapshots: dict[str, KeySnapshot],
) -> list[dict[str, Any]]:
    """Stored keys then environment keys (each once), with their state; never a secret."""
    out: list[dict[str, Any]] = []
    stored: set[str] = set()
    for record in records:
        stored.add(record.id)
        out.append({**record.to_dict(), "source": "database"})
    for secret in env_secrets:
        kid = upstream_key_id(secret)
        if kid in stored:
            continue
        stored.add(kid)
        out.append({"id": kid, "object": "upstream_key", "redacted_value":
                    mask_upstream_key(secret), "enabled": True, "created_at": None,
                    "updated_at": None, "note": "", "source": "env"})  # fmt: skip
    for item in out:
        snap = snapshots.get(item["id"]) or snapshot_of(item["id"], None)
        state, reason = snap.state, snap.reason
        if item["source"] == "env" and state == "disabled" and reason == OPERATOR_REASON:
            item["enabled"] = False  # an env key can only be switched off in the shared state
        if not item["enabled"]:
            state, reason = "disabled", OPERATOR_REASON
        item.update(
            state=state,
            cooling_until=int(snap.cooling_until) if snap.cooling_until else None,
            reason=reason,
            last_error=snap.last_error,
            successes=snap.successes,
            failures=snap.failures,
        )
    return out
