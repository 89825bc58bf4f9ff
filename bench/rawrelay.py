"""The leanest Python hop we know how to write: the floor under the floor.

Raw asyncio protocols on uvloop, ``httptools`` (llhttp, in C) parsing both sides, one pooled
keep-alive upstream connection per in-flight request, every upstream read relayed as one chunk.
No routing, no request or response objects, no error handling beyond closing the connection.
It answers one question: how much CPU does a Python process spend merely relaying a request and
its answer on this machine? Whatever that costs, no Python gateway can cost less.

Not a server to use: it trusts its peers (the benchmark's ``wrk`` and the simulator) completely.

Run: ``python bench/rawrelay.py --port 9002 --upstream http://127.0.0.1:8089``
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop

FORWARDED = (b"content-type", b"x-goog-api-key", b"authorization")


class Upstream(asyncio.Protocol):
    """One keep-alive connection to the upstream; relays one answer at a time to a client."""

    def __init__(self, pool: list[Upstream]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.client: Downstream | None = None
        self.transport: asyncio.Transport | None = None
        self.chunked = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None:
            self.client.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.content_type = b"application/json"

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value

    def on_headers_complete(self) -> None:
        assert self.client is not None
        self.chunked = self.parser.get_status_code() == 200 and b"event-stream" in self.content_type
        status = self.parser.get_status_code()
        head = b"HTTP/1.1 %d OK\r\ncontent-type: %s\r\n" % (status, self.content_type)
        if self.chunked:
            self.client.transport.write(head + b"transfer-encoding: chunked\r\n\r\n")
        else:
            self.head = head
            self.body: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        assert self.client is not None
        if self.chunked:
            self.client.transport.write(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        assert client is not None
        if self.chunked:
            client.transport.write(b"0\r\n\r\n")
        else:
            payload = b"".join(self.body)
            length = b"content-length: %d\r\n\r\n" % len(payload)
            client.transport.write(self.head + length + payload)
        self.pool.append(self)


class Downstream(asyncio.Protocol):
    """One client connection: parses requests and hands each to a pooled upstream connection."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers: list[bytes] = []
        self.body: list[bytes] = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in FORWARDED:
            self.headers.append(name + b": " + value + b"\r\n")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        request = (
            b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s\r\n%s"
            % (self.url, self.relay.host, len(body), b"".join(self.headers), body)
        )
        pool = self.relay.pool
        if pool:
            upstream = pool.pop()
            upstream.client = self
            assert upstream.transport is not None
            upstream.transport.write(request)
        else:
            asyncio.get_running_loop().create_task(self.relay.connect(self, request))


class Relay:
    """The listening side: where the upstream is, and its idle connections."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.host = parts.netloc.encode()
        self.pool: list[Upstream] = []

    async def connect(self, client: Downstream, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(
            lambda: Upstream(self.pool), self.upstream_host, self.upstream_port
        )
        upstream.client = client
        assert upstream.transport is not None
        upstream.transport.write(request)


async def serve(host: str, port: int, upstream: str) -> None:
    relay = Relay(upstream)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Downstream(relay), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="Base URL of the simulator.")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
