"""The hand-off between request translation and response translation.

``chat_request_to_gemini`` returns a ``GeminiCall``: what to send upstream plus what the response
side must know about the client's request (the model name it asked for, whether it wants thought
text, usage in the stream, ...). Response and stream translators take the same object, so both sides
agree on every decision without re-reading the OpenAI request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A client's model name, split into the upstream model and the suffix's thinking choice."""

    requested: str  # exactly what the client sent, echoed back in every response
    upstream: str  # bare Gemini model id sent upstream (no "models/" prefix, no suffix)
    include_thoughts: bool = False  # "-thinking": ask for and show thought summaries
    thinking_budget: int | None = None  # "-nothinking" -> 0, "-thinking-<n>" -> n


@dataclass
class GeminiCall:
    model: ModelSpec
    body: dict[str, Any]  # a GenerateContentRequest in Gemini's REST JSON (camelCase), no "model"
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage
    n: int = 1
    show_thoughts: bool = False  # thought text may reach the client
    want_logprobs: bool = False
    # names of the functions declared by the client, by position; used to restore tool calls
    tool_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # room for later features, keyed by feature


@dataclass
class ResponseContext:
    """Per-response facts the pure translators cannot make up themselves."""

    completion_id: str  # "chatcmpl-…", one per completion, shared by all stream chunks
    created: int  # unix seconds
    think_tags: bool = False  # wrap thought text in <think>…</think> inside content
    # Turns generated media (mime type, base64 data) into a URL for the client. None: a data: URL.
    media_url: Callable[[str, str], str] | None = None
