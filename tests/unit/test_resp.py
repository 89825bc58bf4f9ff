"""The limiter's small Redis client: the wire format, and the real server at 127.0.0.1:6379."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from gemini_gateway.store.resp import RespClient, Script, encode_command, parse_reply, supports


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param(b":42\r\n", 42, id="integer"),
        pytest.param(b"+OK\r\n", "OK", id="simple"),
        pytest.param(b"$3\r\nabc\r\n", b"abc", id="bulk"),
        pytest.param(b"$-1\r\n", None, id="nil"),
        pytest.param(b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n:-2\r\n", [1, b"x", [-2]], id="nested"),
        pytest.param(b"*0\r\n", [], id="empty-array"),
    ],
)
def test_parse_reply(raw: bytes, value: object) -> None:
    assert parse_reply(bytearray(raw), 0) == (value, len(raw))


@pytest.mark.parametrize("raw", [b":4", b"$3\r\nab", b"*2\r\n:1\r\n", b"*2\r\n:1\r\n$2\r\nx"])
def test_parse_reply_waits_for_the_rest(raw: bytes) -> None:
    from gemini_gateway.store.resp import _INCOMPLETE

    assert parse_reply(bytearray(raw), 0) is _INCOMPLETE


def test_errors_are_redis_py_classes() -> None:
    error, _ = parse_reply(bytearray(b"-NOSCRIPT No matching script\r\n"), 0)
    assert isinstance(error, NoScriptError)
    error, _ = parse_reply(bytearray(b"-ERR wrong\r\n"), 0)
    assert isinstance(error, ResponseError) and not isinstance(error, NoScriptError)


def test_encode_command() -> None:
    assert encode_command(("SET", "k", 1, 1.5)) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n1.5\r\n"
    )
    assert supports("redis://127.0.0.1:6379/3") and not supports("rediss://h/0")


async def test_scripts_replies_in_order_and_noscript_fallback(redis_url: str) -> None:
    admin = Redis.from_url(redis_url)
    await admin.script_flush()
    client = RespClient(redis_url)
    script = Script("return {tonumber(ARGV[1]) * 2, KEYS[1]}")
    try:
        results = await asyncio.gather(
            *(client.evalsha(script, [f"k{i}"], [i]) for i in range(200))
        )
        assert results == [[i * 2, f"k{i}".encode()] for i in range(200)]
        with pytest.raises(ResponseError):
            await client.evalsha(Script("return redis.call('NOPE')"), [], [])
        assert await client.evalsha(script, ["a"], [4]) == [8, b"a"]  # still in step
    finally:
        await client.close()
        await admin.aclose()


async def test_a_caller_that_gives_up_keeps_the_order(redis_url: str) -> None:
    client = RespClient(redis_url)
    slow = Script("local t = redis.call('TIME'); return 1")
    try:
        first = asyncio.ensure_future(client.evalsha(slow, [], []))
        second = asyncio.ensure_future(client.evalsha(Script("return 2"), [], []))
        first.cancel()
        assert await second == 2
        assert await client.evalsha(Script("return 3"), [], []) == 3
    finally:
        await client.close()


async def test_reconnects_after_the_connection_is_lost(redis_url: str) -> None:
    client = RespClient(redis_url)
    try:
        assert await client.execute("SELECT", 0) == "OK"
        assert client._protocol is not None
        client._protocol.abort()
        await asyncio.sleep(0)
        assert await client.evalsha(Script("return 5"), [], []) == 5
    finally:
        await client.close()


async def test_unreachable_server_is_a_connection_error() -> None:
    client = RespClient("redis://127.0.0.1:1/0", timeout=1)
    with pytest.raises(RedisConnectionError):
        await client.evalsha(Script("return 1"), [], [])


async def test_writes_land_in_the_database_of_the_url(redis_url: str) -> None:
    client = RespClient(redis_url)
    admin = Redis.from_url(redis_url)
    try:
        await client.evalsha(Script("return redis.call('SET', KEYS[1], ARGV[1])"), ["resp:k"], [7])
        assert await admin.get("resp:k") == b"7"
    finally:
        await client.close()
        await admin.aclose()


async def _fake_redis(reply: bytes | None) -> tuple[asyncio.Server, list[bytes]]:
    """A server that records each read; answers every read with ``reply`` (None: never)."""
    reads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            reads.append(data)
            if reply is not None:
                writer.write(reply * data.count(b"*1\r\n"))
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), reads


async def test_commands_of_one_loop_turn_go_out_in_one_write() -> None:
    server, reads = await _fake_redis(b":1\r\n")
    port = server.sockets[0].getsockname()[1]
    client = RespClient(f"redis://127.0.0.1:{port}/0", timeout=2)
    try:
        assert await client.execute("PING") == 1  # connected
        reads.clear()
        results = await asyncio.gather(*(client.execute("PING") for _ in range(5)))
        assert results == [1] * 5
        assert reads == [encode_command(("PING",)) * 5]  # one write, five commands
    finally:
        await client.close()
        server.close()


async def test_a_silent_server_times_out_every_waiting_caller() -> None:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    server, _ = await _fake_redis(None)
    port = server.sockets[0].getsockname()[1]
    client = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await asyncio.gather(
            *(client.execute("PING") for _ in range(3)), return_exceptions=True
        )
        waited = asyncio.get_running_loop().time() - started
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        assert 0.25 <= waited < 1.5
        assert client._protocol is not None and client._protocol.closed  # order unknown: dropped
    finally:
        await client.close()
        server.close()
