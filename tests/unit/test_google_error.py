"""Reading Google's error envelope (AIP-193) and deciding whose fault an error is."""

from __future__ import annotations

import orjson
import pytest

from gemini_gateway.upstream.google_error import (
    Fault,
    parse_duration,
    parse_google_error,
    scrub_keys,
)

# The shape Gemini sends for an exhausted free-tier quota (per-minute and per-day violations).
QUOTA_429 = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_"
                 "requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"},
            ]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [
                {"description": "Learn more about Gemini API quotas",
                 "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
        ],
    }
}


def test_rate_limit_with_retry_delay() -> None:
    error = parse_google_error(429, orjson.dumps(QUOTA_429))
    assert (error.status, error.retry_delay, error.per_day) == ("RESOURCE_EXHAUSTED", 37.0, False)
    assert error.fault is Fault.RATE_LIMITED


def test_per_day_violation() -> None:
    body = orjson.loads(orjson.dumps(QUOTA_429))
    body["error"]["details"][0]["violations"].append(
        {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"})
    assert parse_google_error(429, body).per_day


def test_envelope_wrapped_in_a_list() -> None:
    error = parse_google_error(429, orjson.dumps([QUOTA_429]))
    assert error.retry_delay == 37.0


@pytest.mark.parametrize(
    ("status", "body", "fault"),
    [
        pytest.param(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                     "message": "API key not valid. Please pass a valid API key.",
                                     "details": [{"@type": "type.googleapis.com/google.rpc."
                                                  "ErrorInfo", "reason": "API_KEY_INVALID"}]}},
                     Fault.KEY_REFUSED, id="api-key-invalid"),
        pytest.param(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                     "message": "denied"}}, Fault.KEY_REFUSED, id="403"),
        pytest.param(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                     "message": "bad"}}, Fault.CLIENT, id="400"),
        pytest.param(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no"}},
                     Fault.CLIENT, id="404"),
        pytest.param(500, {"error": {"code": 500, "status": "INTERNAL", "message": "x"}},
                     Fault.SERVER, id="500"),
        pytest.param(503, b"<html>Service Unavailable</html>", Fault.SERVER, id="503-html"),
        pytest.param(302, b"", Fault.SERVER, id="redirect"),
    ],
)
def test_classify(status: int, body: dict | bytes, fault: Fault) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    assert parse_google_error(status, raw).fault is fault


def test_not_an_envelope_keeps_a_short_message() -> None:
    error = parse_google_error(502, b"<html>Bad Gateway</html>")
    assert error.message == "<html>Bad Gateway</html>"
    assert parse_google_error(500, b"").message == "Upstream answered HTTP 500."


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("37s", 37.0), ("1.5s", 1.5), ("0.020044661s", 0.020044661),
     ({"seconds": 3, "nanos": 500_000_000}, 3.5), ("soon", None), (None, None)],
)
def test_parse_duration(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_scrub_keys() -> None:
    key = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
    assert key not in scrub_keys(f"key {key}; again {key}.")
    assert scrub_keys("no keys here") == "no keys here"
