"""map_client_error: each aiohttp/asyncio failure to the gateway error a client should see."""

from __future__ import annotations

import aiohttp
import pytest

from gemini_gateway.errors import UpstreamError, UpstreamTimeout
from gemini_gateway.upstream.http_errors import map_client_error


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(aiohttp.ConnectionTimeoutError(), UpstreamTimeout, id="connect-timeout"),
        pytest.param(aiohttp.SocketTimeoutError(), UpstreamTimeout, id="read-timeout"),
        pytest.param(TimeoutError(), UpstreamTimeout, id="builtin-timeout"),
        pytest.param(aiohttp.ServerDisconnectedError(), UpstreamError, id="disconnected"),
        pytest.param(aiohttp.ClientPayloadError("cut"), UpstreamError, id="payload"),
        pytest.param(aiohttp.ClientOSError(), UpstreamError, id="os-error"),
    ],
)
def test_map_client_error(exc: BaseException, expected: type) -> None:
    assert type(map_client_error(exc)) is expected


def test_mapped_error_is_chained_and_says_no_more_than_the_failure() -> None:
    cause = aiohttp.ClientOSError(111, "connect to http://user:secret@proxy.example failed")
    error = map_client_error(cause)
    assert error.__cause__ is cause
    assert "secret" not in error.message


def test_timeout_message_names_the_limit() -> None:
    assert "0.5 s" in map_client_error(aiohttp.SocketTimeoutError(), 0.5).message
