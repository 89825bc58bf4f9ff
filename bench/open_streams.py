"""Hold many slow chat streams open against the gateway at once and read its memory meanwhile.

The simulator is slowed down (``chunk_delay``) so every stream stays open for seconds; once each
client has its first chunk, every stream is open end to end (client → gateway → simulator), and
the gateway's RSS is read. The clients then read their streams to the end, so the run also shows
that all of them complete.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from procstat import memory_bytes


@dataclass
class OpenStreamsResult:
    streams: int
    opened: int = 0  # clients that got their first chunk while all were held open
    completed: int = 0  # clients that read their stream through to `data: [DONE]`
    failed: int = 0
    simulator_open: int = 0  # streams the simulator was writing when RSS was read
    rss_idle: int = 0
    rss_open: int = 0
    peak_rss: int = 0
    seconds_to_open: float = 0.0
    errors: list[str] = field(default_factory=list)


async def _one_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    opened: asyncio.Event,
    counter: list[int],
    total: int,
    release: asyncio.Event,
) -> bool:
    """Open a stream, report its first chunk, then read it to the end."""
    async with session.post(url, data=body, headers=headers) as response:
        response.raise_for_status()
        first = await response.content.readany()
        if not first:
            return False
        counter[0] += 1
        if counter[0] == total:
            opened.set()
        await release.wait()
        rest = await response.read()
        return b"[DONE]" in first + rest


async def hold_open_streams(
    gateway_url: str,
    simulator_url: str,
    license_key: str,
    body: bytes,
    gateway_pid: int,
    streams: int,
    open_timeout: float = 60.0,
) -> OpenStreamsResult:
    """Open ``streams`` concurrent streams, read the gateway's RSS while all are open."""
    result = OpenStreamsResult(streams=streams, rss_idle=memory_bytes(gateway_pid)["VmRSS"])
    headers = {"Authorization": f"Bearer {license_key}", "Content-Type": "application/json"}
    opened, release = asyncio.Event(), asyncio.Event()
    counter = [0]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=open_timeout + 120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        tasks = [
            asyncio.create_task(
                _one_stream(session, gateway_url, body, headers, opened, counter, streams, release)
            )
            for _ in range(streams)
        ]
        try:
            await asyncio.wait_for(opened.wait(), open_timeout)
        except TimeoutError:
            result.errors.append(f"only {counter[0]} of {streams} streams opened in time")
        result.seconds_to_open = time.monotonic() - started
        result.opened = counter[0]
        memory = memory_bytes(gateway_pid)
        result.rss_open, result.peak_rss = memory["VmRSS"], memory["VmHWM"]
        async with session.get(f"{simulator_url}/_sim/status") as status:
            result.simulator_open = (await status.json()).get("open_streams", 0)
        release.set()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if outcome is True:
                result.completed += 1
            else:
                result.failed += 1
                if isinstance(outcome, BaseException) and len(result.errors) < 5:
                    result.errors.append(repr(outcome))
    return result
