"""OpenAI media parts → Gemini parts: the one async step between parsing and translating.

``translate.content.media_parts(messages)`` lists every media-carrying part in order; the
resolver turns each into one Gemini part, in the same order, for ``chat_request_to_gemini``:

- data: URLs, bare base64 (``image_url``, ``input_audio.data``, ``file.file_data``), http(s) URLs
  (fetched SSRF-safely, all of one request in parallel) and the gateway's own generated-file links
  (read locally) become bytes whose type is sniffed from the bytes (``sniff.py``); the declared
  type, file name and ``input_audio.format`` are ignored.
- YouTube links and Gemini File API URIs (and ``file.file_id`` ``files/…`` names) go to Gemini
  as ``fileData`` without being downloaded.
- Bytes are sent as ``inlineData`` while the whole request stays under ``inline_limit_bytes``;
  beyond it the largest items go through the File API (``files.py``) as ``fileData``, and the
  request must then be served by the key that uploaded them (``ResolvedMedia.pinned_key``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gemini_gateway.concurrency import gather_or_cancel
from gemini_gateway.config import Settings
from gemini_gateway.errors import GatewayError, InvalidRequest, NotFound, PayloadTooLarge
from gemini_gateway.media.fetch import MediaFetcher
from gemini_gateway.media.files import FileUploader, UploadedFile
from gemini_gateway.media.inline import (
    check_base64,
    decode_base64,
    decode_data_url,
    encoded_size,
    split_data_url,
)
from gemini_gateway.media.sniff import sniff_mime_type
from gemini_gateway.translate.content import media_parts

T = TypeVar("T")

_YOUTUBE = re.compile(
    r"^https?://(?:(?:www\.|m\.|music\.)?youtube\.com/(?:watch\?(?:.*&)?v=|shorts/|live/)"
    r"|youtu\.be/)[\w-]+",
    re.IGNORECASE,
)
_FILES_API_PATH = re.compile(r"^/v1(?:alpha|beta)?/(files/[a-z0-9-]+)$")
_GEMINI_HOST = "generativelanguage.googleapis.com"
_GENERATED_PATH = "/gemini/v1/files/"
# Keys of a message that carry media payloads: not counted as "the rest of the request".
_PAYLOAD_KEYS = frozenset({"url", "data", "file_data"})


@dataclass
class ResolvedMedia:
    parts: list[dict[str, Any]]  # one Gemini part per media part, in order
    pinned_key: str | None = None  # key id that must serve the request (it owns uploaded files)


@dataclass
class _Loaded:
    """One media item on its way to a part: bytes (+ reusable base64) or a ready reference."""

    mime: str = ""
    data: bytes | bytearray | None = None
    base64_text: str | None = None
    reference: dict[str, Any] | None = None  # a finished fileData part
    owner: UploadedFile | None = None  # when the reference is a file we uploaded

    @property
    def inline_size(self) -> int:
        if self.base64_text is not None:
            return len(self.base64_text)
        return 0 if self.data is None else encoded_size(len(self.data))

    def raw_bytes(self) -> bytes | bytearray:
        """The media's bytes, decoding the kept base64 text when only that is held."""
        if self.data is not None:
            return self.data
        return binascii.a2b_base64(self.base64_text or "")


class MediaResolver:
    """Resolves a request's media parts; one per process, built at start-up."""

    def __init__(
        self,
        settings: Settings,
        upstream: Any,
        files: Any = None,
        *,
        fetcher: MediaFetcher | None = None,
        uploader: FileUploader | None = None,
    ) -> None:
        self.settings = settings
        self.files = files  # media.generated.GeneratedFiles, for our own /gemini/v1/files/ links
        self.max_bytes = int(settings.media_max_bytes)
        self.inline_limit = int(settings.inline_limit_bytes)
        self.fetcher = fetcher or MediaFetcher(settings)
        if uploader is None and upstream is not None:
            uploader = FileUploader(upstream, api_version=str(settings.upstream_api_version))
        self.uploader = uploader
        self._upstream_root = str(settings.upstream_base_url).rstrip("/")

    async def close(self) -> None:
        await self.fetcher.close()

    async def resolve(self, messages: object) -> ResolvedMedia:
        """The Gemini parts for ``media_parts(messages)``, in order, and the key they need."""
        parts = media_parts(messages)
        if not parts:
            return ResolvedMedia([])
        return await self.resolve_parts(parts, other_bytes=_text_bytes(messages))

    async def resolve_parts(
        self, parts: Sequence[Mapping[str, Any]], *, other_bytes: int = 0
    ) -> ResolvedMedia:
        """Resolve normalised media parts; ``other_bytes`` estimates the rest of the request."""
        loaded = await gather_or_cancel(self._load(part) for part in parts)
        pinned = await self._upload_what_does_not_fit(loaded, other_bytes)
        return ResolvedMedia([_to_part(item) for item in loaded], pinned)

    async def _load(self, part: Mapping[str, Any]) -> _Loaded:
        kind = part.get("type")
        body = part.get(kind) if isinstance(kind, str) else None
        if not isinstance(body, Mapping):
            raise InvalidRequest("malformed media part", param=part.get("param"))
        if kind == "image_url":
            return await self._load_url(str(body.get("url") or ""), part)
        if kind == "input_audio":
            return self._load_text(str(body.get("data") or ""), part)
        if kind == "file":
            if body.get("file_data"):
                return self._load_text(str(body["file_data"]), part)
            return self._load_file_id(str(body.get("file_id") or ""), part)
        raise InvalidRequest(f"unsupported media part type {kind!r}", param=part.get("param"))

    async def _load_url(self, url: str, part: Mapping[str, Any]) -> _Loaded:
        if url.startswith(_GENERATED_PATH):
            return await self._load_generated(url, part)
        if url[:7].lower() != "http://" and url[:8].lower() != "https://":
            return self._load_text(url, part)
        if _YOUTUBE.match(url):
            return _Loaded(reference={"fileData": {"fileUri": url}})
        reference = self._file_api_reference(url)
        if reference is not None:
            return reference
        if _GENERATED_PATH in url and self.files is not None:
            local = await self._load_generated(url, part, missing_ok=True)
            if local is not None:
                return local
        fetched = await self.fetcher.fetch(url)
        return _Loaded(mime=_sniff(fetched.data, part), data=fetched.data)

    def _load_text(self, text: str, part: Mapping[str, Any]) -> _Loaded:
        """A data: URL or bare base64: standard base64 is checked and kept as text, else decoded."""
        payload = text
        if text[:5].lower() == "data:":
            _, payload, is_base64 = split_data_url(text)
            if not is_base64:
                decoded = decode_data_url(text, self.max_bytes)
                return _Loaded(mime=_sniff(decoded.data, part), data=decoded.data)
        head = check_base64(payload, self.max_bytes)
        if head is not None:  # decoded only if it must be uploaded
            return _Loaded(mime=_sniff(head, part), base64_text=payload)
        decoded = decode_base64(payload, self.max_bytes)
        return _Loaded(
            mime=_sniff(decoded.data, part), data=decoded.data, base64_text=decoded.base64_text
        )

    def _load_file_id(self, file_id: str, part: Mapping[str, Any]) -> _Loaded:
        uri = file_id
        if re.fullmatch(r"files/[a-z0-9-]+", file_id):
            uri = f"{self._upstream_root}/{self.settings.upstream_api_version}/{file_id}"
        reference = self._file_api_reference(uri) if "://" in uri else None
        if reference is None:
            raise InvalidRequest(
                "file.file_id must be a Gemini File API name (files/…) or URI; "
                "send other files as file_data.",
                param=f"{part.get('param')}.file.file_id",
            )
        return reference

    def _file_api_reference(self, url: str) -> _Loaded | None:
        """A Gemini File API URI as fileData; with its type and owner key when we uploaded it."""
        split = urlsplit(url)
        match = _FILES_API_PATH.match(split.path)
        ours = url.startswith(self._upstream_root + "/")
        if match is None or not (split.hostname == _GEMINI_HOST or ours) or split.query:
            return None
        known = self.uploader.find_by_uri(url) if self.uploader else None
        if known is None:
            return _Loaded(reference={"fileData": {"fileUri": url}})
        return _Loaded(
            reference={"fileData": {"mimeType": known.mime_type, "fileUri": known.uri}},
            owner=known,
        )

    async def _load_generated(
        self, url: str, part: Mapping[str, Any], *, missing_ok: bool = False
    ) -> _Loaded | None:
        """Our own /gemini/v1/files/{id} link: read the stored file, no HTTP."""
        file_id = urlsplit(url).path.split(_GENERATED_PATH, 1)[1].strip("/")
        found = None
        if self.files is not None and file_id:
            try:
                found = await _maybe_await(self.files.open(file_id))
            except (NotFound, FileNotFoundError, KeyError):
                found = None
        if found is None:
            if missing_ok:
                return None
            raise InvalidRequest(
                "That generated file is no longer stored; send the image itself.",
                param=part.get("param"),
            )
        path = Path(found[0])
        data = await asyncio.to_thread(path.read_bytes)
        return _Loaded(mime=_sniff(data, part), data=data)

    async def _upload_what_does_not_fit(
        self, loaded: list[_Loaded], other_bytes: int
    ) -> str | None:
        """Upload the largest items until the rest fits inline; the key id they need, if any."""
        owners = {item.owner.key_id for item in loaded if item.owner is not None}
        if len(owners) > 1:
            raise InvalidRequest(
                "These File API files were uploaded with different upstream keys; "
                "one request can use only one key's files.",
                param="messages",
            )
        pinned = next(iter(owners), None)
        budget = self.inline_limit - other_bytes
        total = sum(item.inline_size for item in loaded)
        if total <= budget:
            return pinned
        if self.uploader is None:
            raise PayloadTooLarge(
                f"The request's media exceed the {self.inline_limit}-byte inline limit.",
                param="messages",
            )
        for item in sorted(loaded, key=lambda it: it.inline_size, reverse=True):
            if total <= budget or (item.data is None and item.base64_text is None):
                break
            total -= item.inline_size
            uploaded = await self.uploader.upload(item.raw_bytes(), item.mime, pinned_key=pinned)
            pinned = uploaded.key_id
            item.reference = {"fileData": {"mimeType": uploaded.mime_type, "fileUri": uploaded.uri}}
            item.data = item.base64_text = None
        return pinned


def _to_part(item: _Loaded) -> dict[str, Any]:
    if item.reference is not None:
        return item.reference
    text = item.base64_text
    if text is None:
        if item.data is None:
            raise GatewayError("a media item has neither bytes nor a reference")
        # Drop the bytes before making the str: peak is bytes+b64 or b64+str, never all three.
        encoded, item.data = base64.b64encode(item.data), None
        text = encoded.decode("ascii")
    return {"inlineData": {"mimeType": item.mime, "data": text}}


def _sniff(data: bytes | bytearray, part: Mapping[str, Any]) -> str:
    try:
        return sniff_mime_type(data)
    except InvalidRequest as exc:
        exc.param = exc.param if part.get("param") is None else str(part["param"])
        raise


def _text_bytes(value: object) -> int:
    """Rough size of everything in the messages except media payloads (for the inline budget)."""
    if isinstance(value, str):
        return len(value) + 8
    if isinstance(value, Mapping):
        return sum(
            len(str(k)) + 8 + (0 if k in _PAYLOAD_KEYS else _text_bytes(v))
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_text_bytes(v) for v in value) + 2
    return 8


async def _maybe_await(value: T | Awaitable[T]) -> T:
    return await value if inspect.isawaitable(value) else value  # type: ignore[return-value]


