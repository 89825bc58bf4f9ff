"""``gemini-gateway usage``: what the ledger says was used, in totals."""

from __future__ import annotations

import click

from gemini_gateway.commands._output import (
    echo_json,
    echo_table,
    json_option,
    user_errors,
    with_store,
)
from gemini_gateway.store._dates import parse_moment
from gemini_gateway.store.ledger import GROUPINGS


@click.command()
@click.option("--license", "license_ref", help="Only this license (id or name).")
@click.option("--since", help="From this date (2026-11-01) or this long ago (7d, 12h).")
@click.option("--by", type=click.Choice(GROUPINGS), help="One row per model, day or license.")
@json_option
def usage(license_ref: str | None, since: str | None, by: str | None, as_json: bool) -> None:
    """Print request and token totals from the usage ledger.

    Example: gemini-gateway usage --since 7d --by model
    """
    with user_errors():
        start = parse_moment(since, param="since", future=False) if since else None
    totals = with_store(lambda store: store.ledger.totals(since=start, license=license_ref, by=by))
    if as_json:
        echo_json(
            {
                "object": "list",
                "since": int(start.timestamp()) if start else None,
                "by": by,
                "data": [t.to_dict() for t in totals],
            }
        )
        return
    headers = ("REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "REASONING", "CACHED", "TOTAL")
    rows = [
        (
            *((t.group,) if by else ()),
            t.requests,
            t.errors,
            t.prompt_tokens,
            t.completion_tokens,
            t.reasoning_tokens,
            t.cached_tokens,
            t.total_tokens,
        )
        for t in totals
    ]
    echo_table(rows, ((by.upper(),) if by else ()) + headers)
