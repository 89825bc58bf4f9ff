"""The ``gemini-gateway`` command: one group, each noun's commands in ``commands/``."""

from __future__ import annotations

import click

from gemini_gateway import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gemini-gateway")
def main() -> None:
    """Serve Google Gemini through the OpenAI API.

    Start with `gemini-gateway serve`, then `gemini-gateway license create --name me`.
    """


def _register() -> None:
    # Each commands/ module exposes one click command or group named after the module's noun.
    from gemini_gateway.commands import key, license, serve, simulator, usage

    main.add_command(serve.serve)
    main.add_command(simulator.simulator)
    main.add_command(license.license)
    main.add_command(key.key)
    main.add_command(usage.usage)


_register()
