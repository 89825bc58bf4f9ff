"""GeneratedFiles: stored bytes come back unchanged, ids are unguessable, expiry is enforced."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

import pytest

from gemini_gateway.media.generated import GeneratedFiles, is_file_id

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def test_save_and_open_round_trip(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path / "files", ttl=60)
    file_id = files.save("image/png", PNG)
    found = files.open(file_id)
    assert found is not None
    path, mime = found
    assert mime == "image/png"
    assert path.read_bytes() == PNG
    assert path.parent == tmp_path / "files"


@pytest.mark.parametrize("alphabet", ["standard", "urlsafe", "unpadded"])
def test_save_b64_decodes_any_base64_alphabet(tmp_path: Path, alphabet: str) -> None:
    data = bytes(range(250, 256)) * 10 + b"\xfb\xff"  # encodes with + and / (or - and _)
    text = (base64.urlsafe_b64encode(data) if alphabet != "standard"
            else base64.b64encode(data)).decode()
    if alphabet == "unpadded":
        text = text.rstrip("=")
    files = GeneratedFiles(tmp_path, ttl=60)
    found = files.open(files.save_b64("audio/wav", text))
    assert found is not None and found[0].read_bytes() == data


def test_ids_are_unguessable_and_distinct(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=60)
    ids = {files.save("image/png", PNG) for _ in range(50)}
    assert len(ids) == 50
    for file_id in ids:
        assert len(file_id) == 32 and is_file_id(file_id)  # 24 random bytes


@pytest.mark.parametrize(
    "bad",
    ["", "../etc/passwd", "..%2F..%2Fgateway.db", "a" * 31, "a" * 33, "a" * 31 + "/",
     "a" * 31 + ".", "gateway.db", "a" * 27 + ".json"],
)
def test_open_refuses_ids_outside_the_charset(tmp_path: Path, bad: str) -> None:
    files = GeneratedFiles(tmp_path / "files", ttl=60)
    (tmp_path / "gateway.db").write_bytes(b"secret")
    assert files.open(bad) is None


def test_unknown_id_is_none(tmp_path: Path) -> None:
    assert GeneratedFiles(tmp_path, ttl=60).open("A" * 32) is None


def test_expired_file_is_not_served_and_pruned(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=0.05)
    file_id = files.save("image/png", PNG)
    assert files.open(file_id) is not None
    time.sleep(0.1)
    assert files.open(file_id) is None
    assert files.prune() == 2  # the bytes and the metadata
    assert list(tmp_path.iterdir()) == []


def test_prune_keeps_live_files_and_removes_old_strays(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=3600)
    live = files.save("image/png", PNG)
    stray = tmp_path / ("S" * 32)  # bytes whose metadata was never written (a crash)
    stray.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stray, (old, old))
    assert files.prune() == 1
    assert not stray.exists()
    assert files.open(live) is not None


def test_metadata_records_expiry(tmp_path: Path) -> None:
    files = GeneratedFiles(tmp_path, ttl=100)
    before = time.time()
    file_id = files.save("audio/wav", b"RIFF")
    meta = json.loads((tmp_path / f"{file_id}.json").read_text())
    assert meta["mime"] == "audio/wav"
    assert before + 99 < meta["expires"] < time.time() + 101
    assert files.metadata(file_id) == ("audio/wav", meta["expires"])


def test_save_inside_a_loop_prunes_in_the_background(tmp_path: Path) -> None:
    async def scenario() -> None:
        files = GeneratedFiles(tmp_path, ttl=0.01)
        first = files.save("image/png", PNG)  # starts the first prune
        await asyncio.sleep(0.05)
        files._next_prune = 0.0  # the interval has passed
        files.save("image/png", PNG)  # prunes the expired first file off the loop
        assert files._pruning is not None
        assert await files._pruning >= 2
        assert not (tmp_path / first).exists()

    asyncio.run(scenario())
