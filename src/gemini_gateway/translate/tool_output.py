"""What Gemini's built-in tools return, rendered for a Chat Completions client.

- Code execution: an ``executableCode`` part becomes a fenced block in its language, a
  ``codeExecutionResult`` part a fenced ``output`` block (with the outcome when it is not OK);
  both go into ``content`` in part order, streamed or not.
- Google Search grounding: ``groundingMetadata.groundingChunks`` become a "Sources" list of links
  after the answer, and each ``groundingSupports`` entry one OpenAI ``url_citation`` annotation
  per chunk it cites (``message.annotations``, shape from ChatCompletionResponseMessage).
  Gemini measures segments in UTF-8 bytes of a part; OpenAI's indices are characters of the
  message, so segments are found by their text and the byte offsets are only a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def executable_code_to_text(part: Mapping[str, Any]) -> str:
    """``executableCode`` → a fenced code block, e.g. ```` ```python ````."""
    code = part.get("executableCode") or {}
    language = str(code.get("language") or "").lower()
    if language in ("", "language_unspecified"):
        language = ""
    return f"\n```{language}\n{_ending_newline(str(code.get('code') or ''))}```\n"


def code_execution_result_to_text(part: Mapping[str, Any]) -> str:
    """``codeExecutionResult`` → a fenced ``output`` block; a failed outcome is named first."""
    result = part.get("codeExecutionResult") or {}
    output = str(result.get("output") or "")
    outcome = str(result.get("outcome") or "OUTCOME_OK")
    note = "" if outcome == "OUTCOME_OK" else f"Execution failed ({outcome}).\n"
    return f"\n{note}```output\n{_ending_newline(output)}```\n"


def _ending_newline(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def tool_part_to_text(part: Mapping[str, Any]) -> str | None:
    """The content text of a code-execution part, or None for any other part."""
    if "executableCode" in part:
        return executable_code_to_text(part)
    if "codeExecutionResult" in part:
        return code_execution_result_to_text(part)
    return None


def grounding_sources(metadata: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(title, url) of every web grounding chunk, in chunk order."""
    sources: list[tuple[str, str]] = []
    for chunk in (metadata or {}).get("groundingChunks") or []:
        web = chunk.get("web") if isinstance(chunk, Mapping) else None
        if isinstance(web, Mapping) and web.get("uri"):
            uri = str(web["uri"])
            sources.append((str(web.get("title") or web.get("domain") or uri), uri))
    return sources


def grounding_sources_text(metadata: Mapping[str, Any] | None) -> str:
    """A Markdown "Sources" list to append after the answer ("" when there is none)."""
    sources = grounding_sources(metadata)
    if not sources:
        return ""
    lines = [f"{i}. [{_escape_link_text(title)}]({url})"
             for i, (title, url) in enumerate(sources, 1)]
    return "\n\nSources:\n" + "\n".join(lines) + "\n"


def _escape_link_text(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def grounding_annotations(metadata: Mapping[str, Any] | None, content: str
                          ) -> list[dict[str, Any]]:
    """``groundingSupports`` → OpenAI ``url_citation`` annotations over ``content``."""
    chunks = (metadata or {}).get("groundingChunks") or []
    annotations: list[dict[str, Any]] = []
    cursor = 0
    encoded = content.encode("utf-8")
    for support in (metadata or {}).get("groundingSupports") or []:
        if not isinstance(support, Mapping):
            continue
        segment = support.get("segment") or {}
        span = _segment_span(segment, content, encoded, cursor)
        if span is None:
            continue
        start, end = span
        cursor = start
        for index in support.get("groundingChunkIndices") or []:
            if not isinstance(index, int) or not 0 <= index < len(chunks):
                continue
            web = chunks[index].get("web") if isinstance(chunks[index], Mapping) else None
            if not isinstance(web, Mapping) or not web.get("uri"):
                continue
            annotations.append({
                "type": "url_citation",
                "url_citation": {
                    "url": str(web["uri"]),
                    "title": str(web.get("title") or web.get("domain") or web["uri"]),
                    "start_index": start,
                    "end_index": end,
                },
            })
    return annotations


def _segment_span(segment: Mapping[str, Any], content: str, encoded: bytes, cursor: int
                  ) -> tuple[int, int] | None:
    text = segment.get("text")
    if isinstance(text, str) and text:
        found = content.find(text, cursor)
        if found < 0:
            found = content.find(text)
        if found >= 0:
            return found, found + len(text)
    start_byte = segment.get("startIndex", 0)
    end_byte = segment.get("endIndex")
    if not isinstance(start_byte, int) or not isinstance(end_byte, int) or end_byte <= start_byte:
        return None
    if end_byte > len(encoded):
        return None
    start = len(encoded[:start_byte].decode("utf-8", errors="ignore"))
    end = len(encoded[:end_byte].decode("utf-8", errors="ignore"))
    return start, end
