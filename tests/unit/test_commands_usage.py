"""``gemini-gateway usage``: totals from the ledger, as a table or JSON."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from click.testing import CliRunner

from gemini_gateway.cli import main
from gemini_gateway.store.database import Store
from gemini_gateway.store.ledger import LedgerEntry
from tests.fixtures.store import store_settings


async def _seed(data_dir: Path) -> None:
    now = datetime.now(UTC)
    store = await Store.open(store_settings(data_dir))
    try:
        await asyncio.gather(
            store.ledger.record(LedgerEntry(
                request_id="1", model_requested="gemini-2.5-flash", license_id="lic_a",
                license_name="alice", prompt_tokens=10, completion_tokens=4, reasoning_tokens=2,
                cached_tokens=1, created_at=now - timedelta(days=10))),
            store.ledger.record(LedgerEntry(
                request_id="2", model_requested="gemini-2.5-pro", license_id="lic_a",
                license_name="alice", prompt_tokens=100, completion_tokens=40, created_at=now)),
            store.ledger.record(LedgerEntry(
                request_id="3", model_requested="gemini-2.5-pro", license_id="lic_b",
                license_name="bob", status=500, created_at=now)),
        )  # fmt: skip
    finally:
        await store.close()


def _usage(tmp_path: Path, *args: str) -> str:
    cli = CliRunner(
        env={
            "GEMINI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GEMINI_GATEWAY_DATABASE_URL": None,
            "GEMINI_GATEWAY_CONFIG": None,
        }  # fmt: skip
    )
    result = cli.invoke(main, ["usage", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def test_usage_totals_json_and_table(tmp_path: Path) -> None:
    await _seed(tmp_path / "data")

    async def usage(*args: str) -> str:
        return await asyncio.to_thread(_usage, tmp_path, *args)

    (total,) = orjson.loads(await usage("--json"))["data"]
    assert (total["requests"], total["errors"], total["prompt_tokens"]) == (3, 1, 110)
    assert (total["completion_tokens"], total["reasoning_tokens"], total["cached_tokens"]) == (
        44, 2, 1,
    )  # fmt: skip

    by_model = orjson.loads(await usage("--by", "model", "--since", "7d", "--json"))
    assert {d["group"]: d["requests"] for d in by_model["data"]} == {"gemini-2.5-pro": 2}
    assert by_model["by"] == "model" and by_model["since"] is not None

    alice = orjson.loads(await usage("--license", "alice", "--json"))["data"]
    assert alice[0]["total_tokens"] == 154

    table = (await usage("--by", "license")).splitlines()
    assert table[0].split() == ["LICENSE", "REQUESTS", "ERRORS", "PROMPT", "COMPLETION",
                                "REASONING", "CACHED", "TOTAL"]  # fmt: skip
    assert table[1].split() == ["alice", "2", "0", "110", "44", "2", "1", "154"]
    assert table[2].split() == ["bob", "1", "1", "0", "0", "0", "0", "0"]


def test_usage_refuses_a_bad_since(tmp_path: Path) -> None:
    cli = CliRunner(env={"GEMINI_GATEWAY_DATA_DIR": str(tmp_path / "data")})
    result = cli.invoke(main, ["usage", "--since", "last tuesday"])
    assert result.exit_code == 1 and result.output.startswith("Error: since:")
