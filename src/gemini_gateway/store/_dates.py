"""Moments people type: ``30d`` (a duration from now) or a date such as ``2026-12-31``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gemini_gateway.errors import InvalidRequest

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_duration(value: str) -> timedelta | None:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``; None when ``value`` is not a duration."""
    match = _DURATION.match(value)
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_moment(value: str, *, param: str, future: bool) -> datetime:
    """A duration counted from now (forward if ``future``) or an ISO date/time (UTC if naive)."""
    duration = parse_duration(value)
    if duration is not None:
        return utcnow() + duration if future else utcnow() - duration
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequest(
            f"{param}: expected a date like 2026-12-31 or a duration like 30d, got {value!r}",
            param=param,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
