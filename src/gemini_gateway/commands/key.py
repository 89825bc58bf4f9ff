"""``gemini-gateway key``: upstream Gemini API keys kept in the database.

Keys from GEMINI_GATEWAY_UPSTREAM_KEYS are listed and checked too (source ``env``) but can only be
changed where they are set. Keys are shown as their id and a masked form, never whole.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from gemini_gateway.commands._output import (
    DefaultGroup,
    echo_json,
    echo_table,
    json_option,
    with_store,
)
from gemini_gateway.config import Settings, load_settings
from gemini_gateway.store.database import Store
from gemini_gateway.store.key_state import (
    OPERATOR_REASON,
    describe_keys,
    key_state_for,
    read_snapshots,
)
from gemini_gateway.store.upstream_keys import UpstreamKeyRecord, mask_upstream_key, upstream_key_id


@dataclass(frozen=True)
class KeyCheck:
    id: str
    masked: str
    source: str
    ok: bool
    detail: str


async def check_upstream_keys(settings: Settings, secrets: list[str]) -> list[tuple[bool, str]]:
    """Ask Gemini about each key through the gateway's own upstream client (never raises)."""
    from gemini_gateway.upstream.client import UpstreamClient
    from gemini_gateway.upstream.keypool import KeyPool

    client = UpstreamClient(settings, KeyPool(secrets))
    try:
        return list(await asyncio.gather(*(client.check_key(secret) for secret in secrets)))
    finally:
        await client.close()


@click.group(cls=DefaultGroup)
def key() -> None:
    """Manage the upstream Gemini API keys stored in the database.

    Example: gemini-gateway key add --note 'project a'   (prompts for the key)
    """


def _echo_record(record: UpstreamKeyRecord | dict[str, Any], as_json: bool, verb: str) -> None:
    data = record.to_dict() if isinstance(record, UpstreamKeyRecord) else record
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{verb} upstream key {data['id']} ({data['redacted_value']}).")


@key.command("list")
@json_option
def list_keys(as_json: bool) -> None:
    """List upstream keys (database and environment) with their state: healthy, cooling down
    (until when, why) or disabled (why), last error, successes and failures."""
    settings = load_settings()

    async def work(store: Store) -> list[dict[str, Any]]:
        records = await store.upstream_keys.list()
        env = settings.upstream_key_list
        ids = [r.id for r in records] + [upstream_key_id(s) for s in env]
        state = key_state_for(settings)
        try:
            snapshots = await read_snapshots(state, ids)
        finally:
            await state.close()
        return describe_keys(records, env, snapshots)

    data = with_store(work)
    if as_json:
        echo_json({"object": "list", "data": data})
        return
    rows = [
        (
            d["id"],
            d["redacted_value"],
            d["source"],
            "yes" if d["enabled"] else "no",
            _state_text(d),
            d["last_error"],
            d["successes"],
            d["failures"],
            d["note"],
        )
        for d in data
    ]
    echo_table(
        rows, ("ID", "KEY", "SOURCE", "ENABLED", "STATE", "LAST ERROR", "OK", "FAILED", "NOTE")
    )


def _state_text(item: dict[str, Any]) -> str:
    """``healthy``, ``cooling until 14:05:00 UTC (rate-limited)``, ``disabled (why)``."""
    text = str(item["state"])
    if item["cooling_until"]:
        until = datetime.fromtimestamp(item["cooling_until"], UTC)
        text += f" until {until:%Y-%m-%d %H:%M:%S} UTC"
    if item["reason"]:
        text += f" ({item['reason']})"
    return text


async def _set_key_state(settings: Settings, key_id: str, enabled: bool) -> None:
    """Tell the shared key state (Redis or the data dir's file) so running gateways follow."""
    state = key_state_for(settings)
    try:
        if enabled:
            await state.enable(key_id)
        else:
            await state.disable(key_id, OPERATOR_REASON)
    finally:
        await state.close()


def _set_enabled(key_id: str, enabled: bool) -> UpstreamKeyRecord | dict[str, Any]:
    """A stored key: its flag in the database; any key (env ones too): its shared state."""
    settings = load_settings()

    async def work(store: Store) -> UpstreamKeyRecord | dict[str, Any]:
        env = {upstream_key_id(s): s for s in settings.upstream_key_list}
        if key_id in env and key_id not in {r.id for r in await store.upstream_keys.list()}:
            await _set_key_state(settings, key_id, enabled)
            return describe_keys([], [env[key_id]], {})[0] | {"enabled": enabled}
        result = await store.upstream_keys.set_enabled(key_id, enabled)
        await _set_key_state(settings, key_id, enabled)
        return result

    return with_store(work)


@key.command("add")
@click.argument("secret", required=False)
@click.option("--note", default="", help="Free-form note, e.g. the Google project.")
@json_option
def add(secret: str | None, note: str, as_json: bool) -> None:
    """Store an upstream key (prompted for, hidden, when not given; '-' reads stdin).

    Example: gemini-gateway key add --note 'project a'
    """
    if secret == "-":
        secret = sys.stdin.readline().strip()
    elif secret is None:
        secret = click.prompt("Gemini API key", hide_input=True)
    record = with_store(lambda store: store.upstream_keys.add(secret or "", note=note))
    _echo_record(record, as_json, "Added")


@key.command("disable")
@click.argument("key_id")
@json_option
def disable(key_id: str, as_json: bool) -> None:
    """Stop using a key (stored or from the environment); running gateways follow within
    seconds."""
    _echo_record(_set_enabled(key_id, False), as_json, "Disabled")


@key.command("enable")
@click.argument("key_id")
@json_option
def enable(key_id: str, as_json: bool) -> None:
    """Use a key again, clearing any disabled flag or cool-down the gateway set on it."""
    _echo_record(_set_enabled(key_id, True), as_json, "Enabled")


@key.command("remove")
@click.argument("key_id")
@json_option
def remove(key_id: str, as_json: bool) -> None:
    """Delete a stored key."""
    record = with_store(lambda store: store.upstream_keys.remove(key_id))
    _echo_record(record, as_json, "Removed")


@key.command("check")
@click.argument("key_ids", nargs=-1)
@json_option
def check(key_ids: tuple[str, ...], as_json: bool) -> None:
    """Ask Gemini whether keys work (all enabled keys when no id is given); exit 1 if any fails."""
    settings = load_settings()

    async def work(store: Store) -> list[KeyCheck]:
        keys: dict[str, tuple[str, str]] = {}  # id -> (secret, source)
        for secret in settings.upstream_key_list:
            keys[upstream_key_id(secret)] = (secret, "env")
        for secret in await store.upstream_keys.list_secrets():
            keys[upstream_key_id(secret)] = (secret, "database")
        if key_ids:
            for key_id in key_ids:
                if key_id not in keys:
                    keys[key_id] = (await store.upstream_keys.secret(key_id), "database")
            chosen = {key_id: keys[key_id] for key_id in key_ids}
        else:
            chosen = keys
        results = await check_upstream_keys(settings, [secret for secret, _ in chosen.values()])
        return [
            KeyCheck(key_id, mask_upstream_key(secret), source, ok, detail)
            for (key_id, (secret, source)), (ok, detail) in zip(
                chosen.items(), results, strict=True
            )
        ]

    checks = with_store(work)
    if as_json:
        echo_json(
            {
                "object": "list",
                "data": [
                    {
                        "id": c.id,
                        "redacted_value": c.masked,
                        "source": c.source,
                        "ok": c.ok,
                        "detail": c.detail,
                    }
                    for c in checks
                ],  # fmt: skip
            }
        )
    elif not checks:
        click.echo("No upstream keys configured.")
    else:
        echo_table(
            [(c.id, c.masked, c.source, "ok" if c.ok else "FAILED", c.detail) for c in checks],
            ("ID", "KEY", "SOURCE", "RESULT", "DETAIL"),
        )
    if any(not c.ok for c in checks):
        sys.exit(1)
