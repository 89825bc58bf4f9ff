"""Token reservations that track real usage.

Token quotas and tokens-per-minute limits reserve an estimate before a request goes upstream and
settle with the real usage afterwards. An estimate far above the truth refuses requests the quota
could have served; one far below lets a burst overspend. So:

- with ``max_tokens`` or ``max_completion_tokens``: prompt + that maximum (an upper bound);
- without, it is the prompt plus what this model's recent answers really used beyond their prompt
  estimate (an average learned from settled requests, in this process);
- until a model has one settled answer, requests of licenses with token limits go upstream one at a
  time (calibration), each reserving only its prompt; so a burst against a fresh quota is neither
  refused wholesale (a 1,024-token guess would refuse a small quota) nor overspent by more than
  one request's answer per replica.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gemini_gateway.api.accounting import DEFAULT_COMPLETION_ESTIMATE, estimate_prompt_tokens

LEARNING_WEIGHT = 0.25  # weight of the newest answer in the running average


class UsageEstimator:
    def __init__(self) -> None:
        self._extra: dict[str, float] = {}  # model -> average tokens beyond the prompt estimate
        self._gates: dict[str, asyncio.Lock] = {}

    def estimate(self, body: dict[str, Any], model: str) -> tuple[int, bool]:
        """(tokens to reserve, whether the estimate rests on a bound or on learned usage)."""
        prompt = estimate_prompt_tokens(body)
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
        if isinstance(asked, int) and asked > 0:
            return prompt + asked * n, True
        learned = self._extra.get(model)
        if learned is None:
            return prompt + DEFAULT_COMPLETION_ESTIMATE * n, False
        return prompt + max(1, round(learned)), True

    def learn(self, model: str, prompt_estimate: int, total_tokens: int) -> None:
        if total_tokens <= 0:
            return
        extra = max(1, total_tokens - prompt_estimate)
        old = self._extra.get(model)
        self._extra[model] = extra if old is None else old + LEARNING_WEIGHT * (extra - old)

    async def calibration_gate(self, model: str) -> asyncio.Lock | None:
        """Wait until no other first request of ``model`` is in flight; None once it has usage.

        The caller holds the returned lock until its request settles, then releases it."""
        if model in self._extra:
            return None
        gate = self._gates.setdefault(model, asyncio.Lock())
        await gate.acquire()
        if model in self._extra:
            gate.release()
            return None
        return gate
