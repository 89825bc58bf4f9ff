"""A lean HTTP/1.1 client for the hot path: a keep-alive pool of asyncio protocols, parsed by
httptools (llhttp, the C parser of Node.js).

Why not aiohttp's client: on the 2-core bench box a POST through it costs about 0.1–0.15 ms of
CPU, through this about 0.03–0.05 ms, and the upstream call is most of what a gateway does
(bench/README.md, "The upstream client"). It does only what Gemini's REST API needs: one request
at a time per connection, a body in bytes, responses framed by Content-Length, chunked encoding
or the end of the connection; no redirects, cookies, compression or proxies (requests through
an outbound proxy, or with a streamed body, still go through aiohttp).

Its exceptions subclass ``OSError`` and ``TimeoutError``, so ``http_errors.map_client_error``
reads them as it reads aiohttp's. A response answers the few calls ``client.py`` and
``stream.py`` make of an aiohttp response: ``status``, ``headers``, ``content.readany()``,
``read()``, ``release()`` and ``close()``.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import Mapping

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

_PAUSE_ABOVE = 1 << 20  # buffered response bytes before reading from the socket pauses
_SPLIT_WRITE_ABOVE = 1 << 16  # larger bodies are written apart from the head (no copy)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConnectFailed(ConnectionError):
    """No TCP connection could be made (refused, unreachable)."""


class ConnectTimeout(TimeoutError):
    """The TCP (and TLS) connection was not made within the connect timeout."""


class NameNotResolved(ConnectionError):
    """DNS gave no address for the upstream host."""


class TLSFailed(ConnectionError):
    """The TLS handshake failed (certificate, protocol)."""


class ReadTimeout(TimeoutError):
    """The server sent nothing for longer than the read timeout."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before a whole response."""

    def __init__(self, message: str, *, cut: bool = False) -> None:
        super().__init__(message)
        self.cut = cut  # True once any response byte had arrived: the response was cut off


class BadResponse(ConnectionError):
    """The server's bytes are not HTTP/1.1."""


class Response:
    """One response, read as it arrives; ``content`` is itself, as on an aiohttp response."""

    __slots__ = ("status", "headers", "_conn", "_raw_headers", "_chunks", "_size", "_waiter",
                 "_timer", "_timeout", "_headers_done", "_complete", "_error", "_released",
                 "_eof_delimited", "_got_bytes")

    def __init__(self, conn: _Connection, timeout: float | None) -> None:
        self.status = 0
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self._conn = conn
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = timeout
        self._headers_done = False
        self._complete = False
        self._error: BaseException | None = None
        self._released = False
        self._eof_delimited = False  # neither Content-Length nor chunked: ends with the socket
        self._got_bytes = False

    @property
    def content(self) -> Response:
        return self

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()

    async def readany(self) -> bytes:
        """Whatever body bytes have arrived (waiting for some); b"" at the end."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        if self._size > _PAUSE_ABOVE:
            self._conn.resume()
        self._size = 0
        return data

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        # Through readany(): it resumes the socket that buffering over _PAUSE_ABOVE paused,
        # else a body that large would never complete (and end in a ReadTimeout).
        parts: list[bytes] = []
        while data := await self.readany():
            parts.append(data)
        self.release()
        return b"".join(parts)

    def release(self) -> None:
        """Done with the response: keep the connection if it was read to the end, else close."""
        if self._released:
            return
        self._released = True
        self._conn.finished(reusable=self._complete and self._error is None)

    def close(self) -> None:
        """Drop the connection now (the caller gave up on the rest of the body)."""
        if self._released:
            return
        self._released = True
        self._fail(ServerDisconnected("the response was closed", cut=True))  # wakes a reader
        self._conn.finished(reusable=False)

    # -- fed by the connection -------------------------------------------------------------------

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if self._timeout:
            self._timer = loop.call_later(self._timeout, self._timed_out, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._fail(ReadTimeout(f"no data from the server for {self._timeout:g} s"))
            self._conn.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None and not self._complete:
            self._error = exc
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)

    def _on_headers(self, status: int) -> None:
        self.status = status
        headers: CIMultiDict[str] = CIMultiDict()
        chunked = False
        sized = False
        for name, value in self._raw_headers:
            text_name = name.decode("latin-1")
            text_value = value.decode("latin-1")
            headers.add(text_name, text_value)
            lower = text_name.lower()
            if lower == "content-length":
                sized = True
            elif lower == "transfer-encoding" and "chunked" in text_value.lower():
                chunked = True
        self._raw_headers = []
        self.headers = CIMultiDictProxy(headers)
        self._eof_delimited = not (sized or chunked) and status not in (204, 304) and status >= 200
        self._headers_done = True
        self._wake()

    def _on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _PAUSE_ABOVE:
            self._conn.pause()
        self._wake()

    def _on_complete(self) -> None:
        self._complete = True
        self._wake()

    def _on_lost(self, exc: BaseException | None) -> None:
        if self._complete:
            return
        if self._headers_done and self._eof_delimited and exc is None:
            self._on_complete()
            return
        # Cut once any byte came (not only once the headers had): the server took the request,
        # so the pool must not send it again.
        error = ServerDisconnected(
            "the server closed the connection" + (" mid-response" if self._got_bytes else ""),
            cut=self._got_bytes,
        )
        if exc is not None:
            error.__cause__ = exc
        self._fail(error)


class _Connection(asyncio.Protocol):
    """One keep-alive TCP connection; feeds the bytes of its current response to httptools."""

    def __init__(self, pool: HttpPool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._paused = False
        self._keep_alive = False
        self._interim = False  # the message being parsed is a 1xx, not the response

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: the connection can't be trusted
            self.abort()
            return
        response._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            error = BadResponse("the server sent a malformed HTTP response")
            error.__cause__ = exc
            response._fail(error)
            self.abort()

    def eof_received(self) -> bool:
        return False  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None:
            response._on_lost(exc)

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and other interim answers: the real one follows
            self._interim = True
            if self.response is not None:
                self.response._raw_headers.clear()
            return
        if self.response is not None:
            self.response._on_headers(status)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._on_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it after this call
        if self.response is not None:
            self.response._on_complete()

    # -- used by Response and HttpPool -----------------------------------------------------------

    def send(self, head: bytes, body: bytes | None, timeout: float | None) -> Response:
        response = self.response = Response(self, timeout)
        self._keep_alive = False
        transport = self.transport
        assert transport is not None
        if body and len(body) > _SPLIT_WRITE_ABOVE:
            transport.write(head)
            transport.write(body)
        else:
            transport.write(head + body if body else head)
        return response

    def pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def finished(self, *, reusable: bool) -> None:
        """The caller is done with the response: back to the pool, or closed."""
        keep = reusable and not self.closed and self._keep_alive
        self.response = None
        if not keep:
            self.abort()
        self.resume()
        self.pool._checkin(self, keep)


class HttpPool:
    """Keep-alive connections per origin, at most ``limit`` in use at once (others wait)."""

    def __init__(
        self,
        *,
        limit: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        keepalive: float = 60.0,
        user_agent: str = "gemini-gateway",
        ssl_context: ssl.SSLContext | None = None,  # default: the system's trusted CAs
    ) -> None:
        self._limit = max(1, limit)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keepalive = keepalive
        self._user_agent = user_agent
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._in_use = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ssl: ssl.SSLContext | None = ssl_context
        self._closed = False

    async def request(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """Send one request; returns once the status line and headers have arrived."""
        head = self._head(method, url, headers, body)
        await self._take_slot()
        try:
            conn = await self._connection(url)
            try:
                return await self._exchange(conn, head, body)
            except ServerDisconnected as exc:
                # A kept-alive connection the server had already closed: once more on a new one.
                if not (conn.reused and not exc.cut):
                    raise
            conn = await self._open(self._origin(url))
            return await self._exchange(conn, head, body)
        except BaseException:
            self._give_slot()
            raise

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.abort()
        self._idle.clear()

    # -- internals -------------------------------------------------------------------------------

    async def _exchange(self, conn: _Connection, head: bytes, body: bytes | None) -> Response:
        response = conn.send(head, body, self._read_timeout)
        try:
            while not response._headers_done:
                if response._error is not None:
                    raise response._error
                await response._wait()
        except BaseException:
            conn.response = None
            conn.abort()
            raise
        return response

    def _head(self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None) -> bytes:
        host = url.raw_host or ""
        if ":" in host:  # an IPv6 literal goes in brackets
            host = f"[{host}]"
        port = url.port
        if port is not None and port != _DEFAULT_PORTS.get(url.scheme):
            host = f"{host}:{port}"
        lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {host}"]
        lines.append(f"User-Agent: {self._user_agent}")
        lines.append("Accept-Encoding: identity")
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError("a header name or value holds a line break")
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body else 0}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @staticmethod
    def _origin(url: URL) -> tuple[str, str, int]:
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        return scheme, url.raw_host or "", url.port or _DEFAULT_PORTS[scheme]

    async def _connection(self, url: URL) -> _Connection:
        key = self._origin(url)
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                conn.reused = True
                return conn
            conn.abort()
        return await self._open(key)

    async def _open(self, key: tuple[str, str, int]) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, key), host, port, ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection within {self._connect_timeout:g} s") from exc
        except socket.gaierror as exc:
            raise NameNotResolved("the upstream host name did not resolve") from exc
        except ssl.SSLError as exc:
            raise TLSFailed("the TLS handshake failed") from exc
        except OSError as exc:
            raise ConnectFailed("could not connect to the upstream host") from exc
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return conn

    async def _take_slot(self) -> None:
        """A connection slot; first come, first served once the pool is full."""
        waiters = self._waiters
        while waiters and waiters[0].done():  # callers that gave up while waiting
            waiters.popleft()
        if self._in_use < self._limit and not waiters:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter  # _give_slot handed its slot over: _in_use already counts it
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_slot()  # handed over, then cancelled: pass it on
            raise

    def _give_slot(self) -> None:
        """Hand the slot to the oldest waiter, so a newcomer cannot take it first; else free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_use -= 1

    def _checkin(self, conn: _Connection, keep: bool) -> None:
        if keep and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.key, []).append(conn)
        elif keep:  # the pool closed while this response was being read
            conn.abort()
        self._give_slot()
