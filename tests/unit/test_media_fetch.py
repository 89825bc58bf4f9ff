"""Fetching media URLs: a real HTTP server on 127.0.0.1 (reached through the allow-list), and the
SSRF refusals with the default settings: loopback, private, link-local (cloud metadata), IPv6 and
IPv4-in-IPv6 forms, and redirects into any of them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from gemini_gateway.config import Settings
from gemini_gateway.errors import InvalidRequest, PayloadTooLarge
from gemini_gateway.media.fetch import (
    AddressPolicy,
    MediaFetcher,
    address_refusal,
    redacted_url,
)

PNG = (Path(__file__).parent.parent / "data" / "media" / "image.png").read_bytes()
LOCAL = Settings().replace(media_allowed_networks="127.0.0.1/32", media_max_bytes=4096,
                           media_fetch_timeout=1.0, media_max_redirects=2)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="image/png")


async def _hops(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    target = "/ok.png" if left == 0 else f"/hops/{left - 1}"
    raise web.HTTPFound(target)


async def _to(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect(request.query["target"])


async def _missing(request: web.Request) -> web.Response:
    return web.Response(status=404, text="nope")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"\0" * 5000)


async def _big_chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(10):
        await response.write(b"\0" * 1000)
    await response.write_eof()
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.5)
    return web.Response(body=PNG)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes([
        web.get("/ok.png", _ok), web.get("/hops/{n}", _hops), web.get("/to", _to),
        web.get("/missing", _missing), web.get("/big", _big),
        web.get("/big-chunked", _big_chunked), web.get("/slow", _slow),
    ])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[MediaFetcher]:
    f = MediaFetcher(LOCAL)
    try:
        yield f
    finally:
        await f.close()


class NameResolver(AbstractResolver):
    """Fixed answers for made-up names: the DNS seam, so no real DNS is asked."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(hostname=host, host=ip, port=port, proto=0, flags=0,
                          family=socket.AF_INET6 if ":" in ip else socket.AF_INET)
            for ip in self.names[host]
        ]

    async def close(self) -> None:
        pass


# -- the address policy ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("address", "reason"),
    [
        pytest.param("127.0.0.1", "loopback", id="loopback"),
        pytest.param("127.8.9.10", "loopback", id="loopback-8"),
        pytest.param("10.1.2.3", "private", id="10/8"),
        pytest.param("172.16.0.1", "private", id="172.16/12"),
        pytest.param("192.168.1.1", "private", id="192.168/16"),
        pytest.param("169.254.169.254", "link-local", id="cloud-metadata"),
        pytest.param("0.0.0.0", "unspecified", id="unspecified"),
        pytest.param("224.0.0.1", "multicast", id="multicast"),
        pytest.param("240.0.0.1", "reserved", id="reserved"),
        pytest.param("100.64.0.1", "not public", id="cgnat"),
        pytest.param("::1", "loopback", id="ipv6-loopback"),
        pytest.param("::", "unspecified", id="ipv6-unspecified"),
        pytest.param("fe80::1", "link-local", id="ipv6-link-local"),
        pytest.param("fc00::1", "private", id="ipv6-ula"),
        pytest.param("ff02::1", "multicast", id="ipv6-multicast"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="ipv4-mapped-loopback"),
        pytest.param("::ffff:169.254.169.254", "link-local", id="ipv4-mapped-metadata"),
        pytest.param("2002:7f00:1::", "loopback", id="6to4-loopback"),
        pytest.param("2002:a00:1::1", "private", id="6to4-private"),
        pytest.param("64:ff9b::10.0.0.1", "private", id="nat64-private"),
        pytest.param("64:ff9b::127.0.0.1", "loopback", id="nat64-loopback"),
        pytest.param("64:ff9b:1::1", "private", id="nat64-local-use"),
        pytest.param("::127.0.0.1", "loopback", id="ipv4-compatible"),
    ],
)
def test_refuses_non_public_addresses(address: str, reason: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and refusal.startswith(reason)
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "142.250.74.110", "2001:4860:4860::8888", "::ffff:8.8.8.8",
                "64:ff9b::8.8.8.8", "2002:808:808::1"]
)
def test_allows_public_addresses(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_operator_allow_list_and_allow_private() -> None:
    policy = AddressPolicy.from_settings(
        Settings().replace(media_allowed_networks="10.0.0.0/8, fd00::/8")
    )
    assert policy.refusal(ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal(ipaddress.ip_address("fd12::1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("192.168.0.1")) == "private"
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"
    anything = AddressPolicy.from_settings(Settings().replace(media_allow_private=True))
    assert anything.refusal(ipaddress.ip_address("127.0.0.1")) is None


def test_redacted_url_drops_secrets() -> None:
    shown = redacted_url("https://user:pw@example.com:8443/a/b.png?sig=SECRET#frag")
    assert shown == "https://example.com:8443/a/b.png"


# -- fetching from a real server ------------------------------------------------------------------

async def test_fetches_through_allow_list(server: str, fetcher: MediaFetcher) -> None:
    fetched = await fetcher.fetch(server + "/ok.png")
    assert fetched.data == PNG
    assert fetched.content_type == "image/png"


async def test_follows_redirects_up_to_the_limit(server: str, fetcher: MediaFetcher) -> None:
    assert (await fetcher.fetch(server + "/hops/1")).data == PNG  # 2 redirects: the limit
    with pytest.raises(InvalidRequest, match="more than 2 redirects"):
        await fetcher.fetch(server + "/hops/2")


async def test_http_error_is_400(server: str, fetcher: MediaFetcher) -> None:
    with pytest.raises(InvalidRequest, match="HTTP 404"):
        await fetcher.fetch(server + "/missing?token=SECRET")


async def test_size_cap_from_content_length_and_from_stream(
    server: str, fetcher: MediaFetcher
) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        await fetcher.fetch(server + "/big")
    assert info.value.status == 413
    with pytest.raises(PayloadTooLarge):
        await fetcher.fetch(server + "/big-chunked")


async def test_time_limit(server: str, fetcher: MediaFetcher) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(InvalidRequest, match="longer than 1 s"):
        await fetcher.fetch(server + "/slow")
    assert asyncio.get_running_loop().time() - started < 3


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "http:///nohost"]
)
async def test_only_http_and_https(url: str, fetcher: MediaFetcher) -> None:
    with pytest.raises(InvalidRequest, match="only http and https"):
        await fetcher.fetch(url)


async def test_redirect_to_other_scheme_refused(server: str, fetcher: MediaFetcher) -> None:
    with pytest.raises(InvalidRequest, match="only http and https"):
        await fetcher.fetch(server + "/to?target=file:///etc/passwd")


# -- refusals with the default settings -----------------------------------------------------------

@pytest.fixture
async def default_fetcher() -> AsyncIterator[MediaFetcher]:
    resolver = NameResolver({
        "localhost.test": ["127.0.0.1"],
        "intranet.test": ["10.0.0.7"],
        "metadata.test": ["169.254.169.254"],
        "v6loop.test": ["::1"],
        "mapped.test": ["::ffff:127.0.0.1"],
    })
    f = MediaFetcher(Settings().replace(media_fetch_timeout=2.0), resolver=resolver)
    try:
        yield f
    finally:
        await f.close()


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("127.0.0.1", "loopback", id="loopback-literal"),
        pytest.param("10.0.0.1", "private", id="10/8-literal"),
        pytest.param("169.254.169.254", "link-local", id="metadata-literal"),
        pytest.param("[::1]", "loopback", id="ipv6-loopback-literal"),
        pytest.param("[::ffff:127.0.0.1]", "loopback", id="mapped-literal"),
        pytest.param("localhost.test", "loopback", id="name-to-loopback"),
        pytest.param("intranet.test", "private", id="name-to-10/8"),
        pytest.param("metadata.test", "link-local", id="name-to-metadata"),
        pytest.param("v6loop.test", "loopback", id="name-to-ipv6-loopback"),
        pytest.param("mapped.test", "loopback", id="name-to-mapped"),
    ],
)
async def test_default_refuses_private_targets(
    host: str, reason: str, default_fetcher: MediaFetcher
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await default_fetcher.fetch(f"http://{host}/latest/meta-data?token=SECRET")
    assert info.value.status == 400
    assert reason in info.value.message
    assert "SECRET" not in info.value.message


async def test_default_refuses_the_real_loopback_server(server: str) -> None:
    fetcher = MediaFetcher(Settings())
    try:
        with pytest.raises(InvalidRequest, match="loopback"):
            await fetcher.fetch(server + "/ok.png")
    finally:
        await fetcher.close()


async def test_redirect_to_private_is_refused(server: str) -> None:
    # The first hop is allowed (operator allow-list), the redirect target is not.
    resolver = NameResolver({"intranet.test": ["10.0.0.7"], "mixed.test": ["10.0.0.8"]})
    fetcher = MediaFetcher(LOCAL, resolver=resolver)
    try:
        for target in ("http://10.0.0.1/x", "http://intranet.test/x", "http://[::1]/x",
                       "http://169.254.169.254/latest/meta-data/"):
            with pytest.raises(InvalidRequest, match="refused"):
                await fetcher.fetch(f"{server}/to?target={target}")
    finally:
        await fetcher.close()


async def test_resolver_keeps_only_vetted_addresses(server: str) -> None:
    # A name answering both a refused and an allowed address connects only to the allowed one.
    port = server.rsplit(":", 1)[1]
    resolver = NameResolver({"both.test": ["10.0.0.9", "127.0.0.1"]})
    fetcher = MediaFetcher(LOCAL, resolver=resolver)
    try:
        assert (await fetcher.fetch(f"http://both.test:{port}/ok.png")).data == PNG
    finally:
        await fetcher.close()


async def test_unresolvable_name_is_400(default_fetcher: MediaFetcher) -> None:
    with pytest.raises(InvalidRequest, match="does not resolve"):
        await default_fetcher.fetch("http://nowhere.test/a.png")


async def test_allow_private_lets_loopback_through(server: str) -> None:
    fetcher = MediaFetcher(Settings().replace(media_allow_private=True))
    try:
        assert (await fetcher.fetch(server + "/ok.png")).data == PNG
    finally:
        await fetcher.close()


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "localhost"])
async def test_odd_spellings_of_loopback_are_refused(host: str) -> None:
    # The URL parser rejects the spelling, or the resolver yields 127.0.0.1 and vetting sees it.
    fetcher = MediaFetcher(Settings().replace(media_fetch_timeout=5.0))
    try:
        with pytest.raises(InvalidRequest, match="refused|does not resolve|not valid"):
            await fetcher.fetch(f"http://{host}:9/x.png")
    finally:
        await fetcher.close()
