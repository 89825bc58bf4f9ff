"""Generated docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from gemini_gateway.commands.help_docs import render

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_docs_match_help_output() -> None:
    assert (DOCS / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: python -m gemini_gateway.commands.help_docs > docs/cli.md"
    )
