"""HTTP to Gemini: one shared connection pool, key failover, retries, SSE streams.

Requests with a body in bytes and no outbound proxy go through ``http11.HttpPool``, a lean
client made for this hot path; the rest (a proxy, a streamed upload body, ``check_key``) go
through one aiohttp session.

Every request goes through ``UpstreamClient._send``: it takes a key from the pool, sends, and on a
key's fault (429, invalid or forbidden key) or the server's (5xx, timeouts and connection errors
before the first byte) reports to the pool and tries another key, at most
``upstream_max_attempts`` times; the client's own 4xx is passed on at once. Failover ends at the
first byte of a successful response: after that a stream's failure is the caller's to report.

Every aiohttp/asyncio exception caught here goes through ``http_errors.map_client_error``;
nothing above ``upstream/`` catches an aiohttp exception. The API key travels only in the
``x-goog-api-key`` header, never in a URL, and redirects are not followed (they would carry it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from gemini_gateway import __version__
from gemini_gateway.config import Settings
from gemini_gateway.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gemini_gateway.upstream.google_error import (
    Fault,
    GoogleError,
    classify,
    parse_google_error,
)
from gemini_gateway.upstream.http11 import HttpPool
from gemini_gateway.upstream.http11 import Response as LeanResponse
from gemini_gateway.upstream.http_errors import CLIENT_ERRORS, map_client_error
from gemini_gateway.upstream.json_body import encode_json_body
from gemini_gateway.upstream.keypool import KeyPool, UpstreamKey
from gemini_gateway.upstream.stream import UpstreamStream, first_event_error

log = logging.getLogger("gemini_gateway.upstream")

_JSON_TYPE = "application/json"
_MAX_MODEL_PAGES = 50
_URL_CACHE_SIZE = 1024

AnyResponse = aiohttp.ClientResponse | LeanResponse


@dataclass(slots=True)
class UpstreamResponse:
    """A successful upstream answer: parsed JSON (``raw=False``) or the body as bytes."""

    data: dict[str, Any]
    key_id: str
    attempts: int
    status: int = 200
    headers: Mapping[str, str] | None = None  # only for raw=True
    body: bytes = b""  # only for raw=True


class UpstreamClient:
    """Sends Gemini REST requests with keys from ``pool``; one session for the process."""

    def __init__(
        self,
        settings: Settings,
        pool: KeyPool,
        session: aiohttp.ClientSession | None = None,
        *,
        backoff_base: float = 0.25,
        backoff_cap: float = 2.0,
    ) -> None:
        self.pool = pool
        self._settings = settings
        self._session = session
        self._owns_session = session is None
        self._base = str(settings.upstream_base_url).rstrip("/")
        self._root = f"{self._base}/{str(settings.upstream_api_version).strip('/')}/"
        self._proxy: str | None = settings.upstream_proxy or None
        self._max_attempts = max(1, int(settings.upstream_max_attempts))
        self._read_timeout = float(settings.upstream_timeout) or None
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,  # waiting for a free pooled connection is not a failure
            sock_connect=float(settings.upstream_connect_timeout) or None,
            sock_read=self._read_timeout,
        )
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._urls: dict[tuple[str, str], URL] = {}
        self._headers: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        self._models: tuple[float, list[dict[str, Any]]] | None = None
        self._models_lock = asyncio.Lock()
        self._lean: HttpPool | None = None
        if self._proxy is None and session is None:
            self._lean = HttpPool(
                limit=int(settings.upstream_max_connections),
                connect_timeout=float(settings.upstream_connect_timeout) or None,
                read_timeout=self._read_timeout,
                user_agent=f"gemini-gateway/{__version__}",
            )

    # -- public calls ----------------------------------------------------------------------------

    async def generate(
        self, model: str, body: dict[str, Any], *, pinned_key: str | None = None
    ) -> UpstreamResponse:
        """POST models/{model}:generateContent and return Google's JSON."""
        url = self._model_url(model, "generateContent")
        resp, key, attempts, _ = await self._send(
            "POST", url, encode_json_body(body), True, None, pinned_key, False
        )
        return UpstreamResponse(await self._read_json(resp), key.id, attempts)

    async def stream(
        self, model: str, body: dict[str, Any], *, pinned_key: str | None = None
    ) -> UpstreamStream:
        """POST models/{model}:streamGenerateContent?alt=sse; returns once the body has begun."""
        url = self._model_url(model, "streamGenerateContent?alt=sse")
        resp, key, attempts, first = await self._send(
            "POST", url, encode_json_body(body), True, None, pinned_key, True
        )
        return UpstreamStream(resp, key.id, attempts, first, self._read_timeout)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        pinned_key: str | None = None,
        raw: bool = False,
    ) -> UpstreamResponse:
        """Any other request, with the same failover.

        ``path`` is relative to ``{base}/{version}/`` ("models/x:predict", "files"), or to the
        base URL when it starts with "/" ("/upload/v1beta/files"), or an absolute URL under the
        base URL (a resumable upload's URL). ``data`` must be bytes or str to be retried.
        ``raw=True`` returns the body as bytes with status and headers instead of parsed JSON.
        """
        url = self._path_url(path, params)
        payload = orjson.dumps(json) if json is not None else data
        resp, key, attempts, _ = await self._send(
            method.upper(), url, payload, json is not None, headers, pinned_key, False
        )
        if not raw:
            return UpstreamResponse(await self._read_json(resp), key.id, attempts)
        body = await self._read(resp)
        return UpstreamResponse({}, key.id, attempts, resp.status, resp.headers, body)

    async def list_models(self) -> list[dict[str, Any]]:
        """Every model upstream lists (following pageToken), cached for models_cache_ttl."""
        cached = self._models
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._models_lock:  # one fetch for many callers arriving together
            cached = self._models
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            models: list[dict[str, Any]] = []
            params = {"pageSize": "1000"}
            for _ in range(_MAX_MODEL_PAGES):
                page = (await self.call("GET", "models", params=params)).data
                models.extend(m for m in page.get("models") or () if isinstance(m, dict))
                token = page.get("nextPageToken")
                if not token:
                    break
                params = {"pageSize": "1000", "pageToken": str(token)}
            ttl = float(self._settings.models_cache_ttl)
            self._models = (time.monotonic() + ttl, models)
            return models

    async def check_key(self, key: str) -> tuple[bool, str]:
        """Ask upstream whether ``key`` works (for ``gemini-gateway key check``); never raises."""
        url = URL(self._root + "models").with_query(pageSize="1")
        try:
            async with self.session.get(
                url,
                headers={"x-goog-api-key": key.strip()},
                proxy=self._proxy,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                if resp.status < 300:
                    return True, "ok"
        except CLIENT_ERRORS as exc:
            return False, map_client_error(exc, self._read_timeout).message
        error = parse_google_error(resp.status, body, key.strip())
        label = error.reason or error.status or f"HTTP {resp.status}"
        if classify(error) is Fault.RATE_LIMITED:
            return True, f"valid, but rate-limited now ({label}): {error.message}"
        return False, f"{label}: {error.message}"

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session, made on first use (inside the running loop)."""
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=int(self._settings.upstream_max_connections),
                ttl_dns_cache=300,
                keepalive_timeout=60.0,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout
            )
            self._owns_session = True
        return session

    # -- the failover loop -----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: URL,
        payload: Any,
        is_json: bool,
        extra_headers: Mapping[str, str] | None,
        pinned: str | None,
        read_first: bool,
    ) -> tuple[AnyResponse, UpstreamKey, int, bytes]:
        """Send until a key gets a 2xx; returns the open response and what was tried."""
        pool = self.pool
        lean = self._lean
        if isinstance(payload, str):
            payload = payload.encode()
        if lean is not None and not (payload is None or isinstance(payload, bytes)):
            lean = None  # a streamed or mutable body: aiohttp's writer handles those
        tried: set[str] = set()
        last: GatewayError | None = None  # why the previous attempt failed, if not a key refusal
        attempt = 0
        while attempt < self._max_attempts:
            attempt += 1
            try:
                key = await pool.acquire(exclude=tried, pinned=pinned)
            except (RateLimited, UpstreamUnavailable) as exc:
                # Nothing left to try: the last server failure says more than "no key" does,
                # but when keys ran out through 429s the client should hear when to come back.
                if last is not None and not isinstance(last, RateLimited):
                    raise last from exc
                raise
            headers = self._headers_for(key, is_json, extra_headers)
            resp: AnyResponse
            try:
                if lean is not None:  # never follows redirects (they would carry the key)
                    resp = await lean.request(method, url, headers, payload)
                else:
                    resp = await self.session.request(
                        method, url, data=payload, headers=headers, proxy=self._proxy,
                        timeout=self._timeout,
                        allow_redirects=False,  # a redirect would carry the key header elsewhere
                    )
            except CLIENT_ERRORS as exc:
                last = map_client_error(exc, self._read_timeout)
                await self._server_failed(key, attempt, last, tried)
                continue
            if resp.status < 300:
                first = b""
                if read_first:
                    try:
                        first = await resp.content.readany()
                    except CLIENT_ERRORS as exc:
                        resp.close()
                        last = map_client_error(exc, self._read_timeout)
                        await self._server_failed(key, attempt, last, tried)
                        continue
                    error = first_event_error(first, key.reveal())
                    if error is not None:  # an error as the first event: failover still works
                        resp.close()
                        last = await self._refused(key, attempt, error, tried)
                        continue
                pool.report_success(key.id)
                return resp, key, attempt, first
            try:
                body = await resp.read()
            except CLIENT_ERRORS:
                body = b""  # the status alone still says whose fault it is
            finally:
                resp.release()
            error = parse_google_error(resp.status, body, key.reveal())
            last = await self._refused(key, attempt, error, tried)
        if isinstance(last, RateLimited):
            retry_after = self.pool.retry_after() or last.retry_after
            raise RateLimited("All upstream keys are rate-limited.", retry_after=retry_after)
        raise last or UpstreamUnavailable("No upstream key could serve the request.")

    async def _refused(
        self, key: UpstreamKey, attempt: int, error: GoogleError, tried: set[str]
    ) -> GatewayError | None:
        """Act on an upstream error answer: raise the client's own, report the rest.

        Returns the error to give the client if no other attempt succeeds (None after a key
        refusal: then the pool's own verdict on the remaining keys is the better answer).
        """
        fault = classify(error)
        status = error.http_status
        if fault is Fault.CLIENT:
            if status == 404 and "models/" in error.message:  # OpenAI's name for this case
                raise UpstreamRejected(error.message, status=status, code="model_not_found",
                                       param="model")
            raise UpstreamRejected(error.message, status=status)
        tried.add(key.id)
        if fault is Fault.RATE_LIMITED:
            await self.pool.report_rate_limited(
                key.id, retry_delay=error.retry_delay, per_day=error.per_day, error=error.message
            )
            return RateLimited(error.message, retry_after=self.pool.retry_after())
        if fault is Fault.KEY_REFUSED:
            reason = error.reason or error.status or f"HTTP {status}"
            await self.pool.report_invalid(key.id, f"{reason}: {error.message}")
            return None
        failure: GatewayError
        if status in (408, 504) or error.status == "DEADLINE_EXCEEDED":
            failure = UpstreamTimeout(error.message)
        elif status < 400:
            failure = UpstreamError(f"The upstream API answered HTTP {status}.")
        else:
            failure = UpstreamUnavailable(error.message)
        await self._server_failed(key, attempt, failure, tried)
        return failure

    async def _server_failed(
        self, key: UpstreamKey, attempt: int, error: GatewayError, tried: set[str]
    ) -> None:
        """Count a server-side failure and wait a short, jittered, growing while."""
        self.pool.report_failure(key.id, error.message)
        tried.add(key.id)
        log.info("upstream attempt %d with key %s failed: %s", attempt, key.id, error.message)
        if attempt < self._max_attempts:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            await asyncio.sleep(delay / 2 + random.random() * delay / 2)

    # -- small helpers ---------------------------------------------------------------------------

    def _headers_for(
        self, key: UpstreamKey, is_json: bool, extra: Mapping[str, str] | None
    ) -> dict[str, str]:
        pair = self._headers.get(key.id)
        if pair is None:
            plain = {"x-goog-api-key": key.reveal()}
            pair = self._headers[key.id] = (plain, {**plain, "Content-Type": _JSON_TYPE})
        headers = pair[1] if is_json else pair[0]
        if extra:
            headers = {**extra, **headers}  # a caller cannot replace the key header
        return headers

    def _model_url(self, model: str, action: str) -> URL:
        url = self._urls.get((model, action))
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            # quote everything but unreserved characters: a model name cannot change the path
            text = f"{self._root}models/{quote(model, safe='-._~')}:{action}"
            url = self._urls[(model, action)] = URL(text, encoded=True)
        return url

    def _path_url(self, path: str, params: Mapping[str, str] | None) -> URL:
        if path.startswith(("http://", "https://")):
            if not (path == self._base or path.startswith(self._base + "/")):
                raise ValueError("an absolute upstream URL must be under upstream_base_url")
            url = URL(path)
        elif path.startswith("/"):
            url = URL(self._base + path)
        else:
            url = URL(self._root + path)
        return url.update_query(params) if params else url

    async def _read(self, resp: AnyResponse) -> bytes:
        try:
            return await resp.read()
        except CLIENT_ERRORS as exc:
            raise map_client_error(exc, self._read_timeout) from exc
        finally:
            resp.release()

    async def _read_json(self, resp: AnyResponse) -> dict[str, Any]:
        body = await self._read(resp)
        if not body:
            return {}
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream API sent a response that is not JSON.") from exc
        if not isinstance(data, dict):
            raise UpstreamError("The upstream API sent JSON that is not an object.")
        return data
