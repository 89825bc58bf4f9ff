"""``gemini-gateway key …``: stored upstream keys, never printed whole; ``check`` over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from gemini_gateway.cli import main
from gemini_gateway.store.upstream_keys import upstream_key_id

GOOD = "AIzaSyGOOD-key-for-tests-000000000000good"
BAD = "AIzaSyBAD-key-for-tests-0000000000000bad1"
ENV_KEY = "AIzaSyENV-key-for-tests-000000000000envk"


def _runner(tmp_path: Path, base_url: str = "http://127.0.0.1:9") -> CliRunner:
    return CliRunner(
        env={"GEMINI_GATEWAY_DATA_DIR": str(tmp_path / "data"), "GEMINI_GATEWAY_DATABASE_URL": None,
             "GEMINI_GATEWAY_CONFIG": None, "GEMINI_GATEWAY_UPSTREAM_KEYS": ENV_KEY,
             "GEMINI_GATEWAY_UPSTREAM_BASE_URL": base_url, "GEMINI_GATEWAY_UPSTREAM_PROXY": None}
    )  # fmt: skip


def run(cli: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = cli.invoke(main, ["key", *args], input=stdin)
    assert result.exit_code == code, (result.output, result.exception)
    for secret in (GOOD, BAD, ENV_KEY):
        assert secret not in result.output
    return result


def test_add_list_disable_enable_remove(tmp_path: Path) -> None:
    cli = _runner(tmp_path)
    assert "Added upstream key " + upstream_key_id(GOOD) in run(cli, "add", GOOD).output
    run(cli, "add", "-", "--note", "from stdin", stdin=BAD + "\n")
    run(cli, "add", stdin=GOOD + "\n", code=1)  # prompted (hidden); already stored
    table = run(cli).output
    assert "AIza…good" in table and "AIza…bad1" in table and "AIza…envk" in table
    data = orjson.loads(run(cli, "list", "--json").output)["data"]
    assert [(d["id"], d["source"]) for d in data] == [
        (upstream_key_id(GOOD), "database"), (upstream_key_id(BAD), "database"),
        (upstream_key_id(ENV_KEY), "env"),
    ]  # fmt: skip
    assert data[1]["note"] == "from stdin"
    bad_id = upstream_key_id(BAD)
    assert orjson.loads(run(cli, "disable", bad_id, "--json").output)["enabled"] is False
    assert orjson.loads(run(cli, "enable", bad_id, "--json").output)["enabled"] is True
    run(cli, "remove", bad_id)
    assert "No upstream key" in run(cli, "remove", bad_id, code=1).output


@pytest.fixture
async def fake_gemini() -> AsyncIterator[tuple[str, list[str]]]:
    """GET /v1beta/models answering as Gemini does for a good and an invalid key."""
    seen: list[str] = []

    async def models(request: web.Request) -> web.Response:
        key = request.headers.get("x-goog-api-key", "")
        seen.append(key)
        if key in (GOOD, ENV_KEY):
            return web.json_response({"models": [{"name": "models/gemini-2.5-flash"}]})
        return web.json_response(
            {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                       "status": "INVALID_ARGUMENT",
                       "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}},
            status=400,
        )  # fmt: skip

    app = web.Application()
    app.router.add_get("/v1beta/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_check_asks_upstream_for_each_key(
    tmp_path: Path, fake_gemini: tuple[str, list[str]]
) -> None:
    base_url, seen = fake_gemini
    cli = _runner(tmp_path, base_url)
    await asyncio.to_thread(run, cli, "add", GOOD)
    result = await asyncio.to_thread(run, cli, "check", "--json")
    data = {d["id"]: d for d in orjson.loads(result.output)["data"]}
    assert data[upstream_key_id(GOOD)]["ok"] and data[upstream_key_id(ENV_KEY)]["ok"]
    assert sorted(seen) == sorted([GOOD, ENV_KEY])

    await asyncio.to_thread(run, cli, "add", BAD)
    result = await asyncio.to_thread(run, cli, "check", upstream_key_id(BAD), code=1)
    assert "FAILED" in result.output and "API key not valid" in result.output


def test_check_reports_an_unreachable_upstream(tmp_path: Path) -> None:
    cli = _runner(tmp_path, "http://127.0.0.1:9")  # discard port: connection refused
    result = run(cli, "check", "--json", code=1)
    assert [d["ok"] for d in orjson.loads(result.output)["data"]] == [False]
