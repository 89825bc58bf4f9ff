"""``http11.HttpPool`` against real servers on 127.0.0.1.

Where the raw bytes matter (framing, closing, stalling) the server is a tiny ``asyncio``
server of the test's own that writes exact bytes; an ``aiohttp.web`` server takes the upload.
Nothing of ``http11`` is mocked; a few tests read the pool's private counters as evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest
import trustme
from aiohttp import web
from yarl import URL

from gemini_gateway.upstream import http11
from gemini_gateway.upstream.http_errors import map_client_error

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PoolFactory = Callable[..., http11.HttpPool]


@dataclass
class RawServer:
    url: URL
    connections: int = 0


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    """A server that runs ``handler`` per accepted connection and closes it after."""
    info = RawServer(URL("http://127.0.0.1"))
    tasks: set[asyncio.Task[object]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the test is over (a cancelled handler task would be logged as an error)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    info.url = URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield info
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and its Content-Length body; IncompleteReadError at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length) if length else b""


def path_of(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode()


def ok(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def echo_path(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive: answers every request with its path."""
    while True:
        head, _ = await read_request(reader)
        writer.write(ok(path_of(head).encode()))


async def within(awaitable: Awaitable[T], timeout: float = 2.0) -> T:
    """The awaitable's result; a plain TimeoutError (a failed test, not a hang) after timeout."""
    return await asyncio.wait_for(awaitable, timeout)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
async def new_pool() -> AsyncIterator[PoolFactory]:
    made: list[http11.HttpPool] = []

    def make(limit: int = 8, read_timeout: float | None = 5.0) -> http11.HttpPool:
        pool = http11.HttpPool(limit=limit, connect_timeout=5.0, read_timeout=read_timeout)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        await pool.close()


@pytest.fixture
def pool(new_pool: PoolFactory) -> http11.HttpPool:
    return new_pool()


# -- framing -------------------------------------------------------------------------------------


async def test_content_length_body_status_and_case_insensitive_headers(
    pool: http11.HttpPool,
) -> None:
    body = b'{"ok": true}'

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json; charset=utf-8\r\n"
                     b"X-Request-Id: r-1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await reader.read()

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url / "x", {}, None)
        assert resp.status == 201
        assert resp.headers["x-request-id"] == resp.headers["X-REQUEST-ID"] == "r-1"
        assert resp.content_type == "application/json"
        assert await resp.read() == body
        assert pool._in_use == 0


async def test_chunked_body_is_read_chunk_by_chunk_as_it_arrives(pool: http11.HttpPool) -> None:
    next_chunk = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        for chunk in (b"6\r\nsecond\r\n", b"0\r\n\r\n"):
            await next_chunk.wait()  # only once the client has read the previous chunk
            next_chunk.clear()
            writer.write(chunk)
        await reader.read()

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        assert await resp.content.readany() == b"first"
        next_chunk.set()
        assert await resp.content.readany() == b"second"
        next_chunk.set()
        assert await resp.content.readany() == b""
        resp.release()
        assert pool._in_use == 0


async def test_body_without_length_or_chunking_ends_with_the_connection(
    pool: http11.HttpPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"the end")  # then raw_server closes the connection

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        assert await resp.read() == b"until the end"
        assert pool._in_use == 0


# -- keep-alive ----------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(pool: http11.HttpPool) -> None:
    async with raw_server(echo_path) as server:
        for path in ("/a", "/b"):
            resp = await pool.request("GET", server.url / path[1:], {}, None)
            assert await resp.read() == path.encode()
        assert server.connections == 1


async def test_response_with_connection_close_is_not_reused(pool: http11.HttpPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # says "close" but keeps the socket open: the pool must decide
            await read_request(reader)
            writer.write(ok(b"x", "Connection: close"))

    async with raw_server(handler) as server:
        for _ in range(2):
            resp = await pool.request("GET", server.url, {}, None)
            assert await resp.read() == b"x"
        assert server.connections == 2


async def test_response_closed_before_read_is_not_reused(pool: http11.HttpPool) -> None:
    async with raw_server(echo_path) as server:
        resp = await pool.request("GET", server.url / "a", {}, None)
        resp.close()
        resp = await pool.request("GET", server.url / "b", {}, None)
        assert await resp.read() == b"/b"
        assert server.connections == 2
        assert pool._in_use == 0


async def test_connection_the_server_closed_while_idle_is_replaced(pool: http11.HttpPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        writer.write(ok(path_of(head).encode()))  # keep-alive, yet closed right after

    async with raw_server(handler) as server:
        for path in ("/a", "/b"):
            resp = await pool.request("GET", server.url / path[1:], {}, None)
            assert await resp.read() == path.encode()
        assert server.connections == 2


async def test_reused_connection_dropped_before_any_byte_is_retried_on_a_new_one(
    pool: http11.HttpPool,
) -> None:
    number = itertools.count(1)
    dropped: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if next(number) > 1:
            return await echo_path(reader, writer)
        head, _ = await read_request(reader)
        writer.write(ok(path_of(head).encode()))
        head, _ = await read_request(reader)
        dropped.append(path_of(head))  # then closed without a byte of answer

    async with raw_server(handler) as server:
        for path in ("/a", "/b"):
            resp = await pool.request("POST", server.url / path[1:], {}, b"{}")
            assert await resp.read() == path.encode()
        assert dropped == ["/b"]  # the retry, not a connection already known to be closed
        assert server.connections == 2


async def test_reused_connection_cut_after_the_status_line_is_not_retried(
    pool: http11.HttpPool,
) -> None:
    number = itertools.count(1)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if next(number) > 1:
            return await echo_path(reader, writer)
        await read_request(reader)
        writer.write(ok(b"a"))
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")  # then closed

    async with raw_server(handler) as server:
        resp = await pool.request("POST", server.url, {}, b"{}")
        await resp.read()
        with pytest.raises(http11.ServerDisconnected) as info:
            await pool.request("POST", server.url, {}, b"{}")
        assert info.value.cut
        assert server.connections == 1
        assert pool._in_use == 0
        assert map_client_error(info.value).message == "The upstream API's response was cut off."


async def test_fresh_connection_closed_before_any_byte_is_not_retried(
    pool: http11.HttpPool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # then closed

    async with raw_server(handler) as server:
        with pytest.raises(http11.ServerDisconnected) as info:
            await pool.request("GET", server.url, {}, None)
        assert not info.value.cut
        assert server.connections == 1
        assert pool._in_use == 0
        assert map_client_error(info.value).message == "The upstream API closed the connection."


async def test_body_cut_off_mid_way_raises_server_disconnected(pool: http11.HttpPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")  # then closed

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        with pytest.raises(http11.ServerDisconnected) as info:
            await resp.read()
        assert info.value.cut
        resp.release()
        assert pool._in_use == 0


# -- timeouts and failures -----------------------------------------------------------------------


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request and never answers."""
    await read_request(reader)
    await reader.read()


async def test_server_that_never_answers_raises_read_timeout(new_pool: PoolFactory) -> None:
    pool = new_pool(read_timeout=0.2)
    async with raw_server(hold) as server:
        start = time.monotonic()
        with pytest.raises(http11.ReadTimeout) as info:
            await within(pool.request("GET", server.url, {}, None))
        assert 0.15 <= time.monotonic() - start < 1.5
    assert isinstance(info.value, TimeoutError)
    assert pool._in_use == 0
    message = map_client_error(info.value, 0.2).message
    assert message == "The upstream API did not respond within 0.2 s."


async def test_stream_stalling_mid_body_raises_read_timeout_from_readany(
    new_pool: PoolFactory,
) -> None:
    pool = new_pool(read_timeout=0.2)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n")
        await reader.read()

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        assert await resp.content.readany() == b"data"
        start = time.monotonic()
        with pytest.raises(http11.ReadTimeout):
            await within(resp.content.readany())
        assert 0.15 <= time.monotonic() - start < 1.5
        resp.release()
        assert pool._in_use == 0


async def test_refused_connection_raises_connect_failed(pool: http11.HttpPool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        url = URL(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        with pytest.raises(http11.ConnectFailed) as info:
            await pool.request("GET", url, {}, None)
    assert pool._in_use == 0
    assert map_client_error(info.value).message == "Could not connect to the upstream API."


async def test_garbage_instead_of_http_raises_bad_response(pool: http11.HttpPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"garbage\x00 not http\r\n\r\n")
        await reader.read()  # kept open: the parser, not a disconnect, must fail it

    async with raw_server(handler) as server:
        with pytest.raises(http11.BadResponse) as info:
            await pool.request("GET", server.url, {}, None)
    assert pool._in_use == 0
    message = map_client_error(info.value).message
    assert message == "The upstream API sent a malformed HTTP response."


# -- the connection limit and cancellation -------------------------------------------------------


@dataclass
class HoldingServer:
    """Answers each request (by path) only once the test sets its event."""

    arrived: asyncio.Queue[str]
    answer: dict[str, asyncio.Event]
    log: list[str]

    @classmethod
    def new(cls, *paths: str) -> HoldingServer:
        return cls(asyncio.Queue(), {p: asyncio.Event() for p in paths}, [])

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            path = path_of(head)
            self.log.append(path)
            self.arrived.put_nowait(path)
            await self.answer[path].wait()
            writer.write(ok(path.encode()))


async def test_request_over_the_limit_waits_for_a_released_slot(new_pool: PoolFactory) -> None:
    pool = new_pool(limit=2)
    held = HoldingServer.new("/1", "/2", "/3")
    async with raw_server(held) as server:
        tasks = [asyncio.create_task(pool.request("GET", server.url / p, {}, None))
                 for p in ("1", "2", "3")]
        arrivals = {await within(held.arrived.get()), await within(held.arrived.get())}
        assert arrivals == {"/1", "/2"}
        await until(lambda: len(pool._waiters) == 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(held.arrived.get(), 0.05)
        held.answer["/1"].set()
        first = await within(tasks[0])
        held.log.append("released /1")
        assert await first.read() == b"/1"
        assert await within(held.arrived.get()) == "/3"
        assert held.log[2:] == ["released /1", "/3"]
        held.answer["/2"].set()
        held.answer["/3"].set()
        for task in tasks[1:]:
            await (await within(task)).read()
        assert pool._in_use == 0


async def test_cancelled_waiter_does_not_leak_a_slot(new_pool: PoolFactory) -> None:
    pool = new_pool(limit=2)
    held = HoldingServer.new("/1", "/2", "/3", "/4", "/5")
    async with raw_server(held) as server:
        first = [asyncio.create_task(pool.request("GET", server.url / p, {}, None))
                 for p in ("1", "2")]
        waiting = asyncio.create_task(pool.request("GET", server.url / "3", {}, None))
        await until(lambda: len(pool._waiters) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for path in ("/1", "/2", "/4", "/5"):
            held.answer[path].set()
        for task in first:
            await (await within(task)).read()
        assert pool._in_use == 0
        more = await within(asyncio.gather(
            *(pool.request("GET", server.url / p, {}, None) for p in ("4", "5"))))
        assert [await resp.read() for resp in more] == [b"/4", b"/5"]
        assert pool._in_use == 0
        assert "/3" not in held.log


async def test_wake_up_of_a_waiter_cancelled_meanwhile_goes_to_the_next(
    new_pool: PoolFactory,
) -> None:
    pool = new_pool(limit=1)
    async with raw_server(echo_path) as server:
        held = await pool.request("GET", server.url / "1", {}, None)
        second = asyncio.create_task(pool.request("GET", server.url / "2", {}, None))
        third = asyncio.create_task(pool.request("GET", server.url / "3", {}, None))
        await until(lambda: len(pool._waiters) == 2)
        held.release()  # wakes the second request...
        second.cancel()  # ...which is cancelled before it could run
        resp = await within(third)
        assert await resp.read() == b"/3"
        assert second.cancelled()
        assert pool._in_use == 0


async def test_cancelling_a_request_waiting_for_headers_frees_its_slot_and_connection(
    pool: http11.HttpPool,
) -> None:
    got_request = asyncio.Event()
    client_closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()  # EOF: the client closed the connection
        client_closed.set()

    async with raw_server(handler) as server:
        task = asyncio.create_task(pool.request("GET", server.url, {}, None))
        await within(got_request.wait())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool._in_use == 0
        await within(client_closed.wait())
        assert not any(pool._idle.values())


async def test_close_from_another_task_wakes_a_waiting_reader(pool: http11.HttpPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await reader.read()

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        reader = asyncio.create_task(resp.content.readany())
        await until(lambda: resp._waiter is not None)
        resp.close()
        with pytest.raises(http11.ServerDisconnected):
            await within(reader, 1)  # well before the 5 s read timeout
        assert pool._in_use == 0


# -- what goes out -------------------------------------------------------------------------------


async def test_request_head_has_method_path_host_headers_and_length(
    pool: http11.HttpPool,
) -> None:
    seen: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.set_result(await read_request(reader))
        writer.write(ok(b""))
        await reader.read()

    async with raw_server(handler) as server:
        url = URL(f"{server.url}/v1beta/models/m:streamGenerateContent?alt=sse&x=1", encoded=True)
        headers = {"x-goog-api-key": "secret", "Content-Type": "application/json"}
        resp = await pool.request("POST", url, headers, b'{"a": 1}')
        await resp.read()
        head, body = await seen
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /v1beta/models/m:streamGenerateContent?alt=sse&x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.port}" in lines
    assert "x-goog-api-key: secret" in lines
    assert "Content-Type: application/json" in lines
    assert "Content-Length: 8" in lines
    assert body == b'{"a": 1}'


def test_host_header_leaves_out_the_default_port(pool: http11.HttpPool) -> None:
    head = pool._head("GET", URL("https://example.com:443/v1?k=v"), {}, None)
    assert head.startswith(b"GET /v1?k=v HTTP/1.1\r\nHost: example.com\r\n")


def test_host_header_brackets_an_ipv6_literal(pool: http11.HttpPool) -> None:
    head = pool._head("GET", URL("http://[::1]:8089/v1beta/models"), {}, None)
    assert b"\r\nHost: [::1]:8089\r\n" in head


async def test_an_interim_100_continue_is_skipped_for_the_real_answer(
    pool: http11.HttpPool,
) -> None:
    async def continue_then_answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)  # the interim answer arrives on its own
            writer.write(ok(b"done", "X-Final: yes"))

    async with raw_server(continue_then_answer) as server:
        for _ in range(2):  # and the connection stays usable for the next request
            response = await within(pool.request("POST", server.url, {}, b"x"))
            assert response.status == 200
            assert response.headers.get("X-Final") == "yes"
            assert "X-Interim" not in response.headers
            assert await within(response.read()) == b"done"
        assert server.connections == 1


async def test_header_value_with_a_line_break_is_refused(pool: http11.HttpPool) -> None:
    async with raw_server(echo_path) as server:
        with pytest.raises(ValueError):
            await pool.request("GET", server.url, {"X-Note": "a\r\nX-Evil: 1"}, None)
        assert server.connections == 0
    assert pool._in_use == 0


@contextlib.asynccontextmanager
async def web_server(app: web.Application) -> AsyncIterator[URL]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield URL(f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


async def test_large_request_body_arrives_intact(pool: http11.HttpPool) -> None:
    async def digest(request: web.Request) -> web.Response:
        return web.Response(text=hashlib.sha256(await request.read()).hexdigest())

    app = web.Application(client_max_size=4 << 20)
    app.router.add_post("/upload", digest)
    body = bytes(range(256)) * 4096  # 1 MiB
    async with web_server(app) as url:
        resp = await pool.request("POST", url / "upload", {}, body)
        assert resp.status == 200
        assert await resp.read() == hashlib.sha256(body).hexdigest().encode()


@pytest.mark.parametrize("reading", ["read", "readany"])
async def test_body_over_a_mebibyte_buffered_unread_arrives_whole_later(
    new_pool: PoolFactory, reading: str
) -> None:
    pool = new_pool(read_timeout=1.0)
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(body))
        await reader.read()

    async with raw_server(handler) as server:
        resp = await pool.request("GET", server.url, {}, None)
        await until(lambda: resp._size > http11._PAUSE_ABOVE)
        await asyncio.sleep(0.05)  # time enough for the rest, had reading not paused
        assert resp._size < len(body)
        if reading == "read":
            got = await resp.read()
        else:
            parts: list[bytes] = []
            while chunk := await resp.content.readany():
                parts.append(chunk)
            resp.release()
            got = b"".join(parts)
        assert got == body
        assert pool._in_use == 0


# -- TLS, as against generativelanguage.googleapis.com ---------------------------------------------


@contextlib.asynccontextmanager
async def _tls_server(server_context: ssl.SSLContext) -> AsyncIterator[int]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=b"tls:" + await request.read())

    app = web.Application()
    app.router.add_post("/v1beta/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_https_to_a_server_whose_certificate_verifies() -> None:


    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    pool = http11.HttpPool(
        limit=2, connect_timeout=5.0, read_timeout=5.0, ssl_context=client_context
    )
    try:
        async with _tls_server(server_context) as port:
            url = URL(f"https://127.0.0.1:{port}/v1beta/echo")
            for _ in range(2):  # the second request reuses the TLS connection
                response = await pool.request("POST", url, {}, b"hello")
                assert response.status == 200
                assert await response.read() == b"tls:hello"
            assert sum(len(conns) for conns in pool._idle.values()) == 1
    finally:
        await pool.close()


async def test_https_to_an_untrusted_certificate_fails_the_handshake() -> None:


    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_context)
    pool = http11.HttpPool(limit=2, connect_timeout=5.0, read_timeout=5.0)  # system CAs only
    try:
        async with _tls_server(server_context) as port:
            url = URL(f"https://127.0.0.1:{port}/v1beta/echo")
            with pytest.raises(http11.TLSFailed) as info:
                await pool.request("POST", url, {}, b"hello")
        assert map_client_error(info.value).message == "TLS handshake with the upstream API failed."
        assert pool._in_use == 0
    finally:
        await pool.close()


async def test_a_response_read_after_the_pool_closed_closes_its_connection(
    pool: http11.HttpPool,
) -> None:
    async with raw_server(echo_path) as server:
        response = await within(pool.request("GET", server.url / "late", {}, None))
        await pool.close()
        assert await within(response.read()) == b"/late"
        assert response._conn.closed  # not left open, nor put back in a closed pool
        assert not pool._idle


async def test_a_freed_slot_goes_to_the_oldest_waiter_not_to_a_newcomer(
    new_pool: PoolFactory,
) -> None:
    pool = new_pool(limit=1)
    order: list[str] = []

    async def ask(name: str) -> None:
        response = await pool.request("GET", server.url / name, {}, None)
        order.append(name)
        await response.read()

    async with raw_server(echo_path) as server:
        first = await within(pool.request("GET", server.url / "first", {}, None))
        waiting = asyncio.create_task(ask("waiter"))
        await until(lambda: len(pool._waiters) == 1)
        async with asyncio.timeout(2):  # all inline, no task: nothing yields in between
            assert await first.read() == b"/first"  # frees the slot
            await ask("newcomer")  # asks before the woken waiter has run
            await waiting
        assert order == ["waiter", "newcomer"]
        assert pool._in_use == 0
