"""Renders every command's ``--help`` into docs/cli.md, so the docs cannot drift from the code.

``python -m gemini_gateway.commands.help_docs > docs/cli.md`` rewrites the page; a test compares.
"""

from __future__ import annotations

import click
from click.testing import CliRunner

from gemini_gateway.cli import main

INTRO = """# The `gemini-gateway` command

Every command and its options, as `--help` prints them. Settings that `serve` reads from the
environment are listed in `configuration.md`; the other commands read the same variables (the data
dir and database URL) so they act on the same database as the running gateway.
"""


def _walk(command: click.Command, path: list[str]) -> list[list[str]]:
    paths = [path]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            paths.extend(_walk(command.commands[name], [*path, name]))
    return paths


def render() -> str:
    runner = CliRunner()
    out = [INTRO]
    for path in _walk(main, []):
        result = runner.invoke(main, [*path, "--help"], prog_name="gemini-gateway")
        title = " ".join(["gemini-gateway", *path])
        out.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
