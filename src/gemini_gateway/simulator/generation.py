"""Plausible, deterministic Gemini answers, whole (``generateContent``) or in stream events.

An ``Answer`` is decided once from the request; ``answer_response`` renders it as one
``GenerateContentResponse`` and ``answer_events`` splits it into stream events the way Google does:
thought parts first, text cut into pieces, ``usageMetadata`` (cumulative) on every event and
``finishReason`` only on the last one of each candidate.

A token is a word here; prompts count their words, plus 258 per media part as Google counts an
image. The prompt word BLOCKME blocks the prompt; SAFETYSTOP stops the answer for SAFETY.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from gemini_gateway.simulator import catalog, tool_answers
from gemini_gateway.simulator.synth_media import PCM_MIME, pcm_tone, png_for
from gemini_gateway.simulator.validation import make_signature

MEDIA_TOKENS = 258
IMAGE_OUTPUT_TOKENS = 1290
_SAFETY_HIGH = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
]


@dataclass
class Candidate:
    parts: list[dict[str, Any]]
    finish_reason: str = "STOP"
    extra: dict[str, Any] = field(default_factory=dict)  # groundingMetadata, safetyRatings

    def output_tokens(self) -> int:
        return sum(_part_tokens(p) for p in self.parts if not p.get("thought"))


@dataclass
class Answer:
    model: str
    response_id: str
    prompt_tokens: int
    candidates: list[Candidate]
    thoughts_tokens: int = 0
    cached_tokens: int | None = None
    block_reason: str | None = None

    def usage(self, candidate_tokens: int | None = None) -> dict[str, Any]:
        out = sum(c.output_tokens() for c in self.candidates)
        shown = out if candidate_tokens is None else candidate_tokens
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if self.candidates:
            usage["candidatesTokenCount"] = shown
        total = self.prompt_tokens + shown + self.thoughts_tokens
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        if self.cached_tokens is not None:
            usage["cachedContentTokenCount"] = self.cached_tokens
        usage["totalTokenCount"] = total
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        return usage


def _words(text: str) -> int:
    return len(text.split())


def _part_tokens(part: dict[str, Any], image_tokens: int = IMAGE_OUTPUT_TOKENS) -> int:
    if "text" in part:
        return _words(part["text"])
    if "inlineData" in part or "fileData" in part:
        mime = (part.get("inlineData") or part.get("fileData") or {}).get("mimeType", "")
        return image_tokens if mime.startswith("image/") else MEDIA_TOKENS
    payload = {k: v for k, v in part.items() if k != "thoughtSignature"}
    return max(1, len(orjson.dumps(payload)) // 4)


def prompt_tokens(body: dict[str, Any]) -> int:
    contents = list(body.get("contents") or [])
    if body.get("systemInstruction"):
        contents.append(body["systemInstruction"])
    total = sum(_part_tokens(part, MEDIA_TOKENS) for c in contents for part in c.get("parts") or [])
    if body.get("tools"):
        total += len(orjson.dumps(body["tools"])) // 4
    return max(1, total)


def last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body.get("contents") or []):
        if content.get("role", "user") == "model":
            continue
        texts = [p["text"] for p in content.get("parts") or [] if "text" in p]
        if texts:
            return " ".join(texts)
    return ""


def build_answer(model: str, body: dict[str, Any]) -> Answer:
    """Decide the whole answer to a (camelCase) GenerateContentRequest."""
    prompt = last_user_text(body)
    seed = hashlib.sha256(model.encode() + orjson.dumps(body.get("contents") or [])).digest()
    config = body.get("generationConfig") or {}
    answer = Answer(
        model=model,
        response_id=base64.urlsafe_b64encode(seed[:15]).decode(),
        prompt_tokens=prompt_tokens(body),
        candidates=[],
    )
    if body.get("cachedContent"):
        answer.cached_tokens = answer.prompt_tokens // 2
    if "BLOCKME" in prompt:
        answer.block_reason = "SAFETY"
        return answer
    thinking = config.get("thinkingConfig") or {}
    thinks = catalog.thinks(model) and thinking.get("thinkingBudget") != 0
    thought = f'**Considering the request**\n\nThe user wrote "{prompt[:120]}". I will answer it.'
    if thinks:
        answer.thoughts_tokens = _words(thought)
    for index in range(max(1, int(config.get("candidateCount") or 1))):
        if "SAFETYSTOP" in prompt:
            answer.candidates.append(Candidate([], "SAFETY", {"safetyRatings": _SAFETY_HIGH}))
            continue
        candidate = _candidate(model, body, prompt, index)
        if thinks and candidate.parts:
            candidate.parts[0]["thoughtSignature"] = make_signature(seed[:12] + bytes([index]))
        if thinks and thinking.get("includeThoughts"):
            candidate.parts.insert(0, {"text": thought, "thought": True})
        answer.candidates.append(candidate)
    return answer


def _candidate(model: str, body: dict[str, Any], prompt: str, index: int) -> Candidate:
    config = body.get("generationConfig") or {}
    contents = body.get("contents") or []
    last_parts = contents[-1].get("parts") or [] if contents else []
    responses = [p["functionResponse"] for p in last_parts if "functionResponse" in p]
    prefix = f"(candidate {index + 1}) " if index else ""
    if responses:
        text = " ".join(
            f"The function {r.get('name', '')} returned {orjson.dumps(r.get('response')).decode()}."
            for r in responses
        )
        return _limited(prefix + text, config)
    calls = tool_answers.functions_to_call(body, prompt)
    if calls:
        return Candidate(
            [
                {"functionCall": {"name": d["name"], "args": tool_answers.call_arguments(d)}}
                for d in calls
            ]
        )
    modalities = config.get("responseModalities") or []
    if catalog.is_tts(model) or "AUDIO" in modalities:
        data = base64.b64encode(pcm_tone(_words(prompt))).decode()
        return Candidate([{"inlineData": {"mimeType": PCM_MIME, "data": data}}])
    if "IMAGE" in modalities or (catalog.is_image_model(model) and not modalities):
        image = {
            "inlineData": {
                "mimeType": "image/png",
                "data": base64.b64encode(png_for(prompt)).decode(),
            }
        }
        if modalities == ["IMAGE"]:
            return Candidate([image])
        return Candidate(
            [{"text": f"{prefix}Here is the image you asked for: {prompt[:80]}"}, image]
        )
    if tool_answers.has_tool(body, "codeExecution"):
        return Candidate(tool_answers.code_execution_parts(prompt))
    text = (
        prefix + f'You said: "{prompt[:200]}". This is a deterministic answer from the '
        "Gemini simulator."
    )
    structured = tool_answers.json_answer(config, text)
    if structured is not None:
        return Candidate([{"text": structured}])
    candidate = _limited(text, config)
    if tool_answers.has_tool(body, "googleSearch", "googleSearchRetrieval"):
        answer_text = candidate.parts[0]["text"] if candidate.parts else ""
        candidate.extra["groundingMetadata"] = tool_answers.grounding_metadata(prompt, answer_text)
    return candidate


def _limited(text: str, config: dict[str, Any]) -> Candidate:
    """Apply stop sequences (cut before, finish STOP) and maxOutputTokens (finish MAX_TOKENS)."""
    cut = min((text.find(s) for s in config.get("stopSequences") or [] if s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    limit = config.get("maxOutputTokens")
    words = text.split(" ")
    if limit is not None and len([w for w in words if w]) > int(limit):
        return Candidate([{"text": " ".join(words[: int(limit)])}], "MAX_TOKENS")
    return Candidate([{"text": text}] if text else [])


def _candidate_json(
    candidate: Candidate, index: int, parts: list[dict[str, Any]], final: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if parts:
        out["content"] = {"parts": parts, "role": "model"}
    if final:
        out["finishReason"] = candidate.finish_reason
        out.update(candidate.extra)
    out["index"] = index
    return out


def _envelope(answer: Answer) -> dict[str, Any]:
    return {"modelVersion": answer.model, "responseId": answer.response_id}


def answer_response(answer: Answer) -> dict[str, Any]:
    """The whole answer as one GenerateContentResponse."""
    if answer.block_reason:
        return {
            "promptFeedback": {"blockReason": answer.block_reason, "safetyRatings": _SAFETY_HIGH},
            "usageMetadata": answer.usage(),
            **_envelope(answer),
        }
    return {
        "candidates": [
            _candidate_json(c, i, c.parts, True) for i, c in enumerate(answer.candidates)
        ],
        "usageMetadata": answer.usage(),
        **_envelope(answer),
    }


def answer_events(answer: Answer, chunks: int) -> list[dict[str, Any]]:
    """The answer as stream events, about ``chunks`` of them per candidate."""
    if answer.block_reason or not answer.candidates:
        return [answer_response(answer)]
    pieces = [_pieces(c.parts, max(1, chunks)) for c in answer.candidates]
    events: list[dict[str, Any]] = []
    emitted = 0
    for step in range(max(len(p) for p in pieces)):
        candidates = []
        for i, (candidate, parts) in enumerate(zip(answer.candidates, pieces, strict=True)):
            if step >= len(parts):
                continue
            emitted += sum(_part_tokens(p) for p in parts[step] if not p.get("thought"))
            candidates.append(_candidate_json(candidate, i, parts[step], step == len(parts) - 1))
        events.append(
            {"candidates": candidates, "usageMetadata": answer.usage(emitted), **_envelope(answer)}
        )
    return events


def _pieces(parts: list[dict[str, Any]], chunks: int) -> list[list[dict[str, Any]]]:
    """Split parts into event payloads: the longest text part fills the chunks the rest leave."""
    if not parts:
        return [[]]
    texts = [i for i, p in enumerate(parts) if "text" in p and not p.get("thought")]
    longest = max(texts, key=lambda i: len(parts[i]["text"]), default=-1)
    splits = max(1, chunks - (len(parts) - 1))
    out: list[list[dict[str, Any]]] = []
    for i, part in enumerate(parts):
        if i != longest:
            out.append([part])
            continue
        for j, text in enumerate(_split_text(part["text"], splits)):
            piece = {"text": text}
            if j == 0 and "thoughtSignature" in part:
                piece["thoughtSignature"] = part["thoughtSignature"]
            out.append([piece])
    return out


def _split_text(text: str, n: int) -> list[str]:
    """Cut text into at most n pieces at word boundaries; the pieces join back to the text."""
    words = text.split(" ")
    n = max(1, min(n, len(words)))
    size, extra = divmod(len(words), n)
    pieces, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        chunk = " ".join(words[start:end])
        pieces.append(chunk if end == len(words) else chunk + " ")
        start = end
    return pieces
