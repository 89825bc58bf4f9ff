"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion``.

One choice per candidate (``index`` from the candidate; proto3 JSON omits 0, see
``candidate_indices``).
Parts map in order: text → ``content``; ``thought: true`` text → ``reasoning_content`` (or
``<think>`` tags at the head of ``content``) only when ``call.show_thoughts``; ``inlineData``
images → a markdown image in ``content`` plus ``message.images`` (the OpenRouter shape); PCM speech
→ a WAV in OpenAI's ``message.audio`` plus a link in ``content``; ``functionCall`` →
``tool_calls`` (thought signature carried in the id, toolcalls.py); ``executableCode`` and
``codeExecutionResult`` → fenced blocks in ``content``; ``groundingMetadata`` → a "Sources" list
after the answer plus ``message.annotations`` (tool_output.py). Thought signatures on text parts
are dropped. ``PartRenderer._tool_part`` is the
one place other parts are handed to the tools translation; ``stream.py`` renders through the same
class.

Finish reasons (Gemini ``FinishReason``, ai.google.dev reference, rev 2026): STOP → ``stop``,
MAX_TOKENS → ``length``, the safety family → ``content_filter``, a candidate with function calls →
``tool_calls``, OTHER/LANGUAGE/unspecified/unknown → ``stop``. Failures of tool use and of image
generation (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS,
MISSING_THOUGHT_SIGNATURE, MALFORMED_RESPONSE, NO_IMAGE, IMAGE_OTHER) have no OpenAI value: they
become ``content_filter`` too, the only value meaning "output was withheld" (``stop`` would read as
a finished answer, ``tool_calls`` would promise calls that are not there). Every such stop, and a
prompt blocked by ``promptFeedback.blockReason``, states Gemini's reason in ``message.refusal``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.translate.audio import is_pcm_audio, pcm_format
from gemini_gateway.translate.audio_encode import encode as encode_audio
from gemini_gateway.translate.call import GeminiCall, ResponseContext
from gemini_gateway.translate.tool_output import (
    grounding_annotations,
    grounding_sources_text,
    tool_part_to_text,
)
from gemini_gateway.translate.toolcalls import function_call_to_tool_call
from gemini_gateway.translate.usage import usage_to_openai

__all__ = [
    "PartRenderer",
    "RenderedParts",
    "candidate_indices",
    "finish_problem",
    "finish_reason_to_openai",
    "gemini_response_to_chat",
    "logprobs_to_openai",
    "prompt_block_message",
    "usage_to_openai",
]

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"
DEFAULT_MEDIA_TTL = 86400  # seconds; call.extra["generated_media_ttl"] overrides

_SAFETY_REASONS: dict[str, str] = {
    "SAFETY": "the response was flagged for safety reasons",
    "RECITATION": "the response may recite copyrighted or training material",
    "BLOCKLIST": "the response contains forbidden terms",
    "PROHIBITED_CONTENT": "the response may contain prohibited content",
    "SPII": "the response may contain sensitive personally identifiable information",
    "IMAGE_SAFETY": "the generated image violates safety rules",
    "IMAGE_PROHIBITED_CONTENT": "the generated image has prohibited content",
    "IMAGE_RECITATION": "the generated image may recite a source",
}
_FAILURE_REASONS: dict[str, str] = {
    "MALFORMED_FUNCTION_CALL": "the function call the model generated is invalid",
    "UNEXPECTED_TOOL_CALL": "the model called a tool although no tool is enabled",
    "TOO_MANY_TOOL_CALLS": "the model made too many tool calls in a row",
    "MISSING_THOUGHT_SIGNATURE": "the request lacks a thought signature of an earlier turn",
    "MALFORMED_RESPONSE": "the model produced a malformed response",
    "NO_IMAGE": "the model was expected to generate an image but generated none",
    "IMAGE_OTHER": "image generation stopped for another reason",
}
_BLOCK_REASONS: dict[str, str] = {
    "SAFETY": "the prompt was flagged for safety reasons",
    "BLOCKLIST": "the prompt contains forbidden terms",
    "PROHIBITED_CONTENT": "the prompt may contain prohibited content",
    "IMAGE_SAFETY": "the prompt would lead to unsafe images",
    "OTHER": "no reason given",
}


def finish_reason_to_openai(reason: str | None, *, has_tool_calls: bool = False) -> str | None:
    """OpenAI ``finish_reason`` for Gemini's ``finishReason``; None while still generating."""
    if not reason:
        return None
    if reason in _SAFETY_REASONS or reason in _FAILURE_REASONS:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    # STOP, OTHER, LANGUAGE, FINISH_REASON_UNSPECIFIED and values newer than this code.
    return "tool_calls" if has_tool_calls else "stop"


def finish_problem(reason: str | None, message: str | None = None) -> str | None:
    """Refusal text for an abnormal stop (safety family, tool or image failure), else None."""
    why = _SAFETY_REASONS.get(reason or "") or _FAILURE_REASONS.get(reason or "")
    if why is None:
        return None
    text = f"Gemini stopped generating ({reason}): {why}."
    return f"{text} {message}" if message else text


def prompt_block_message(feedback: Mapping[str, Any] | None) -> str:
    """Refusal text for a response without candidates, naming ``promptFeedback.blockReason``."""
    feedback = feedback or {}
    reason = feedback.get("blockReason")
    if not reason:
        return "Gemini returned no candidates and gave no reason."
    text = f"Gemini blocked the prompt ({reason}): {_BLOCK_REASONS.get(reason, 'blocked')}."
    categories = [
        str(r.get("category")) for r in feedback.get("safetyRatings") or () if r.get("blocked")
    ]
    if categories:
        text += " Categories: " + ", ".join(categories) + "."
    if feedback.get("blockReasonMessage"):
        text += f" {feedback['blockReasonMessage']}"
    return text


def _token_logprob(item: Mapping[str, Any]) -> dict[str, Any]:
    token = str(item.get("token", ""))
    return {
        "token": token,
        "logprob": float(item.get("logProbability", -9999.0)),
        "bytes": list(token.encode("utf-8")),
    }


def logprobs_to_openai(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``logprobsResult`` → OpenAI ``logprobs.content``: one entry per chosen token, by step."""
    chosen = result.get("chosenCandidates") or []
    top = result.get("topCandidates") or []
    content = []
    for step, item in enumerate(chosen):
        entry = _token_logprob(item)
        alternatives = top[step].get("candidates") or [] if step < len(top) else []
        entry["top_logprobs"] = [_token_logprob(alt) for alt in alternatives]
        content.append(entry)
    return content


def _choice_logprobs(candidate: Mapping[str, Any], call: GeminiCall) -> dict[str, Any] | None:
    result = candidate.get("logprobsResult")
    if not call.want_logprobs or not isinstance(result, Mapping):
        return None
    return {"content": logprobs_to_openai(result), "refusal": None}


def _decode_base64(data: str) -> bytes:
    """Gemini sends standard base64; accept the URL-safe alphabet and lost padding too."""
    data = data.strip()
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return base64.b64decode(data + "=" * (-len(data) % 4))


def _media_link(ctx: ResponseContext, mime: str, b64: str) -> str:
    if ctx.media_url is not None:
        return ctx.media_url(mime, b64)
    return f"data:{mime};base64,{b64}"


@dataclass
class AudioPiece:
    """Raw PCM of generated speech, kept apart until the caller decides how to join it."""

    pcm: bytes
    rate: int
    channels: int


@dataclass
class RenderedParts:
    """What a run of Gemini parts adds to one OpenAI message (or stream delta)."""

    content: str = ""
    reasoning: str = ""
    transcript: str = ""  # plain answer text, without think tags or media links
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    audio: list[AudioPiece] = field(default_factory=list)


class PartRenderer:
    """Renders one choice's parts in order; keeps what a stream must remember between events."""

    def __init__(self, call: GeminiCall, ctx: ResponseContext) -> None:
        self.call = call
        self.ctx = ctx
        self.think_open = False
        self.tool_call_count = 0
        self._last_char = ""  # last character of content written so far, for media separators

    def render(self, parts: Sequence[Mapping[str, Any]]) -> RenderedParts:
        out = RenderedParts()
        for part in parts:
            if "text" in part:
                self._text_part(part, out)
            elif "inlineData" in part or "fileData" in part:
                self._close_think(out)
                self._media_part(part, out)
            else:
                self._tool_part(part, out)
        return out

    def close(self) -> str:
        """Text that ends the content: the closing think tag if one is still open."""
        out = RenderedParts()
        self._close_think(out)
        return out.content

    def _write(self, out: RenderedParts, text: str) -> None:
        if text:
            out.content += text
            self._last_char = text[-1]

    def _close_think(self, out: RenderedParts) -> None:
        if self.think_open:
            self.think_open = False
            self._write(out, THINK_CLOSE)

    def _text_part(self, part: Mapping[str, Any], out: RenderedParts) -> None:
        text = str(part.get("text") or "")
        if part.get("thought"):
            if not self.call.show_thoughts or not text:
                return
            if not self.ctx.think_tags:
                out.reasoning += text
                return
            if not self.think_open:
                self.think_open = True
                self._write(out, THINK_OPEN)
            self._write(out, text)
            return
        if text:
            self._close_think(out)
            self._write(out, text)
            out.transcript += text

    def _media_part(self, part: Mapping[str, Any], out: RenderedParts) -> None:
        if "fileData" in part:
            mime = str(part["fileData"].get("mimeType", ""))
            url = str(part["fileData"].get("fileUri", ""))
        else:
            blob = part["inlineData"]
            mime = str(blob.get("mimeType", "application/octet-stream"))
            data = str(blob.get("data", ""))
            if is_pcm_audio(mime):
                rate, channels = pcm_format(mime)
                out.audio.append(AudioPiece(_decode_base64(data), rate, channels))
                return
            url = _media_link(self.ctx, mime, data)
        if mime.startswith("image/"):
            out.images.append({"type": "image_url", "image_url": {"url": url}})
            self.append_link(out, f"![image]({url})")
        else:
            kind = mime.split("/")[0] if "/" in mime else "file"
            self.append_link(out, f"[{kind}]({url})")

    def append_link(self, out: RenderedParts, markdown: str) -> None:
        """Add a media link to content, on its own paragraph after any earlier text."""
        if self._last_char and self._last_char != "\n":
            self._write(out, "\n\n")
        self._write(out, markdown)

    def _tool_part(self, part: Mapping[str, Any], out: RenderedParts) -> None:
        """Hand-off point: every part that is neither text nor media goes to the tools translation.

        ``functionCall`` → a tool call (carrying its thought signature, see toolcalls.py; only
        the first of a turn when the client set ``parallel_tool_calls: false``); code execution
        parts → fenced blocks in content (tool_output.py); other parts are not shown.
        """
        if "functionCall" in part:
            if self.call.extra.get("single_tool_call") and self.tool_call_count:
                return
            self._close_think(out)
            out.tool_calls.append(function_call_to_tool_call(part, declared=self.call.tool_names))
            self.tool_call_count += 1
            return
        text = tool_part_to_text(part)
        if text is not None:
            self._close_think(out)
            self._write(out, text)

    def append_grounding(self, out: RenderedParts, content: str,
                         metadata: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Add the "Sources" list after the answer; return the ``url_citation`` annotations
        for ``content`` (the whole answer so far)."""
        if not metadata:
            return []
        annotations = grounding_annotations(metadata, content)
        self._write(out, grounding_sources_text(metadata))
        return annotations


def speech_to_audio(
    pieces: Sequence[AudioPiece],
    *,
    audio_id: str,
    transcript: str,
    call: GeminiCall,
    ctx: ResponseContext,
) -> tuple[dict[str, Any], str]:
    """Join PCM pieces into one file (WAV unless the request's ``audio.format`` said otherwise):
    OpenAI's ``audio`` object and the URL to link in content."""
    rate, channels = pieces[0].rate, pieces[0].channels
    pcm = b"".join(p.pcm for p in pieces)
    fmt = call.extra.get("audio_format") or "wav"
    encoded, mime = encode_audio(pcm, fmt, rate, channels)
    data = base64.b64encode(encoded).decode("ascii")
    ttl = int(call.extra.get("generated_media_ttl", DEFAULT_MEDIA_TTL))
    audio = {"id": audio_id, "data": data, "expires_at": ctx.created + ttl,
             "transcript": transcript}
    return audio, _media_link(ctx, mime.partition(";")[0], data)


def new_audio_id() -> str:
    return "audio_" + secrets.token_hex(12)


def _candidate_to_choice(
    candidate: Mapping[str, Any], index: int, call: GeminiCall, ctx: ResponseContext
) -> dict[str, Any]:
    renderer = PartRenderer(call, ctx)
    parts = (candidate.get("content") or {}).get("parts") or []
    out = renderer.render(parts)
    out.content += renderer.close()
    message: dict[str, Any] = {"role": "assistant"}
    if out.audio:
        audio, url = speech_to_audio(out.audio, audio_id=new_audio_id(),
                                     transcript=out.transcript, call=call, ctx=ctx)
        message["audio"] = audio
        renderer.append_link(out, f"[audio]({url})")
    annotations = renderer.append_grounding(out, out.content, candidate.get("groundingMetadata"))
    if annotations:
        message["annotations"] = annotations
    reason = candidate.get("finishReason")
    refusal = finish_problem(reason, candidate.get("finishMessage"))
    has_content = bool(out.content) or not (out.tool_calls or refusal)
    message["content"] = out.content if has_content else None
    message["refusal"] = refusal
    if out.reasoning:
        message["reasoning_content"] = out.reasoning
    if out.tool_calls:
        message["tool_calls"] = out.tool_calls
    if out.images:
        message["images"] = out.images
    finish = finish_reason_to_openai(reason or "STOP", has_tool_calls=bool(out.tool_calls))
    return {
        "index": index,
        "message": message,
        "logprobs": _choice_logprobs(candidate, call),
        "finish_reason": finish,
    }


def candidate_indices(candidates: Sequence[Mapping[str, Any]]) -> list[int]:
    """Each candidate's ``index``. Proto3 JSON omits index 0, and some servers omit it on every
    candidate: a missing index takes the lowest number no other candidate of the batch claims."""
    claimed = {c["index"] for c in candidates if isinstance(c.get("index"), int)}
    indices, free = [], 0
    for candidate in candidates:
        index = candidate.get("index")
        if not isinstance(index, int):
            while free in claimed:
                free += 1
            index = free
            claimed.add(index)
        indices.append(index)
    return indices


def _blocked_choice(response: Mapping[str, Any]) -> dict[str, Any]:
    """The one choice standing for a prompt Gemini refused to answer."""
    message = {
        "role": "assistant",
        "content": None,
        "refusal": prompt_block_message(response.get("promptFeedback")),
    }
    return {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}


def gemini_response_to_chat(
    response: Mapping[str, Any], call: GeminiCall, ctx: ResponseContext
) -> dict[str, Any]:
    """A ``generateContent`` response as an OpenAI ``chat.completion``."""
    candidates = response.get("candidates") or []
    pairs = zip(candidates, candidate_indices(candidates), strict=True)
    choices = [_candidate_to_choice(c, i, call, ctx) for c, i in pairs]
    if not choices:
        choices = [_blocked_choice(response)]
    choices.sort(key=lambda choice: choice["index"])
    return {
        "id": ctx.completion_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": call.model.requested,
        "choices": choices,
        "usage": usage_to_openai(response.get("usageMetadata")),
    }
