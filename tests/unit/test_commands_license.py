"""``gemini-gateway license …`` through click's runner against a temp data dir."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from gemini_gateway.cli import main
from gemini_gateway.errors import AuthenticationFailed
from gemini_gateway.store.database import Store
from tests.fixtures.store import store_settings

KEY_SHAPE = re.compile(r"^gg-[A-Za-z0-9_-]{32,}$")


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    return CliRunner(
        env={
            "GEMINI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GEMINI_GATEWAY_DATABASE_URL": None,
            "GEMINI_GATEWAY_CONFIG": None,
        }  # fmt: skip
    )


def run(cli: CliRunner, *args: str, code: int = 0) -> Result:
    result = cli.invoke(main, ["license", *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_create_prints_the_key_as_its_last_line(cli: CliRunner) -> None:
    out = run(cli, "create", "--name", "alice", "--rpm", "60", "--models", "gemini-2.5-*").output
    key = out.strip().splitlines()[-1]
    assert KEY_SHAPE.match(key)
    assert out.count(key) == 1  # shown once, and only there
    listed = run(cli, "list").output
    assert "alice" in listed and key[:11] + "…" in listed and key not in listed


def test_create_with_every_option(cli: CliRunner) -> None:
    out = run(
        cli, "create", "--name", "ci", "--rpm", "10", "--tpm", "10000", "--quota", "500000",
        "--quota-period", "month", "--concurrency", "4", "--models", "gemini-2.5-*,imagen-*",
        "--models", "gemini-3-pro-preview", "--networks", "10.0.0.0/8", "--expires", "30d",
        "--note", "CI runners", "--json",
    ).output  # fmt: skip
    data = orjson.loads(out.strip().splitlines()[-1])
    assert KEY_SHAPE.match(data["key"])
    assert data["models"] == ["gemini-2.5-*", "imagen-*", "gemini-3-pro-preview"]
    assert (data["rpm"], data["tpm"], data["quota"], data["quota_period"], data["concurrency"]) == (
        10, 10000, 500000, "month", 4,
    )  # fmt: skip
    assert data["networks"] == ["10.0.0.0/8"] and data["note"] == "CI runners"
    assert 29 * 86400 < data["expires_at"] - data["created_at"] <= 30 * 86400


def test_list_is_the_default_and_has_json(cli: CliRunner) -> None:
    run(cli, "create", "--name", "alice")
    run(cli, "create", "--name", "bob")
    assert "bob" in cli.invoke(main, ["license"]).output
    listed = orjson.loads(run(cli, "--json").output)
    assert listed["object"] == "list"
    assert [x["name"] for x in listed["data"]] == ["alice", "bob"]
    assert all("key" not in x for x in listed["data"])


def test_show_update_disable_enable_delete(cli: CliRunner) -> None:
    run(cli, "create", "--name", "alice")
    assert "enabled:  yes" in run(cli, "show", "alice").output
    data = orjson.loads(run(cli, "update", "alice", "--tpm", "999", "--note", "x", "--json").output)
    assert data["tpm"] == 999 and data["note"] == "x"
    assert orjson.loads(run(cli, "disable", "alice", "--json").output)["enabled"] is False
    assert orjson.loads(run(cli, "enable", "alice", "--json").output)["enabled"] is True
    assert "Deleted license 'alice'" in run(cli, "delete", "alice", "--yes").output
    assert orjson.loads(run(cli, "list", "--json").output)["data"] == []


def test_rotate_prints_a_new_key_last(cli: CliRunner) -> None:
    old = run(cli, "create", "--name", "alice").output.strip().splitlines()[-1]
    new = run(cli, "rotate", "alice").output.strip().splitlines()[-1]
    assert KEY_SHAPE.match(new) and new != old


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("show", "nobody"), "No license 'nobody'", id="missing"),
        pytest.param(("create", "--name", "a", "--networks", "nope"), "not an address", id="cidr"),
        pytest.param(("create", "--name", "a", "--expires", "soon"), "expires", id="expires"),
        pytest.param(("update", "nobody", "--rpm", "1"), "No license", id="update-missing"),
    ],
)
def test_mistakes_are_one_line_errors(cli: CliRunner, args: tuple[str, ...], message: str) -> None:
    result = run(cli, *args, code=1)
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


async def test_disable_makes_authenticate_fail_after_cache_expiry(
    cli: CliRunner, tmp_path: Path
) -> None:
    out = await asyncio.to_thread(run, cli, "create", "--name", "alice")
    key = out.output.strip().splitlines()[-1]
    server = await Store.open(store_settings(tmp_path / "data"))  # like a running gateway
    try:
        server.licenses.cache_ttl = 0.2
        assert (await server.licenses.authenticate(key)) is not None
        await asyncio.to_thread(run, cli, "disable", "alice")
        await asyncio.sleep(0.25)
        with pytest.raises(AuthenticationFailed):
            await server.licenses.authenticate(key)
    finally:
        await server.close()
