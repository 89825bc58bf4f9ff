"""Failures on demand, set by tests through ``POST /_sim/faults``.

A fault matches on upstream key, model and method (``generateContent``, ``streamGenerateContent``,
``countTokens``, ``predict``, ``listModels``, ``getModel``, ``uploadFile``, ``getFile``); an absent
match field matches anything. The first live match wins and spends one of its ``times``. It can
wait ``delay`` seconds, answer ``status`` with ``body`` (Google's default body for that status when
absent), or, for streams, send ``cut_after`` events and then drop the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.simulator.google_errors import GoogleError, default_error

_FIELDS = {"match", "status", "body", "delay", "cut_after", "times", "retry_delay"}
_MATCH_FIELDS = {"key", "model", "method"}


@dataclass
class Fault:
    match: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    body: dict[str, Any] | None = None
    delay: float = 0.0
    cut_after: int | None = None
    times: int | None = None  # None: every matching request
    retry_delay: float = 1.0  # the RetryInfo delay in a default 429 body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        unknown = set(data) - _FIELDS | set(data.get("match") or {}) - _MATCH_FIELDS
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def matches(self, key: str, model: str, method: str) -> bool:
        wanted = {"key": key, "model": model, "method": method}
        for name, value in self.match.items():
            allowed = value if isinstance(value, list) else [value]
            if wanted[name] not in allowed:
                return False
        return True

    def error(self, model: str) -> GoogleError | None:
        """The error to answer with (the given body, or Google's default for the status)."""
        if self.status is None:
            return None
        if self.body is not None:
            return GoogleError(self.status, "", raw=self.body)
        return default_error(self.status, model=model, retry_delay=self.retry_delay)

    def to_json(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "status": self.status,
            "body": self.body,
            "delay": self.delay,
            "cut_after": self.cut_after,
            "times": self.times,
            "retry_delay": self.retry_delay,
        }


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)

    def add(self, faults: list[dict[str, Any]]) -> None:
        self.faults.extend(Fault.from_json(f) for f in faults)

    def clear(self) -> None:
        self.faults.clear()

    def take(self, key: str, model: str, method: str) -> Fault | None:
        """The first live fault for this request, with one of its uses spent."""
        for fault in self.faults:
            if fault.times is not None and fault.times <= 0:
                continue
            if fault.matches(key, model, method):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None
