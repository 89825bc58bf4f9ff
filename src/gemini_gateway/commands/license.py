"""``gemini-gateway license``: issue and manage the licenses clients authenticate with."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from gemini_gateway.commands._output import (
    DefaultGroup,
    echo_json,
    echo_table,
    json_option,
    user_errors,
    with_store,
)
from gemini_gateway.store._dates import parse_moment
from gemini_gateway.store.database import Store
from gemini_gateway.store.licenses import QUOTA_PERIODS, License

F = TypeVar("F", bound=Callable[..., Any])


def _limit_options(func: F) -> F:
    """The options ``create`` and ``update`` share."""
    options = [
        click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute (0: none)."),
        click.option("--tpm", type=click.IntRange(min=0), help="Tokens per minute (0: no limit)."),
        click.option("--quota", type=click.IntRange(min=0), help="Token quota (0: no quota)."),
        click.option("--quota-period", type=click.Choice(QUOTA_PERIODS), help="Quota per …"),
        click.option(
            "--concurrency", type=click.IntRange(min=0), help="Concurrent requests (0: no limit)."
        ),
        click.option(
            "--models",
            multiple=True,
            help="Allowed model pattern, e.g. 'gemini-2.5-*' (repeat or comma-separate).",
        ),
        click.option(
            "--networks", multiple=True, help="Allowed client CIDR (repeat or comma-separate)."
        ),
        click.option("--expires", help="Expiry: a date (2026-12-31), a duration (30d) or 'never'."),
        click.option("--note", help="Free-form note."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _changes(**given: Any) -> dict[str, Any]:
    """License fields from the command-line options that were given."""
    changes: dict[str, Any] = {}
    for key in ("name", "rpm", "tpm", "quota", "quota_period", "concurrency", "note"):
        if given.get(key) is not None:
            changes[key] = given[key]
    for key in ("models", "networks"):
        if given.get(key):
            changes[key] = _split(given[key])
    expires = given.get("expires")
    if expires is not None:
        changes["expires_at"] = (
            None
            if expires.strip().lower() in ("never", "none", "")
            else parse_moment(expires, param="expires", future=True)
        )
    return changes


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _limits(lic: License) -> str:
    parts = []
    if lic.rpm:
        parts.append(f"{lic.rpm} rpm")
    if lic.tpm:
        parts.append(f"{lic.tpm} tpm")
    if lic.quota:
        parts.append(f"{lic.quota} tokens/{lic.quota_period}")
    if lic.concurrency:
        parts.append(f"{lic.concurrency} concurrent")
    return ", ".join(parts) or "none"


def _echo_license(lic: License) -> None:
    for label, value in (
        ("id", lic.id),
        ("name", lic.name),
        ("key", lic.redacted_key),
        ("enabled", "yes" if lic.enabled else "no"),
        ("created", _when(lic.created_at)),
        ("updated", _when(lic.updated_at)),
        ("expires", _when(lic.expires_at)),
        ("models", ", ".join(lic.models) or "all"),
        ("networks", ", ".join(lic.networks) or "any"),
        ("limits", _limits(lic)),
        ("note", lic.note or "-"),
    ):
        click.echo(f"{label + ':':10}{value}")


def _echo_new_key(lic: License, plaintext: str, as_json: bool, verb: str) -> None:
    """The key goes on the last line alone, so scripts can ``| tail -1``."""
    if as_json:
        echo_json({**lic.to_dict(), "key": plaintext})
        return
    click.echo(f"{verb} license '{lic.name}' ({lic.id}).", err=False)
    click.echo("Copy the license key now; it is not shown again:")
    click.echo(plaintext)


@click.group(cls=DefaultGroup)
def license() -> None:
    """Issue and manage the licenses clients authenticate with.

    Example: gemini-gateway license create --name alice --rpm 60 --models 'gemini-2.5-*'
    """


@license.command("list")
@json_option
def list_licenses(as_json: bool) -> None:
    """List licenses (keys shown only as their prefix)."""
    found = with_store(lambda store: store.licenses.list())
    if as_json:
        echo_json({"object": "list", "data": [lic.to_dict() for lic in found]})
        return
    echo_table(
        [
            (
                lic.id,
                lic.name,
                lic.redacted_key,
                "yes" if lic.enabled else "no",
                _when(lic.expires_at),
                ", ".join(lic.models) or "all",
                _limits(lic),
                lic.note,
            )
            for lic in found
        ],
        ("ID", "NAME", "KEY", "ENABLED", "EXPIRES", "MODELS", "LIMITS", "NOTE"),
    )


@license.command("create")
@click.option("--name", required=True, help="A name people recognise; unique.")
@_limit_options
@json_option
def create(as_json: bool, **options: Any) -> None:
    """Create a license and print its key as the last line.

    Example: gemini-gateway license create --name ci --tpm 100000 --expires 30d | tail -1
    """
    with user_errors():
        changes = _changes(**options)
    lic, plaintext = with_store(lambda store: store.licenses.create(**changes))
    _echo_new_key(lic, plaintext, as_json, "Created")


@license.command("show")
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show one license, by id, name or key prefix."""
    lic = with_store(lambda store: store.licenses.get(ref))
    if as_json:
        echo_json(lic.to_dict())
    else:
        _echo_license(lic)


@license.command("update")
@click.argument("ref")
@click.option("--name", help="A new name.")
@_limit_options
@json_option
def update(ref: str, as_json: bool, **options: Any) -> None:
    """Change a license's name, limits, models, networks, expiry or note.

    Example: gemini-gateway license update alice --rpm 120 --expires never
    """
    with user_errors():
        changes = _changes(**options)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    _echo_result(with_store(lambda store: store.licenses.update(ref, **changes)), as_json)


def _echo_result(lic: License, as_json: bool) -> None:
    if as_json:
        echo_json(lic.to_dict())
    else:
        _echo_license(lic)


@license.command("disable")
@click.argument("ref")
@json_option
def disable(ref: str, as_json: bool) -> None:
    """Refuse this license's requests (within seconds, on every replica)."""
    _echo_result(with_store(lambda store: store.licenses.set_enabled(ref, False)), as_json)


@license.command("enable")
@click.argument("ref")
@json_option
def enable(ref: str, as_json: bool) -> None:
    """Accept this license's requests again."""
    _echo_result(with_store(lambda store: store.licenses.set_enabled(ref, True)), as_json)


@license.command("rotate")
@click.argument("ref")
@json_option
def rotate(ref: str, as_json: bool) -> None:
    """Issue a new key for the same license; the old key stops working. Prints the key last."""
    lic, plaintext = with_store(lambda store: store.licenses.rotate(ref))
    _echo_new_key(lic, plaintext, as_json, "Rotated")


@license.command("delete")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts never are asked).")
@json_option
def delete(ref: str, yes: bool, as_json: bool) -> None:
    """Delete a license (its usage rows stay in the ledger)."""
    if not yes and not as_json and sys.stdin.isatty():
        click.confirm(f"Delete license '{ref}'?", abort=True)

    async def work(store: Store) -> License:
        return await store.licenses.delete(ref)

    lic = with_store(work)
    if as_json:
        echo_json({"id": lic.id, "object": "license.deleted", "name": lic.name, "deleted": True})
    else:
        click.echo(f"Deleted license '{lic.name}' ({lic.id}).")
