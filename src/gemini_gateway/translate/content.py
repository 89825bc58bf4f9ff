"""OpenAI ``messages`` → Gemini ``systemInstruction`` + ``contents``.

Rules (OpenAI chat messages → Gemini Content, ai.google.dev/api/generate-content):

- ``system`` and ``developer`` messages, wherever they stand, are joined in order into one
  ``systemInstruction`` text; ``user`` → role ``user``, ``assistant`` → role ``model``.
- Consecutive messages with the same Gemini role are merged into one Content (parts in order):
  Gemini accepts either, and strict alternation is what its multi-turn and function-calling
  checks expect. Empty messages are dropped; ``name`` is ignored.
- Media parts (``image_url``, ``input_audio``, ``file``) are resolved elsewhere (``media/``):
  :func:`media_parts` lists them in order and the translator takes the resolved Gemini parts by
  position. Assistant text may carry markdown images ``![..](URL)`` that the gateway generated
  earlier (``data:`` URLs or our ``/gemini/v1/files/`` links); those are listed too and sent back
  as the image itself, so an edit turn shows Gemini the picture it is editing.
- Thought text is never sent back: an assistant's ``reasoning_content`` and a leading
  ``<think>…</think>`` block (the gateway's think-tags output) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gemini_gateway.errors import GatewayError, InvalidRequest, UnsupportedMedia
from gemini_gateway.translate.types import Content, Part

MEDIA_TYPES = frozenset({"image_url", "input_audio", "file"})
SYSTEM_ROLES = frozenset({"system", "developer"})
TOOL_ROLES = frozenset({"tool", "function"})
_ROLES = SYSTEM_ROLES | TOOL_ROLES | {"user", "assistant"}

_IMAGE_LINK = re.compile(r"!\[[^\]\n]*\]\(\s*<?(?P<url>[^\s()<>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_LEADING_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)
_FILES_PATH = "/gemini/v1/files/"

# Parts for a tool message, or the extra parts (function calls) of an assistant message; given
# the message and its index. Supplied by request.py (function calling lives in tools.py).
ToolParts = Callable[[Mapping[str, Any], int], list[Part]]


def media_parts(messages: object) -> list[dict[str, Any]]:
    """Every media-carrying part, in message then part order, normalised for ``media/``.

    Raises InvalidRequest for a malformed media part, naming it, so nothing reaches the resolver
    half-formed.
    """
    found: list[dict[str, Any]] = []
    for index, message in enumerate(_message_list(messages)):
        if message.get("role") in ("user", "assistant"):
            found.extend(item for kind, item in _items(message, index) if kind == "media")
    return found


def messages_to_contents(
    messages: object,
    media: Sequence[Mapping[str, Any]] | None,
    *,
    tool_parts: ToolParts,
) -> tuple[Content | None, list[Content]]:
    """Build (systemInstruction, contents); ``media`` are the resolved parts, by position."""
    system_texts: list[str] = []
    contents: list[Content] = []
    next_media = 0
    for index, message in enumerate(_message_list(messages)):
        role = message.get("role")
        if role in SYSTEM_ROLES:
            system_texts.extend(_system_texts(message, index))
            continue
        if role in TOOL_ROLES:
            _append(contents, "user", tool_parts(message, index))
            continue
        parts: list[Part] = []
        for kind, item in _items(message, index):
            if kind == "text":
                parts.append({"text": item})
                continue
            if media is None:
                raise UnsupportedMedia(
                    "Images, audio, video and files are not accepted on this request.",
                    param=item["param"],
                )
            if next_media >= len(media):
                raise GatewayError("fewer resolved media parts than media in the messages")
            parts.append(dict(media[next_media]))  # type: ignore[arg-type]
            next_media += 1
        if role == "assistant" and _has_tool_calls(message):
            parts.extend(tool_parts(message, index))
        _append(contents, "model" if role == "assistant" else "user", parts)
    if media is not None and next_media != len(media):
        raise GatewayError("more resolved media parts than media in the messages")
    system: Content | None = None
    if system_texts:
        system = {"parts": [{"text": "\n\n".join(system_texts)}]}
    return system, contents


def _append(contents: list[Content], role: str, parts: list[Part]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})  # type: ignore[typeddict-item]


def _has_tool_calls(message: Mapping[str, Any]) -> bool:
    return bool(message.get("tool_calls")) or message.get("function_call") is not None


def _message_list(messages: object) -> list[Mapping[str, Any]]:
    if not isinstance(messages, list):
        raise InvalidRequest("messages must be an array of message objects", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequest("each message must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest(
                f"messages[{index}].role must be one of {', '.join(sorted(_ROLES))}",
                param=f"messages[{index}].role",
            )
    return messages


def _system_texts(message: Mapping[str, Any], index: int) -> list[str]:
    texts = []
    for part_index, part in _content_parts(message, index):
        param = _part_param(index, part_index)
        if part.get("type") != "text":
            raise InvalidRequest(
                f"{message['role']} messages take only text parts", param=f"{param}.type"
            )
        texts.append(_part_text(part, param))
    text = "".join(texts) if isinstance(message.get("content"), str) else "\n".join(texts)
    return [text] if text.strip() else []


def _content_parts(
    message: Mapping[str, Any], index: int
) -> Iterator[tuple[int | None, Mapping[str, Any]]]:
    """The message's content as (part index, part); a string is one text part with index None."""
    content = message.get("content")
    if content is None:
        return
    if isinstance(content, str):
        yield None, {"type": "text", "text": content}
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            "content must be a string or an array of content parts",
            param=f"messages[{index}].content",
        )
    for part_index, part in enumerate(content):
        if not isinstance(part, Mapping):
            raise InvalidRequest(
                "each content part must be an object", param=_part_param(index, part_index)
            )
        yield part_index, part


def _items(message: Mapping[str, Any], index: int) -> Iterator[tuple[str, Any]]:
    """("text", str) and ("media", normalised part) items of a user or assistant message."""
    assistant = message["role"] == "assistant"
    for part_index, part in _content_parts(message, index):
        param = _part_param(index, part_index)
        kind = part.get("type")
        if kind in MEDIA_TYPES:
            yield "media", _normalise_media(part, param)
        elif kind == "text" or (assistant and kind == "refusal"):
            field = "text" if kind == "text" else "refusal"
            text = _part_text(part, param, field)
            if assistant:
                yield from _assistant_text_items(text, param)
            elif text:
                yield "text", text
        else:
            raise InvalidRequest(
                f"unsupported content part type {kind!r}" if isinstance(kind, str)
                else "content part has no type",
                param=f"{param}.type",
            )


def _assistant_text_items(text: str, param: str) -> Iterator[tuple[str, Any]]:
    """Split assistant text around our generated-image links; drop a leading think block."""
    text = _LEADING_THINK.sub("", text, count=1)
    start = 0
    for match in _IMAGE_LINK.finditer(text):
        url = match["url"]
        if not (url.startswith("data:") or _FILES_PATH in url):
            continue
        if text[start:match.start()].strip():
            yield "text", text[start:match.start()]
        yield "media", {"type": "image_url", "image_url": {"url": url}, "param": param}
        start = match.end()
    if text[start:].strip():
        yield "text", text[start:]


def _normalise_media(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    """Check a media part's shape; return it with ``param`` (where it stands) for error messages."""
    kind = part["type"]
    body = part.get(kind)
    if kind == "image_url":
        if isinstance(body, str):  # some clients send the URL bare
            body = {"url": body}
        if not isinstance(body, Mapping) or not isinstance(body.get("url"), str) or not body["url"]:
            raise InvalidRequest("image_url.url must be a non-empty string",
                                 param=f"{param}.image_url.url")
    elif kind == "input_audio":
        if not isinstance(body, Mapping) or not all(
            isinstance(body.get(key), str) and body[key] for key in ("data", "format")
        ):
            raise InvalidRequest("input_audio needs string fields data and format",
                                 param=f"{param}.input_audio")
    else:
        if not isinstance(body, Mapping) or not any(
            isinstance(body.get(key), str) and body[key] for key in ("file_data", "file_id")
        ):
            raise InvalidRequest("file needs a file_data or file_id string", param=f"{param}.file")
    return {"type": kind, kind: dict(body), "param": param}


def _part_text(part: Mapping[str, Any], param: str, field: str = "text") -> str:
    text = part.get(field)
    if not isinstance(text, str):
        raise InvalidRequest(f"{field} must be a string", param=f"{param}.{field}")
    return text


def _part_param(index: int, part_index: int | None) -> str:
    base = f"messages[{index}].content"
    return base if part_index is None else f"{base}[{part_index}]"
