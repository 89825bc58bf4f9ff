"""Code execution and grounding rendered for Chat Completions clients."""

from __future__ import annotations

from typing import Any

from gemini_gateway.translate.call import GeminiCall, ModelSpec, ResponseContext
from gemini_gateway.translate.response import gemini_response_to_chat
from gemini_gateway.translate.stream import ChatStreamTranslator
from gemini_gateway.translate.tool_output import (
    code_execution_result_to_text,
    executable_code_to_text,
    grounding_annotations,
    grounding_sources,
    grounding_sources_text,
    tool_part_to_text,
)
from gemini_gateway.translate.toolcalls import signature_from_tool_call_id
from tests.unit.openai_schema import assert_valid


def test_executable_code_is_a_fenced_block_in_its_language() -> None:
    part = {"executableCode": {"language": "PYTHON", "code": "print(sum(range(10)))"}}
    assert executable_code_to_text(part) == "\n```python\nprint(sum(range(10)))\n```\n"


def test_code_result_is_a_fenced_output_block() -> None:
    part = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "45\n"}}
    assert code_execution_result_to_text(part) == "\n```output\n45\n```\n"


def test_failed_code_result_names_the_outcome() -> None:
    part = {"codeExecutionResult": {"outcome": "OUTCOME_FAILED", "output": "Traceback ..."}}
    text = code_execution_result_to_text(part)
    assert "OUTCOME_FAILED" in text and "```output\nTraceback ...\n```" in text


def test_tool_part_to_text_ignores_other_parts() -> None:
    assert tool_part_to_text({"text": "hi"}) is None
    assert tool_part_to_text({"executableCode": {"language": "PYTHON", "code": "1"}})


# Shaped like the grounding example in Google's "Grounding with Google Search" docs.
ANSWER = "Spain won Euro 2024, defeating England 2-1 in the final. Olé — a fourth title."
METADATA: dict[str, Any] = {
    "webSearchQueries": ["UEFA Euro 2024 winner"],
    "groundingChunks": [
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/1",
                 "title": "aljazeera.com"}},
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/2",
                 "title": "uefa.com"}},
    ],
    "groundingSupports": [
        {"segment": {"startIndex": 0, "endIndex": 56,
                     "text": "Spain won Euro 2024, defeating England 2-1 in the final."},
         "groundingChunkIndices": [0, 1]},
        # No text: byte offsets only, past a multi-byte "é" and "—".
        {"segment": {"startIndex": 57,
                     "endIndex": len(ANSWER.encode())},
         "groundingChunkIndices": [1]},
    ],
}


def test_sources_list_follows_the_answer() -> None:
    assert grounding_sources(METADATA)[1] == (
        "uefa.com", "https://vertexaisearch.cloud.google.com/grounding-api-redirect/2")
    text = grounding_sources_text(METADATA)
    assert text == (
        "\n\nSources:\n"
        "1. [aljazeera.com](https://vertexaisearch.cloud.google.com/grounding-api-redirect/1)\n"
        "2. [uefa.com](https://vertexaisearch.cloud.google.com/grounding-api-redirect/2)\n"
    )
    assert grounding_sources_text(None) == "" and grounding_sources_text({}) == ""


def test_annotations_are_url_citations_in_characters() -> None:
    annotations = grounding_annotations(METADATA, ANSWER)
    assert len(annotations) == 3
    first = annotations[0]["url_citation"]
    assert first["start_index"] == 0 and first["end_index"] == 56
    assert ANSWER[first["start_index"]:first["end_index"]].endswith("final.")
    last = annotations[2]["url_citation"]
    assert ANSWER[last["start_index"]:last["end_index"]] == "Olé — a fourth title."
    assert last["title"] == "uefa.com"
    message = {"role": "assistant", "content": ANSWER, "refusal": None,
               "annotations": annotations}
    assert_valid(message, "ChatCompletionResponseMessage")


def test_annotations_skip_bad_indices() -> None:
    metadata = {"groundingChunks": [], "groundingSupports": [
        {"segment": {"startIndex": 0, "endIndex": 3, "text": "Spa"},
         "groundingChunkIndices": [4]}]}
    assert grounding_annotations(metadata, ANSWER) == []
    assert grounding_annotations(None, ANSWER) == []


# --- through the response and stream translators ---------------------------------------------

def _call(**extra: Any) -> GeminiCall:
    return GeminiCall(model=ModelSpec(requested="gemini-2.0-flash", upstream="gemini-2.0-flash"),
                      body={}, extra=dict(extra))


def _ctx() -> ResponseContext:
    return ResponseContext(completion_id="chatcmpl-tools", created=1_750_000_000)


# Shaped like Google's code-execution docs example.
CODE_PARTS: list[dict[str, Any]] = [
    {"text": "I'll compute it."},
    {"executableCode": {"language": "PYTHON", "code": "print(sum(primes[:50]))"}},
    {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "5117\n"}},
    {"text": "The sum is 5117."},
]


def _response(parts: list[dict[str, Any]], **candidate: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", **candidate}]}


def test_code_execution_in_a_whole_response() -> None:
    chat = gemini_response_to_chat(_response(CODE_PARTS), _call(), _ctx())
    assert_valid(chat, "CreateChatCompletionResponse")
    assert chat["choices"][0]["message"]["content"] == (
        "I'll compute it.\n```python\nprint(sum(primes[:50]))\n```\n"
        "\n```output\n5117\n```\nThe sum is 5117."
    )


def test_code_execution_streamed() -> None:
    translator = ChatStreamTranslator(_call(), _ctx())
    chunks = []
    for i, part in enumerate(CODE_PARTS):
        last = i == len(CODE_PARTS) - 1
        chunks += translator.feed(_response([part]) if last else
                                  {"candidates": [{"content": {"parts": [part]}}]})
    chunks += translator.finish()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    whole = gemini_response_to_chat(_response(CODE_PARTS), _call(), _ctx())
    assert content == whole["choices"][0]["message"]["content"]


def test_grounding_in_a_whole_response() -> None:
    chat = gemini_response_to_chat(_response([{"text": ANSWER}], groundingMetadata=METADATA),
                                   _call(), _ctx())
    assert_valid(chat, "CreateChatCompletionResponse")
    message = chat["choices"][0]["message"]
    assert message["content"] == ANSWER + grounding_sources_text(METADATA)
    assert message["annotations"] == grounding_annotations(METADATA, ANSWER)


def test_grounding_streamed_arrives_with_the_last_delta() -> None:
    translator = ChatStreamTranslator(_call(), _ctx())
    half = len(ANSWER) // 2
    chunks = translator.feed({"candidates": [{"content": {"parts": [{"text": ANSWER[:half]}]}}]})
    chunks += translator.feed(_response([{"text": ANSWER[half:]}], groundingMetadata=METADATA))
    chunks += translator.finish()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == (
        ANSWER + grounding_sources_text(METADATA))
    assert deltas[-1]["annotations"] == grounding_annotations(METADATA, ANSWER)


def test_tool_calls_carry_signatures_and_honour_single_call() -> None:
    parts = [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"},
             {"functionCall": {"name": "g", "args": {}}}]
    both = gemini_response_to_chat(_response(parts), _call(), _ctx())
    calls = both["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["f", "g"]
    assert signature_from_tool_call_id(calls[0]["id"]) == "c2ln"
    assert both["choices"][0]["finish_reason"] == "tool_calls"
    one = gemini_response_to_chat(_response(parts), _call(single_tool_call=True), _ctx())
    assert [c["function"]["name"] for c in one["choices"][0]["message"]["tool_calls"]] == ["f"]
    translator = ChatStreamTranslator(_call(single_tool_call=True), _ctx())
    chunks = translator.feed(_response(parts)) + translator.finish()
    streamed = [tc for c in chunks if c["choices"]
                for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [(tc["index"], tc["function"]["name"]) for tc in streamed] == [(0, "f")]
