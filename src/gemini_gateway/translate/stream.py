"""Gemini ``streamGenerateContent`` SSE events → OpenAI ``chat.completion.chunk`` objects.

Each Gemini event is translated as it arrives (no buffering), through the same ``PartRenderer`` as
whole responses, so both paths agree on thoughts, media and tool calls. Following OpenAI's stream:
one id for every chunk, ``role: "assistant"`` on the first delta of each choice, ``finish_reason``
on the last chunk of a choice (together with that event's delta, unless it holds tool calls:
then in a chunk of its own), one chunk per choice, and with
``stream_options.include_usage`` ``usage: null`` on every chunk plus a last chunk with
``choices: []`` and the usage. Gemini repeats ``usageMetadata`` on every event, partial until the
end: the last one with counts wins. ``data: [DONE]`` is the HTTP layer's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.translate.call import GeminiCall, ResponseContext
from gemini_gateway.translate.response import (
    AudioPiece,
    PartRenderer,
    RenderedParts,
    candidate_indices,
    finish_problem,
    finish_reason_to_openai,
    logprobs_to_openai,
    new_audio_id,
    prompt_block_message,
    speech_to_audio,
    usage_to_openai,
)


@dataclass
class _ChoiceState:
    renderer: PartRenderer
    started: bool = False  # the role has been sent
    finished: bool = False
    has_tool_calls: bool = False
    content: list[str] = field(default_factory=list)  # content sent so far, for annotations
    grounding: Mapping[str, Any] | None = None  # the last groundingMetadata seen
    # Speech arrives over several events; one WAV (and one link) goes out when the choice ends.
    audio: list[AudioPiece] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)  # joined once, not grown per event


def _finish_apart_from_tool_calls(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """A last delta that holds tool calls is sent, as OpenAI does, before a chunk with an empty
    delta and the ``finish_reason``: the openai SDK's stream helpers only announce a tool call's
    ``arguments.done`` when the finish comes after it."""
    choice = chunk["choices"][0]
    if choice["finish_reason"] is None or "tool_calls" not in choice["delta"]:
        return [chunk]
    ending = {**chunk, "choices": [{**choice, "delta": {}, "logprobs": None}]}
    return [{**chunk, "choices": [{**choice, "finish_reason": None}]}, ending]


def _has_counts(usage: Mapping[str, Any]) -> bool:
    return "totalTokenCount" in usage or any(key.endswith("TokenCount") for key in usage)


class ChatStreamTranslator:
    """Turns one Gemini stream into OpenAI chunks; ``usage`` holds the last usage seen."""

    def __init__(self, call: GeminiCall, ctx: ResponseContext) -> None:
        self.call = call
        self.ctx = ctx
        self._usage_metadata: Mapping[str, Any] | None = None
        self._usage: dict[str, Any] | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._head = {  # every chunk starts with these, in this order
            "id": ctx.completion_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": call.model.requested,
        }

    @property
    def usage(self) -> dict[str, Any] | None:
        """The last usage seen, in OpenAI's shape; converted when asked, not on every event."""
        if self._usage is None and self._usage_metadata is not None:
            self._usage = usage_to_openai(self._usage_metadata)
        return self._usage

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Chunks for one Gemini event (possibly none, e.g. an event with usage only)."""
        usage = event.get("usageMetadata")
        if usage is not None and isinstance(usage, Mapping) and (
            _has_counts(usage) or self._usage_metadata is None
        ):
            self._usage_metadata, self._usage = usage, None
        candidates = event.get("candidates") or []
        feedback = event.get("promptFeedback") or {}
        if not candidates and feedback.get("blockReason"):
            return self._refuse(prompt_block_message(feedback))
        if len(candidates) == 1:  # the usual case, without the index bookkeeping of several
            index = candidates[0].get("index")
            chunk = self._candidate_chunk(candidates[0], index if isinstance(index, int) else 0)
            return [] if chunk is None else _finish_apart_from_tool_calls(chunk)
        chunks = []
        for candidate, index in zip(candidates, candidate_indices(candidates), strict=True):
            chunk = self._candidate_chunk(candidate, index)
            if chunk is not None:
                chunks.extend(_finish_apart_from_tool_calls(chunk))
        return chunks

    def finish(self) -> list[dict[str, Any]]:
        """Close every choice still open, then the usage chunk if the client asked for it."""
        chunks = []
        if not self._choices:
            chunks += self._refuse(prompt_block_message(None))
        for index, state in sorted(self._choices.items()):
            if state.finished:
                continue
            out = RenderedParts(content=state.renderer.close())
            delta = self._closing_delta(state, out)
            reason = "tool_calls" if state.has_tool_calls else "stop"
            chunks.append(self._choice_chunk(index, state, delta, reason))
        if self.call.include_usage:
            usage = self.usage or usage_to_openai(None)
            chunks.append({**self._head, "choices": [], "usage": usage})
        return chunks

    def _state(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState(PartRenderer(self.call, self.ctx))
        return state

    def _refuse(self, refusal: str) -> list[dict[str, Any]]:
        """A blocked prompt: choice 0 ends at once with ``content_filter`` and the reason."""
        state = self._state(0)
        if state.finished:
            return []
        delta = self._delta(state, RenderedParts(), closing=True)
        delta["refusal"] = refusal
        return [self._choice_chunk(0, state, delta, "content_filter")]

    def _candidate_chunk(self, candidate: Mapping[str, Any], index: int) -> dict[str, Any] | None:
        state = self._state(index)
        if state.finished:
            return None
        parts = (candidate.get("content") or {}).get("parts") or []
        out = state.renderer.render(parts)
        state.has_tool_calls = state.has_tool_calls or bool(out.tool_calls)
        grounding = candidate.get("groundingMetadata")
        if grounding is not None and isinstance(grounding, Mapping):
            state.grounding = grounding
        reason = candidate.get("finishReason")
        finish = None
        if reason:
            out.content += state.renderer.close()
            delta = self._closing_delta(state, out)
            refusal = finish_problem(reason, candidate.get("finishMessage"))
            if refusal:
                delta["refusal"] = refusal
            finish = finish_reason_to_openai(reason, has_tool_calls=state.has_tool_calls)
        else:
            delta = self._delta(state, out)
        logprobs = candidate.get("logprobsResult") if self.call.want_logprobs else None
        if logprobs is not None and not isinstance(logprobs, Mapping):
            logprobs = None
        if finish is None and logprobs is None and (not delta or delta.keys() == {"role"}):
            return None  # nothing to say yet (e.g. an empty text part carrying a signature)
        return self._choice_chunk(index, state, delta, finish, logprobs)

    def _closing_delta(self, state: _ChoiceState, out: RenderedParts) -> dict[str, Any]:
        """The last delta of a choice: grounding sources after the answer, with annotations
        (an addition to OpenAI's delta shape, as on ``message.annotations``)."""
        content = "".join(state.content) + out.content
        annotations = state.renderer.append_grounding(out, content, state.grounding)
        delta = self._delta(state, out, closing=True)
        if annotations:
            delta["annotations"] = annotations
        return delta

    def _delta(
        self, state: _ChoiceState, out: RenderedParts, *, closing: bool = False
    ) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if not state.started:
            delta["role"] = "assistant"
        if out.audio:
            state.audio += out.audio
        if out.transcript:
            state.transcript.append(out.transcript)
        if closing and state.audio:
            audio, url = speech_to_audio(state.audio, audio_id=new_audio_id(),
                                         transcript="".join(state.transcript), call=self.call,
                                         ctx=self.ctx)
            state.audio = []
            delta["audio"] = audio
            state.renderer.append_link(out, f"[audio]({url})")
        if out.content:
            delta["content"] = out.content
            state.content.append(out.content)
        if out.reasoning:
            delta["reasoning_content"] = out.reasoning
        if out.tool_calls:
            first = state.renderer.tool_call_count - len(out.tool_calls)
            delta["tool_calls"] = [
                {"index": first + offset, **tool_call}
                for offset, tool_call in enumerate(out.tool_calls)
            ]
        if out.images:
            delta["images"] = out.images
        return delta

    def _choice_chunk(
        self,
        index: int,
        state: _ChoiceState,
        delta: dict[str, Any],
        finish: str | None,
        logprobs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        state.started = True
        state.finished = finish is not None
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": (
                {"content": logprobs_to_openai(logprobs), "refusal": None} if logprobs else None
            ),
            "finish_reason": finish,
        }
        chunk = self._head.copy()
        chunk["choices"] = [choice]
        if self.call.include_usage:
            chunk["usage"] = None
        return chunk
