"""Generated images and audio, kept on disk for a while and served at ``/gemini/v1/files/{id}``.

A generated file is two files in the folder: ``{id}`` (the bytes) and ``{id}.json`` (its MIME type
and expiry, unix seconds). The id is ``secrets.token_urlsafe(24)``: 192 random bits, so a link is
its own credential and serving it needs no license (as a signed URL would). Files live on disk,
not in memory, so links survive a restart and replicas sharing the data dir serve each other's.

Writes are atomic (temp file, then ``os.replace``; metadata last, so a half-written file is never
served). Expired files are deleted by ``prune()``, which ``save`` starts in a worker thread at most
once a minute; ``open`` refuses an expired file even before it is pruned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import secrets
import tempfile
import time
from pathlib import Path

log = logging.getLogger("gemini_gateway.media")

_ID = re.compile(r"[A-Za-z0-9_-]{32}")  # token_urlsafe(24): 24 bytes → 32 characters
_META = ".json"
PRUNE_INTERVAL = 60.0


def is_file_id(text: str) -> bool:
    """True for a string shaped like one of our ids: no path separators, no dots."""
    return bool(_ID.fullmatch(text))


class GeneratedFiles:
    """Stores generated media under ``directory`` for ``ttl`` seconds."""

    def __init__(self, directory: Path, ttl: float) -> None:
        self.directory = Path(directory)
        self.ttl = float(ttl)
        self._next_prune = 0.0
        self._pruning: asyncio.Future[int] | None = None

    def save_b64(self, mime: str, data_b64: str) -> str:
        """Store base64 data (standard or URL-safe alphabet); returns the new file's id."""
        return self.save(mime, _decode_base64(data_b64))

    def save(self, mime: str, data: bytes) -> str:
        """Store bytes; returns an unguessable id. Synchronous: files are small and local."""
        self.directory.mkdir(parents=True, exist_ok=True)
        file_id = secrets.token_urlsafe(24)
        expires = time.time() + self.ttl
        self._write(self.directory / file_id, data)
        meta = json.dumps({"mime": mime, "expires": expires}).encode()
        self._write(self.directory / (file_id + _META), meta)
        self._prune_soon()
        return file_id

    def open(self, file_id: str) -> tuple[Path, str] | None:
        """(path, MIME type) of a stored, unexpired file; None when unknown or expired."""
        meta = self.metadata(file_id)
        if meta is None:
            return None
        path = self.directory / file_id
        if not path.is_file():
            return None
        return path, meta[0]

    def metadata(self, file_id: str) -> tuple[str, float] | None:
        """(MIME type, expiry in unix seconds) of an unexpired file, else None."""
        if not is_file_id(file_id):
            return None
        try:
            meta = json.loads((self.directory / (file_id + _META)).read_bytes())
            mime, expires = str(meta["mime"]), float(meta["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if expires <= time.time():
            return None
        return mime, expires

    def prune(self) -> int:
        """Delete expired files (and strays left by a crash); returns how many files went."""
        now = time.time()
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        names = {entry.name for entry in entries}
        for entry in entries:
            name = entry.name
            if name.endswith(_META) and is_file_id(name[: -len(_META)]):
                try:
                    expires = float(json.loads(Path(entry.path).read_bytes())["expires"])
                except (OSError, ValueError, KeyError, TypeError):
                    expires = 0.0
                if expires <= now:
                    removed += _unlink(self.directory / name[: -len(_META)])
                    removed += _unlink(Path(entry.path))
            elif is_file_id(name) and name + _META not in names:
                # Bytes without metadata: a crash between the two writes; give it a grace period.
                if _older_than(entry, now - 3600):
                    removed += _unlink(Path(entry.path))
            elif name.startswith(".tmp-") and _older_than(entry, now - 3600):
                removed += _unlink(Path(entry.path))
        return removed

    def _prune_soon(self) -> None:
        """Start ``prune`` in a worker thread, at most once per PRUNE_INTERVAL."""
        now = time.monotonic()
        if now < self._next_prune or (self._pruning is not None and not self._pruning.done()):
            return
        self._next_prune = now + PRUNE_INTERVAL
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.prune()  # no loop (a script or a test): prune inline
            return
        self._pruning = loop.run_in_executor(None, self.prune)
        self._pruning.add_done_callback(_log_prune_failure)

    def _write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise


def _decode_base64(data: str) -> bytes:
    data = data.strip()
    padded = data + "=" * (-len(data) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(padded)


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _older_than(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.stat().st_mtime < cutoff
    except OSError:
        return False


def _log_prune_failure(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("pruning generated files failed", exc_info=future.exception())
