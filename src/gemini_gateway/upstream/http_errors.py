"""The one boundary where aiohttp, ``http11`` and asyncio exceptions become ``errors.py`` classes.

Nothing above ``upstream/`` catches an aiohttp exception: every ``except`` around aiohttp in
``client.py`` and ``stream.py`` passes what it caught through ``map_client_error``.
"""

from __future__ import annotations

import aiohttp

from gemini_gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gemini_gateway.upstream import http11

# What the upstream calls catch: aiohttp's own errors, timeouts (asyncio's is the builtin one),
# and socket errors that slip through aiohttp unwrapped.
CLIENT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


def map_client_error(exc: BaseException, timeout: float | None = None) -> GatewayError:
    """aiohttp/asyncio failures as gateway errors, chained to ``exc`` (as ``raise … from``).

    Messages name the failure, never the exception text: that can hold a proxy URL with
    credentials.
    """
    error = _error_for(exc, timeout)
    error.__cause__ = exc  # kept when the error is raised later, after the retries ran out
    error.__suppress_context__ = True
    return error


def _error_for(exc: BaseException, timeout: float | None) -> GatewayError:
    """Most specific first: the timeouts are also OSErrors, the proxy error a connector error."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | http11.ConnectTimeout):
        return UpstreamTimeout("Timed out connecting to the upstream API.")
    if isinstance(exc, TimeoutError):  # SocketTimeoutError, ServerTimeoutError, asyncio's
        within = f" within {timeout:g} s" if timeout else ""
        return UpstreamTimeout(f"The upstream API did not respond{within}.")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return UpstreamError("Could not connect to the upstream proxy.")
    if isinstance(exc, aiohttp.ClientConnectorDNSError | http11.NameNotResolved):
        return UpstreamError("Could not resolve the upstream API's host name.")
    if isinstance(exc, aiohttp.ClientSSLError | http11.TLSFailed):
        return UpstreamError("TLS handshake with the upstream API failed.")
    if isinstance(exc, aiohttp.ClientConnectorError | http11.ConnectFailed):
        return UpstreamError("Could not connect to the upstream API.")
    if isinstance(exc, http11.ServerDisconnected) and exc.cut:
        return UpstreamError("The upstream API's response was cut off.")
    if isinstance(exc, aiohttp.ServerDisconnectedError | http11.ServerDisconnected):
        return UpstreamError("The upstream API closed the connection.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError("The upstream API's response was cut off.")
    if isinstance(exc, http11.BadResponse):
        return UpstreamError("The upstream API sent a malformed HTTP response.")
    if isinstance(exc, aiohttp.InvalidURL):
        return UpstreamError("The upstream URL is invalid; check upstream_base_url.")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError(f"Upstream connection failed ({type(exc).__name__}).")
    return UpstreamError(f"Upstream request failed ({type(exc).__name__}).")
