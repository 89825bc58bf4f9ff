"""A small pipelined Redis client for the limiter's two scripts, on every request's path.

redis-py's asyncio client spends about 0.14 ms of CPU on each command (pool, command objects,
response machinery); the limiter runs two scripts per request. This client speaks RESP2 over one
``asyncio.Protocol`` connection: commands issued in one turn of the event loop go out in one
write (each write is a system call; under load many requests ask at once), replies are matched to
callers in order, and a caller that gives up (cancelled) leaves its place in the queue so the
order holds. One timer per connection, not one per command, watches for a reply that is late:
then the connection is dropped and every caller waiting on it gets a timeout.

It only runs ``EVALSHA`` (falling back to ``EVAL`` once per script), ``AUTH`` and ``SELECT``;
everything else keeps using redis-py. Errors are redis-py's exception classes, so callers handle
both clients alike. ``rediss://`` (TLS) and Unix sockets are not supported here: the limiter then
keeps redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_INCOMPLETE = object()


def supports(url: str) -> bool:
    return urlparse(url).scheme == "redis"


class RespClient:
    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        parsed = urlparse(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 6379
        self._username = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        path = (parsed.path or "/").strip("/")
        self._db = int(path) if path else 0
        self._timeout = timeout
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def evalsha(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def execute(self, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        reply = await protocol.send(args)  # its watchdog enforces the timeout
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def _connect(self) -> _RespProtocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self._timeout):
                    _, protocol = await loop.create_connection(
                        lambda: _RespProtocol(self._timeout), self._host, self._port
                    )
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot reach Redis: {exc}") from exc
            if self._password is not None:
                auth = (self._username, self._password) if self._username else (self._password,)
                await self._checked(protocol, ("AUTH", *auth))
            if self._db:
                await self._checked(protocol, ("SELECT", self._db))
            self._protocol = protocol
            return protocol

    async def _checked(self, protocol: _RespProtocol, args: tuple[Any, ...]) -> None:
        reply = await protocol.send(args)  # its watchdog enforces the timeout
        if isinstance(reply, ResponseError):
            protocol.abort()
            raise reply

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.abort()
            self._protocol = None


class Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _RespProtocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self._transport: asyncio.Transport | None = None
        self._timeout = timeout
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()  # with send times
        self._outgoing: list[bytes] = []  # this loop turn's commands, written together
        self._buffer = bytearray()
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self.closed or self._transport is None:
            raise RedisConnectionError("the Redis connection is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((future, loop.time()))
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(encode_command(args))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check_late)
        return future

    def _flush(self) -> None:
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        if not self.closed and self._transport is not None:
            self._transport.write(data)

    def _check_late(self) -> None:
        """Drop the connection if the oldest command waited too long, else look again then."""
        self._watchdog = None
        if not self._pending or self.closed:
            return
        loop = asyncio.get_running_loop()
        late_at = self._pending[0][1] + self._timeout
        if loop.time() >= late_at:
            self._timed_out = True  # a reply may still come; this connection's order is unknown
            self.abort()
            self._fail_pending()
        else:
            self._watchdog = loop.call_at(late_at, self._check_late)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        position = 0
        while position < len(self._buffer):
            parsed = parse_reply(self._buffer, position)
            if parsed is _INCOMPLETE:
                break
            value, position = parsed  # type: ignore[misc]
            future, _ = self._pending.popleft()
            if not future.done():  # its caller may have given up; the order still holds
                future.set_result(value)
        del self._buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_pending()

    def _fail_pending(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._pending:
            future, _ = self._pending.popleft()
            if not future.done():
                future.set_exception(
                    RedisTimeoutError("Redis did not answer in time")
                    if self._timed_out
                    else RedisConnectionError("the Redis connection was lost")
                )

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


def encode_command(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse_reply(buffer: bytearray, position: int) -> Any:
    """One RESP2 reply at ``position``: (value, next position), or ``_INCOMPLETE``."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return _INCOMPLETE
    kind = buffer[position]
    line = bytes(buffer[position + 1 : end])
    if kind == 0x3A:  # ':' integer
        return int(line), end + 2
    if kind == 0x2B:  # '+' simple string
        return line.decode(), end + 2
    if kind == 0x2D:  # '-' error
        text = line.decode()
        error = NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
        return error, end + 2
    if kind == 0x24:  # '$' bulk string
        length = int(line)
        if length < 0:
            return None, end + 2
        stop = end + 2 + length
        if len(buffer) < stop + 2:
            return _INCOMPLETE
        return bytes(buffer[end + 2 : stop]), stop + 2
    if kind == 0x2A:  # '*' array
        count = int(line)
        if count < 0:
            return None, end + 2
        items = []
        cursor = end + 2
        for _ in range(count):
            parsed = parse_reply(buffer, cursor)
            if parsed is _INCOMPLETE:
                return _INCOMPLETE
            item, cursor = parsed
            items.append(item)
        return items, cursor
    raise RedisConnectionError(f"unexpected reply from Redis: {bytes(buffer[position:end])!r}")
