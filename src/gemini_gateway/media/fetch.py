"""Fetching media URLs without letting a client aim the gateway at its own network (SSRF).

Every host name goes through ``VettedResolver``, an aiohttp resolver that returns only addresses
the ``AddressPolicy`` allows, so the socket connects to exactly the address that was checked and a
DNS answer that changes between check and connect (rebinding) cannot slip through. IP literals,
which aiohttp never hands to a resolver, are checked here before each request. Redirects are
followed by hand, at most ``media_max_redirects``, each hop checked the same way. Bodies stream in
under a byte cap and the whole fetch under one deadline. Proxies from the environment are ignored
(``trust_env=False``): a proxy would connect on our behalf to an address we never saw.

Errors are ``InvalidRequest`` (400) saying why, naming the URL without its query string or
credentials, which may hold secrets; too large is ``PayloadTooLarge`` (413).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gemini_gateway.config import Settings
from gemini_gateway.errors import InvalidRequest, PayloadTooLarge

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class FetchedMedia:
    data: bytes | bytearray
    content_type: str | None  # as the server declared it; informative only, never trusted


class AddressPolicy:
    """Which addresses media fetches may connect to: public ones plus what the operator allows."""

    def __init__(self, allow_private: bool = False, allowed: Iterable[IPNetwork] = ()) -> None:
        self.allow_private = allow_private
        self.allowed = tuple(allowed)

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        networks = []
        for text in str(settings.media_allowed_networks or "").split(","):
            if text.strip():
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
        return cls(bool(settings.media_allow_private), networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be fetched from, or None when it may."""
        if self.allow_private:
            return None
        if any(address in net for net in self.allowed):
            return None
        return address_refusal(address, self.allowed)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64, Teredo client, compatible)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def address_refusal(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why a non-public ``address`` is refused ("loopback", "private", …), None if public."""
    inner = embedded_ipv4(address)
    if inner is not None:
        if any(inner in net for net in allowed):
            return None
        reason = address_refusal(inner)
        return f"{reason} (inside {address.compressed})" if reason else None
    if address in _NAT64_LOCAL:
        return "private"
    for reason, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return reason
    if not address.is_global:
        return "not public"
    return None


class AddressRefused(Exception):
    """Raised inside the resolver; turned into a 400 by ``MediaFetcher``."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host} resolves to a {reason} address")
        self.host, self.reason = host, reason


class VettedResolver(AbstractResolver):
    """Resolve with the system resolver, then keep only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        kept, reasons = [], []
        for result in results:
            reason = self.policy.refusal(ipaddress.ip_address(result["host"].split("%", 1)[0]))
            if reason is None:
                kept.append(result)
            else:
                reasons.append(reason)
        if not kept:
            raise AddressRefused(host, reasons[0] if reasons else "unusable")
        return kept

    async def close(self) -> None:
        await self.inner.close()


def redacted_url(url: URL | str) -> str:
    """scheme://host[:port]/path: no credentials, query or fragment (they may hold secrets)."""
    url = URL(str(url)) if not isinstance(url, URL) else url
    if not url.is_absolute():
        return "(relative URL)"
    shown = url.with_user(None).with_query(None).with_fragment(None)
    text = str(shown)
    return text if len(text) <= 200 else text[:200] + "…"


class MediaFetcher:
    """Downloads media URLs for one gateway process; one aiohttp session, made on first use."""

    def __init__(
        self,
        settings: Settings,
        policy: AddressPolicy | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.max_bytes = int(settings.media_max_bytes)
        self.timeout = float(settings.media_fetch_timeout)
        self.max_redirects = int(settings.media_max_redirects)
        self.policy = policy or AddressPolicy.from_settings(settings)
        self._inner_resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=VettedResolver(self.policy, self._inner_resolver), limit=64
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                headers={"User-Agent": "gemini-gateway media fetcher", "Accept": "*/*"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> FetchedMedia:
        """GET ``url`` (http/https), following checked redirects, within the size and time caps."""
        target = URL(url)
        shown = redacted_url(target)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(target)
        except TimeoutError as exc:
            raise InvalidRequest(
                f"Fetching media URL {shown} took longer than {self.timeout:g} s.", param="messages"
            ) from exc
        except AddressRefused as exc:
            raise InvalidRequest(
                f"Media URL {shown} refused: {exc}; the gateway only fetches public addresses.",
                param="messages",
            ) from exc
        except aiohttp.ClientError as exc:
            raise InvalidRequest(
                f"Could not fetch media URL {shown}: {_describe_client_error(exc)}.",
                param="messages",
            ) from exc

    async def _follow(self, url: URL) -> FetchedMedia:
        session = self._client()
        for _ in range(self.max_redirects + 1):
            self._check_url(url)
            async with session.get(url, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise InvalidRequest(
                            f"Media URL {redacted_url(url)} redirected without a Location.",
                            param="messages",
                        )
                    url = url.join(URL(location))
                    continue
                if response.status != 200:
                    raise InvalidRequest(
                        f"Media URL {redacted_url(url)} answered HTTP {response.status}.",
                        param="messages",
                    )
                data = await self._read_capped(response, url)
                return FetchedMedia(data, response.headers.get("Content-Type"))
        raise InvalidRequest(
            f"Media URL {redacted_url(url)}: more than {self.max_redirects} redirects.",
            param="messages",
        )

    def _check_url(self, url: URL) -> None:
        """Scheme http(s), a host, and a permitted address when the host is an IP literal."""
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequest(
                f"Media URL {redacted_url(url)}: only http and https URLs can be fetched.",
                param="messages",
            )
        try:
            literal = ipaddress.ip_address(url.host.strip("[]").split("%", 1)[0])
        except ValueError:
            return  # a name: VettedResolver checks what it resolves to
        reason = self.policy.refusal(literal)
        if reason is not None:
            raise AddressRefused(literal.compressed, reason)

    async def _read_capped(
        self, response: aiohttp.ClientResponse, url: URL
    ) -> bytes | bytearray:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise self._too_large(url)
        if declared is not None and not response.headers.get("Content-Encoding"):
            return await self._read_exactly(response, declared)
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_large(url)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _read_exactly(self, response: aiohttp.ClientResponse, size: int) -> bytearray:
        """Read a declared-length body into one buffer: no list of chunks, no join copy."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            if filled + len(chunk) > size:
                raise aiohttp.ClientPayloadError("body longer than its Content-Length")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        view.release()
        if filled != size:
            raise aiohttp.ClientPayloadError("body shorter than its Content-Length")
        return buffer

    def _too_large(self, url: URL) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Media URL {redacted_url(url)} is larger than the {self.max_bytes}-byte limit.",
            param="messages",
        )


def _describe_client_error(exc: aiohttp.ClientError) -> str:
    """A short reason without the URL (aiohttp's messages repeat it, query string included)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not valid"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the connection failed"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut short or malformed"
    if isinstance(exc, aiohttp.InvalidURL):
        return "the URL is not valid"
    return "the server's answer was not understood"
