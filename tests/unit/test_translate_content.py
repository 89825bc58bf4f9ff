"""OpenAI messages → Gemini systemInstruction/contents, and the media list media/ resolves.

Message shapes are OpenAI's ChatCompletionRequestMessage variants (system, developer, user with
text/image_url/input_audio/file parts, assistant with text/refusal parts); the output is Gemini's
Content/Part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gemini_gateway.errors import GatewayError, InvalidRequest, UnsupportedMedia
from gemini_gateway.translate.content import media_parts, messages_to_contents
from gemini_gateway.translate.types import Part

PNG = "data:image/png;base64,iVBORw0KGgo="
INLINE_A = {"inlineData": {"mimeType": "image/png", "data": "QUFB"}}
INLINE_B = {"inlineData": {"mimeType": "audio/wav", "data": "QkJC"}}
INLINE_C = {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/files/c"}}


def no_tools(message: Mapping[str, Any], index: int) -> list[Part]:
    raise AssertionError("tool hook must not be called")


def convert(messages: list[Any], media: list[dict[str, Any]] | None = None) -> tuple[Any, Any]:
    return messages_to_contents(messages, media, tool_parts=no_tools)


def test_text_conversation_roles_and_system_anywhere() -> None:
    system, contents = convert([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello", "name": "alice"},
        {"role": "assistant", "content": "Hi."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
    ])
    assert system == {"parts": [{"text": "You are terse.\n\nAnswer in French."}]}
    assert contents == [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"text": "Hi."}]},
        {"role": "user", "parts": [{"text": "How are you?"}]},
    ]


def test_consecutive_same_role_messages_merge_in_order() -> None:
    _, contents = convert([
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"},
                                     {"type": "text", "text": "three"}]},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "four"},
    ])
    assert contents == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]},
        {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "user", "parts": [{"text": "four"}]},
    ]


def test_no_system_instruction_without_system_text() -> None:
    system, _ = convert([{"role": "system", "content": "  "}, {"role": "user", "content": "x"}])
    assert system is None


def test_thought_text_is_not_sent_back() -> None:
    _, contents = convert([
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>adding numbers</think>\n\n4",
         "reasoning_content": "The user wants a sum."},
        {"role": "assistant", "content": None, "reasoning_content": "only thoughts"},
        {"role": "user", "content": "thanks"},
    ])
    assert contents == [
        {"role": "user", "parts": [{"text": "2+2?"}]},
        {"role": "model", "parts": [{"text": "4"}]},
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]


def test_refusal_part_is_assistant_text() -> None:
    _, contents = convert([
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
        {"role": "user", "content": "ok"},
    ])
    assert contents[1] == {"role": "model", "parts": [{"text": "I can't."}]}


def test_media_parts_lists_every_medium_in_order() -> None:
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                                "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        ]},
        {"role": "assistant", "content": f"Here: ![kitten]({PNG}) and "
                                         "![cat](https://gw.example/gemini/v1/files/abc123) "
                                         "but not ![x](https://example.com/other.png)"},
        {"role": "user", "content": [
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBERi0="}},
            {"type": "image_url", "image_url": "https://example.com/bare.png"},
        ]},
    ]
    assert media_parts(messages) == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                            "detail": "high"},
         "param": "messages[1].content[1]"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"},
         "param": "messages[1].content[2]"},
        {"type": "image_url", "image_url": {"url": PNG}, "param": "messages[2].content"},
        {"type": "image_url", "image_url": {"url": "https://gw.example/gemini/v1/files/abc123"},
         "param": "messages[2].content"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBERi0="},
         "param": "messages[3].content[0]"},
        {"type": "image_url", "image_url": {"url": "https://example.com/bare.png"},
         "param": "messages[3].content[1]"},
    ]


def test_media_parts_without_media() -> None:
    assert media_parts([{"role": "user", "content": "hi ![a](data:image/png;base64,AA)"}]) == []


def test_resolved_media_replace_parts_in_place() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "Describe both."},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        ]},
        {"role": "assistant", "content": f"Here is the kitten:\n\n![kitten]({PNG})\n\nEnjoy!"},
        {"role": "user", "content": "Make it blue."},
    ]
    assert len(media_parts(messages)) == 3
    _, contents = convert(messages, [INLINE_A, INLINE_B, INLINE_C])
    assert contents == [
        {"role": "user", "parts": [{"text": "Describe both."}, INLINE_A, INLINE_B]},
        {"role": "model", "parts": [{"text": "Here is the kitten:\n\n"}, INLINE_C,
                                    {"text": "\n\nEnjoy!"}]},
        {"role": "user", "parts": [{"text": "Make it blue."}]},
    ]


def test_media_without_resolution_is_refused() -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]}]
    with pytest.raises(UnsupportedMedia) as caught:
        convert(messages, None)
    assert caught.value.status == 400
    assert caught.value.param == "messages[0].content[1]"
    assert "images" in caught.value.message.lower()


def test_generated_image_in_assistant_text_needs_resolution_too() -> None:
    with pytest.raises(UnsupportedMedia):
        convert([{"role": "assistant", "content": f"![x]({PNG})"},
                 {"role": "user", "content": "again"}], None)


@pytest.mark.parametrize("media", [[], [INLINE_A, INLINE_B]], ids=["too-few", "too-many"])
def test_media_count_mismatch_is_a_server_error(media: list[dict[str, Any]]) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]
    with pytest.raises(GatewayError) as caught:
        convert(messages, media)
    assert caught.value.status == 500


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        pytest.param("hello", "messages", id="not-a-list"),
        pytest.param(["hello"], "messages[0]", id="message-not-object"),
        pytest.param([{"content": "x"}], "messages[0].role", id="no-role"),
        pytest.param([{"role": "robot", "content": "x"}], "messages[0].role", id="unknown-role"),
        pytest.param([{"role": "user", "content": "x"}, {"role": "user", "content": 5}],
                     "messages[1].content", id="content-number"),
        pytest.param([{"role": "user", "content": {"text": "x"}}], "messages[0].content",
                     id="content-object"),
        pytest.param([{"role": "user", "content": ["x"]}], "messages[0].content[0]",
                     id="part-not-object"),
        pytest.param([{"role": "user", "content": [{"type": "video", "video": {}}]}],
                     "messages[0].content[0].type", id="unknown-part-type"),
        pytest.param([{"role": "user", "content": [{"text": "x"}]}],
                     "messages[0].content[0].type", id="part-without-type"),
        pytest.param([{"role": "user", "content": [{"type": "text", "text": 1}]}],
                     "messages[0].content[0].text", id="text-not-string"),
        pytest.param([{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}],
                     "messages[0].content[0].type", id="refusal-from-user"),
        pytest.param([{"role": "system", "content": [{"type": "image_url",
                                                      "image_url": {"url": PNG}}]}],
                     "messages[0].content[0].type", id="media-in-system"),
        pytest.param([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
                     "messages[0].content[0].image_url.url", id="image-without-url"),
        pytest.param([{"role": "user", "content": [{"type": "input_audio",
                                                    "input_audio": {"data": "AA"}}]}],
                     "messages[0].content[0].input_audio", id="audio-without-format"),
        pytest.param([{"role": "user", "content": [{"type": "file", "file": {"filename": "a"}}]}],
                     "messages[0].content[0].file", id="file-without-data"),
    ],
)
def test_wrong_shapes_name_the_field(messages: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        convert(messages, [])
    assert caught.value.param == param


def test_media_parts_checks_media_shapes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        media_parts([{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}])
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_messages_and_tool_calls_go_through_the_hook() -> None:
    calls: list[tuple[str, int]] = []

    def tool_parts(message: Mapping[str, Any], index: int) -> list[Part]:
        calls.append((message["role"], index))
        if message["role"] == "assistant":
            return [{"functionCall": {"name": "f", "args": {}}}]
        return [{"functionResponse": {"name": "f", "response": {"ok": True}}}]

    _, contents = messages_to_contents([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "warm"},
    ], None, tool_parts=tool_parts)
    assert calls == [("assistant", 1), ("tool", 2), ("tool", 3)]
    assert contents == [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}}},
                                   {"functionResponse": {"name": "f", "response": {"ok": True}}}]},
    ]
