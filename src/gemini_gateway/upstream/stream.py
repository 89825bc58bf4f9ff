"""A started ``streamGenerateContent?alt=sse`` response, iterated as parsed event dicts.

Failover is over by the time an ``UpstreamStream`` exists (the client read the first bytes before
handing it out), so every failure from here on is raised from the iterator: a cut connection or
silence longer than ``upstream_timeout`` (``UpstreamError``/``UpstreamTimeout``), or an ``{"error":
…}`` event, raised after the events that came before it.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from gemini_gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gemini_gateway.upstream import http11
from gemini_gateway.upstream.google_error import GoogleError, parse_google_error
from gemini_gateway.upstream.http_errors import CLIENT_ERRORS, map_client_error
from gemini_gateway.upstream.sse import SSEParser


class UpstreamStream:
    """A started ``streamGenerateContent?alt=sse`` response; iterate for parsed event dicts."""

    __slots__ = ("key_id", "attempts", "_resp", "_parser", "_events", "_next", "_first",
                 "_done", "_closed", "_timeout", "_failure")

    def __init__(
        self,
        resp: aiohttp.ClientResponse | http11.Response,
        key_id: str,
        attempts: int,
        first_chunk: bytes,
        timeout: float | None = None,
    ) -> None:
        self.key_id = key_id
        self.attempts = attempts
        self._resp = resp
        self._parser = SSEParser()
        self._events: list[dict[str, Any]] = []
        self._next = 0
        self._first: bytes | None = first_chunk  # read before failover ended
        self._done = False
        self._closed = False
        self._timeout = timeout
        self._failure: GatewayError | None = None  # found in a chunk; raised once drained

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while self._next >= len(self._events):
            await self._fill()
        event = self._events[self._next]
        self._next += 1
        return event

    async def next_batch(self) -> list[dict[str, Any]]:
        """Every event that has arrived (at least one), or [] at the end.

        A relay that writes once per batch makes one socket write per upstream read instead of
        one per event; a failure is raised on the call after the events that came before it.
        """
        while self._next >= len(self._events):
            try:
                await self._fill()
            except StopAsyncIteration:
                return []
        batch = self._events[self._next:] if self._next else self._events
        self._events = []
        self._next = 0
        return batch

    async def _fill(self) -> None:
        """Read and parse the next chunk; StopAsyncIteration at the end."""
        if self._failure is not None:  # raised after the events that came before it
            failure, self._failure = self._failure, None
            self._abort()
            raise failure
        if self._done:
            raise StopAsyncIteration
        chunk = self._first
        if chunk is not None:
            self._first = None
        else:
            try:
                chunk = await self._resp.content.readany()
            except CLIENT_ERRORS as exc:
                if self._closed:  # aclose() from another task: a quiet end
                    raise StopAsyncIteration from None
                self._abort()
                raise map_client_error(exc, self._timeout) from exc
            if self._closed:
                raise StopAsyncIteration
        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            self._done = True
            self._resp.release()
            if self._parser.pending:
                self._read_events(self._parser.flush(), at_end=True)
            return
        self._read_events(self._parser.feed(chunk))

    def _read_events(self, datas: list[bytes], at_end: bool = False) -> None:
        """Parse event data; at the end, unparsable data means the connection was cut."""
        events = []
        for data in datas:
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                self._failure = UpstreamError(
                    "The upstream stream ended mid-event." if at_end
                    else "The upstream stream sent an event that is not JSON."
                )
                self._failure.__cause__ = exc
                break
            if not isinstance(event, dict):
                self._failure = UpstreamError("The upstream stream sent a non-object event.")
                break
            if "error" in event:
                self._failure = _stream_error(event)
                break
            events.append(event)
        self._events = events
        self._next = 0

    def _abort(self) -> None:
        self._done = True
        self._events = []
        self._resp.close()

    async def aclose(self) -> None:
        """Close the upstream connection at once (the client went away)."""
        if not self._closed:
            self._closed = True
            self._done = True
            self._events = []
            self._resp.close()

    async def __aenter__(self) -> UpstreamStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _stream_error(event: dict[str, Any]) -> GatewayError:
    """An ``{"error": …}`` event inside a started stream: too late to fail over."""
    error = parse_google_error(int(_error_code(event)), event)
    if error.status == "DEADLINE_EXCEEDED" or error.http_status == 504:
        return UpstreamTimeout(error.message)
    return UpstreamError(error.message)


def first_event_error(first: bytes, secret: str) -> GoogleError | None:
    """An ``{"error": …}`` event opening a stream, read as if it had been the HTTP answer."""
    if b'"error"' not in first[:64] or not first.startswith(b"data:"):
        return None  # the usual case, decided without parsing
    for data in SSEParser().feed(first):
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if isinstance(event, dict) and isinstance(event.get("error"), dict):
            return parse_google_error(_error_code(event), event, secret)
        return None
    return None


def _error_code(event: dict[str, Any]) -> int:
    code = event.get("error", {}).get("code") if isinstance(event.get("error"), dict) else None
    return code if isinstance(code, int) else 500
