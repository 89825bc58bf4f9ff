"""``gemini-gateway simulator``: run the offline fake Gemini API."""

from __future__ import annotations

import asyncio
import contextlib

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8089, show_default=True, help="Port to listen on.")
@click.option(
    "--no-validate",
    is_flag=True,
    help="Accept any request body (faster, for benchmarks); Google's checks are skipped.",
)
@click.option(
    "--stream-chunks", type=int, default=5, show_default=True, help="Events per streamed answer."
)
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Seconds before each answer."
)
def simulator(host: str, port: int, no_validate: bool, stream_chunks: int, latency: float) -> None:
    """Serve a fake Gemini API (REST and SSE under /v1beta and /v1) for tests and benchmarks.

    Example: gemini-gateway simulator --port 8089, then point
    GEMINI_GATEWAY_UPSTREAM_BASE_URL at http://127.0.0.1:8089.
    """
    from gemini_gateway.simulator.app import serve
    from gemini_gateway.simulator.state import SimulatorConfig

    if stream_chunks < 1:
        raise click.ClickException("--stream-chunks must be at least 1")
    config = SimulatorConfig(validate=not no_validate, stream_chunks=stream_chunks, latency=latency)
    click.echo(f"Gemini simulator listening on http://{host}:{port}", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, config))
