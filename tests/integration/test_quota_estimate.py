"""A fresh gateway, a quota that covers 10 requests, 200 at once, no max_tokens: 10 are served."""

from __future__ import annotations

import asyncio

import aiohttp

BODY = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "quota probe"}]}


async def _burst(url: str, license: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def one() -> int:
            async with session.post(url, json=BODY, headers={"Authorization": license}) as resp:
                await resp.read()
                return resp.status

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_burst_on_a_fresh_quota_serves_what_it_covers(start_gateway, sim) -> None:
    probe = start_gateway()
    per_request = probe.client().chat.completions.create(**BODY).usage.total_tokens
    probe.stop()
    assert per_request > 0

    sim.configure(latency=0.3)  # every request of the burst is in flight together
    fresh = start_gateway()  # a new process: it has learned nothing about this model yet
    license = fresh.create_license("ten", "--quota", str(per_request * 10))
    statuses = await _burst(fresh.base_url + "/chat/completions", license, 200)
    assert statuses.count(200) == 10, statuses
    assert set(statuses) == {200, 429}
