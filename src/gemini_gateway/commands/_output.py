"""What every storage command shares: the default ``list`` subcommand, ``--json``, tables, and
running one coroutine against the store with user mistakes turned into one-line errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import orjson

from gemini_gateway.config import load_settings
from gemini_gateway.errors import GatewayError
from gemini_gateway.store.database import Store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class DefaultGroup(click.Group):
    """A noun group whose bare use (or options only, e.g. ``--json``) runs ``list``."""

    default_command = "list"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store named by the settings (migrating it), run ``work``, close it."""

    async def main() -> T:
        try:
            settings = load_settings()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        store = await Store.open(settings, background=False)
        try:
            return await work(store)
        finally:
            await store.close()

    with user_errors():
        return asyncio.run(main())


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a refused value (a GatewayError) into click's one-line error."""
    try:
        yield
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


def echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value).decode())


def echo_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table; ``-`` for empty cells."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
