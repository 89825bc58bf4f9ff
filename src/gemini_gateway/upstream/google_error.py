"""Google's error envelope, read into what the failover needs to decide.

Google APIs answer errors as ``{"error": {"code", "message", "status", "details": [...]}}`` where
``details`` holds typed ``google.rpc`` messages (AIP-193): ``ErrorInfo.reason`` (e.g.
``API_KEY_INVALID``), ``RetryInfo.retryDelay`` (a Duration such as ``"37s"``) and
``QuotaFailure.violations[].quotaId`` (``…PerDay…`` for daily quotas). ``classify`` maps one error
to a ``Fault``: whose fault it is decides retry, cool-down or pass-through.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Google API keys are "AIza" + 35 URL-safe characters; scrub anything close to that shape.
_API_KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_\-]{10,}")
# Reasons in ErrorInfo that mean the key itself is unusable, not the request.
_KEY_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "SERVICE_DISABLED"}
)

# A 403 about a resource the request names ("You do not have permission to access the File x or
# it may not exist", "CachedContent not found (or permission denied)"): any client can send one.
_RESOURCE_DENIED = re.compile(
    r"permission to access the (?:file|cachedcontent|tuned ?model)\b|may not exist"
    r"|cachedcontent not found",
    re.IGNORECASE,
)


class Fault(enum.Enum):
    RATE_LIMITED = "rate_limited"  # 429: cool the key down, try another
    KEY_REFUSED = "key_refused"  # invalid/expired key, 401, 403: disable it, try another
    SERVER = "server"  # 5xx, 408, 3xx: the upstream's trouble; back off, try another key
    CLIENT = "client"  # any other 4xx: the client's request; pass on, never retry


@dataclass(frozen=True, slots=True)
class GoogleError:
    http_status: int
    status: str  # google.rpc.Code name, e.g. "RESOURCE_EXHAUSTED"; "" when absent
    message: str  # scrubbed of anything that looks like an API key
    reason: str | None = None  # ErrorInfo.reason
    retry_delay: float | None = None  # RetryInfo.retryDelay in seconds
    per_day: bool = False  # a QuotaFailure violation on a per-day quota

    @property
    def fault(self) -> Fault:
        return classify(self)


def scrub_keys(text: str, secret: str | None = None) -> str:
    """Mask anything shaped like a Google API key, and ``secret`` whatever its shape."""
    if secret and secret in text:
        text = text.replace(secret, "[upstream key]")
    if "AIza" not in text:
        return text
    return _API_KEY_PATTERN.sub("AIza…", text)


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON (``"37s"``, ``"1.5s"``) or ``{"seconds", "nanos"}``."""
    if isinstance(value, str):
        text = value.strip().removesuffix("s")
        try:
            return float(text)
        except ValueError:
            return None
    if isinstance(value, dict):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    if isinstance(value, int | float):
        return float(value)
    return None


def parse_google_error(
    http_status: int, body: bytes | dict[str, Any], secret: str | None = None
) -> GoogleError:
    """Read an error response body; tolerates bodies that are not Google's envelope.

    ``secret`` (the key the request used) is masked in the message too: Google quotes it in some
    messages, e.g. "Consumer 'api_key:…' has been suspended".
    """
    payload: Any = body
    if isinstance(body, bytes | bytearray):
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            text = bytes(body[:300]).decode("utf-8", "replace").strip()
            return GoogleError(http_status, "", scrub_keys(text or f"HTTP {http_status}", secret))
    if isinstance(payload, list) and payload:  # some endpoints wrap the envelope in a list
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return GoogleError(http_status, "", f"Upstream answered HTTP {http_status}.")
    message = str(error.get("message") or f"Upstream answered HTTP {http_status}.")
    reason = None
    retry_delay = None
    per_day = False
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo"):
            reason = reason or detail.get("reason")
        elif kind.endswith("google.rpc.RetryInfo"):
            retry_delay = parse_duration(detail.get("retryDelay"))
        elif kind.endswith("google.rpc.QuotaFailure"):
            for violation in detail.get("violations") or ():
                if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                    per_day = True
    return GoogleError(
        http_status=http_status,
        status=str(error.get("status") or ""),
        message=scrub_keys(message, secret),
        reason=reason if isinstance(reason, str) else None,
        retry_delay=retry_delay,
        per_day=per_day,
    )


def classify(error: GoogleError) -> Fault:
    """Whose fault: only the key's and the server's faults are retried on another key."""
    code = error.http_status
    if code == 429 or error.status == "RESOURCE_EXHAUSTED":
        return Fault.RATE_LIMITED
    if error.reason in _KEY_REASONS:
        return Fault.KEY_REFUSED
    if code == 403 and _RESOURCE_DENIED.search(error.message):
        return Fault.CLIENT  # a file the request names, not the key: disabling keys would not help
    if code in (401, 403):
        return Fault.KEY_REFUSED
    if code >= 500 or code == 408 or code < 400:  # we follow no redirects
        return Fault.SERVER
    return Fault.CLIENT
