"""Reservations: a bound when the client gives one, learned usage otherwise, calibration first."""

from __future__ import annotations

import asyncio

from gemini_gateway.api.usage_estimate import UsageEstimator

BODY = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}]}  # prompt estimate 11


def test_max_tokens_is_an_upper_bound() -> None:
    est = UsageEstimator()
    assert est.estimate({**BODY, "max_tokens": 100}, "m") == (111, True)
    assert est.estimate({**BODY, "max_completion_tokens": 50, "n": 2}, "m") == (111, True)


def test_unknown_model_is_not_known_and_large() -> None:
    tokens, known = UsageEstimator().estimate(BODY, "m")
    assert not known and tokens > 1000


def test_learns_what_answers_really_use() -> None:
    est = UsageEstimator()
    est.learn("m", prompt_estimate=11, total_tokens=41)
    assert est.estimate(BODY, "m") == (41, True)
    est.learn("m", prompt_estimate=11, total_tokens=81)  # running average moves towards 70 extra
    tokens, _ = est.estimate(BODY, "m")
    assert 41 < tokens < 81
    assert est.estimate(BODY, "other")[1] is False


async def test_calibration_lets_one_first_request_through_at_a_time() -> None:
    est = UsageEstimator()
    first = await est.calibration_gate("m")
    assert first is not None
    waiter = asyncio.create_task(est.calibration_gate("m"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    est.learn("m", 11, 30)
    first.release()
    assert await waiter is None  # usage is known now: no gate needed
    assert await est.calibration_gate("m") is None
