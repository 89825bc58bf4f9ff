"""What one simulator instance holds: its settings, faults, recorded requests and files."""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gemini_gateway.simulator.faults import FaultBook
from gemini_gateway.simulator.files import FileStore


@dataclass
class SimulatorConfig:
    """Changed at run time by ``POST /_sim/config``; names are the JSON keys."""

    stream_chunks: int = 5  # stream events per candidate, about
    validate: bool = True  # refuse what Google refuses; off for benchmarks
    file_active_delay: float = 0.2  # seconds an uploaded file stays PROCESSING
    chunk_delay: float = 0.0  # seconds between stream events
    latency: float = 0.0  # seconds before any answer
    record: bool = True  # keep requests for GET /_sim/requests
    max_recorded: int = 1000  # oldest requests are dropped beyond this

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown simulator setting {name!r}")
            kind = type(getattr(self, name))
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            if kind in (int, float) and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{name} must be a number")
            setattr(self, name, kind(value))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SimulatorState:
    config: SimulatorConfig = field(default_factory=SimulatorConfig)
    defaults: SimulatorConfig | None = None  # what reset() returns to; the start-up config
    faults: FaultBook = field(default_factory=FaultBook)
    files: FileStore = field(default_factory=FileStore)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    open_streams: int = 0  # streams being written now; tests check the gateway closes them

    def __post_init__(self) -> None:
        if self.defaults is None:
            self.defaults = dataclasses.replace(self.config)

    def record(self, entry: dict[str, Any]) -> None:
        if not self.config.record:
            return
        if self.requests.maxlen != self.config.max_recorded:
            self.requests = deque(self.requests, maxlen=self.config.max_recorded)
        self.requests.append(entry)

    def status(self) -> dict[str, Any]:
        return {
            "open_streams": self.open_streams,
            "requests": len(self.requests),
            "faults": len(self.faults.faults),
            "files": len(self.files.files),
        }

    def reset(self) -> None:
        self.config = dataclasses.replace(self.defaults or SimulatorConfig())
        self.faults.clear()
        self.files.clear()
        self.requests.clear()


SIM_STATE: web.AppKey[SimulatorState] = web.AppKey("gemini_simulator_state", SimulatorState)
