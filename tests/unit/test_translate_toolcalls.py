"""Tool calls both ways and thought signatures riding in tool call ids."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from google.ai.generativelanguage_v1beta import types as gl

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.toolcalls import (
    SKIP_SIGNATURE,
    client_function_name,
    function_call_to_tool_call,
    function_calls_to_tool_calls,
    gemini_function_name,
    message_tool_parts,
    new_tool_call_id,
    signature_from_tool_call_id,
    tool_call_names,
    tool_calls_to_parts,
    tool_messages_to_content,
    tool_result_to_response,
)

# A signature with every character that differs between base64 alphabets, and padding.
SIGNATURE = base64.b64encode(bytes(range(250, 256)) + b"\xfb\xff\xfe" + b"sig" * 40 + b"!").decode()
WEATHER_CALL_PART = {
    "functionCall": {"name": "get_current_weather", "args": {"location": "Boston, MA"}},
    "thoughtSignature": SIGNATURE,
}


def test_signature_alphabet_is_exercised() -> None:
    assert "+" in SIGNATURE and "/" in SIGNATURE and SIGNATURE.endswith("=")


def test_function_call_becomes_tool_call() -> None:
    call = function_call_to_tool_call({"functionCall": {"name": "f", "args": {"a": "é", "b": 1}}})
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call["id"])
    assert call["type"] == "function"
    assert call["function"]["name"] == "f"
    assert json.loads(call["function"]["arguments"]) == {"a": "é", "b": 1}
    assert "extra_content" not in call and "index" not in call


def test_function_call_without_args_has_empty_object_arguments() -> None:
    call = function_call_to_tool_call({"functionCall": {"name": "ping"}})
    assert call["function"]["arguments"] == "{}"


def test_stream_delta_carries_index_and_everything_at_once() -> None:
    delta = function_call_to_tool_call(WEATHER_CALL_PART, index=2)
    assert delta["index"] == 2
    assert set(delta) >= {"id", "type", "function"}
    assert set(delta["function"]) == {"name", "arguments"}


def test_ids_are_unique() -> None:
    assert len({new_tool_call_id() for _ in range(1000)}) == 1000


def test_signature_rides_in_id_and_extra_content() -> None:
    call = function_call_to_tool_call(WEATHER_CALL_PART)
    assert call["id"].startswith("call_")
    assert re.fullmatch(r"[A-Za-z0-9_\-]+", call["id"])  # URL-safe, no padding
    assert signature_from_tool_call_id(call["id"]) == SIGNATURE
    assert call["extra_content"] == {"google": {"thought_signature": SIGNATURE}}


def test_id_without_signature() -> None:
    assert signature_from_tool_call_id("call_abc") is None
    assert signature_from_tool_call_id("call_abc__ts_") is None


def test_round_trip_through_standard_fields_only() -> None:
    """What the openai SDK echoes back: id, type, function — the signature survives."""
    call = function_call_to_tool_call(WEATHER_CALL_PART)
    echoed = {"id": call["id"], "type": "function", "function": call["function"]}
    parts = tool_calls_to_parts([echoed], gemini3=True)
    assert parts == [WEATHER_CALL_PART]
    gl.Part.from_json(json.dumps(parts[0]))


def test_google_extra_content_is_preferred() -> None:
    call = {"id": "call_x", "type": "function",
            "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": "R29vZ2xl"}}}
    assert tool_calls_to_parts([call], gemini3=True)[0]["thoughtSignature"] == "R29vZ2xl"


def test_gemini3_history_without_signatures_gets_the_placeholder_on_first_call() -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    parts = tool_calls_to_parts(calls, gemini3=True)
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[1]
    assert all("thoughtSignature" not in p for p in tool_calls_to_parts(calls, gemini3=False))


def test_parallel_calls_keep_signature_only_on_the_first() -> None:
    first = function_call_to_tool_call(WEATHER_CALL_PART)
    second = function_call_to_tool_call({"functionCall": {"name": "g", "args": {}}})
    parts = tool_calls_to_parts([first, second], gemini3=True)
    assert parts[0]["thoughtSignature"] == SIGNATURE
    assert "thoughtSignature" not in parts[1]


def test_single_call_keeps_only_the_first() -> None:
    parts = [{"text": "x"}, WEATHER_CALL_PART, {"functionCall": {"name": "g", "args": {}}}]
    assert len(function_calls_to_tool_calls(parts)) == 2
    only = function_calls_to_tool_calls(parts, single_call=True)
    assert [c["function"]["name"] for c in only] == ["get_current_weather"]


@pytest.mark.parametrize(
    "arguments",
    [pytest.param("{not json", id="bad-json"), pytest.param("[1, 2]", id="array"),
     pytest.param(5, id="number")],
)
def test_bad_arguments_are_invalid_request(arguments: Any) -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": arguments}}
    with pytest.raises(InvalidRequest) as err:
        tool_calls_to_parts([call], gemini3=False, param="messages[1].tool_calls")
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_empty_arguments_are_an_empty_object() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    assert tool_calls_to_parts([call], gemini3=False)[0]["functionCall"]["args"] == {}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param('{"temperature": 22, "unit": "celsius"}',
                     {"temperature": 22, "unit": "celsius"}, id="json-object"),
        pytest.param("[1, 2]", {"result": [1, 2]}, id="json-array"),
        pytest.param("42", {"result": 42}, id="json-number"),
        pytest.param("Sunny and 22C", {"content": "Sunny and 22C"}, id="text"),
        pytest.param([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                     {"content": "ab"}, id="text-parts"),
        pytest.param("", {"content": ""}, id="empty"),
    ],
)
def test_tool_results(content: Any, expected: dict[str, Any]) -> None:
    assert tool_result_to_response(content) == expected


AGENT_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Boston and Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_current_weather", "arguments": '{"location": "Boston"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'}},
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 5}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
]


def test_tool_messages_become_one_user_turn() -> None:
    names = tool_call_names(AGENT_HISTORY)
    assert names == {"call_1": "get_current_weather", "call_2": "get_current_weather"}
    content = tool_messages_to_content(AGENT_HISTORY[2:], names)
    assert content == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_current_weather", "response": {"temperature": 5}}},
        {"functionResponse": {"name": "get_current_weather", "response": {"content": "rainy"}}},
    ]}
    gl.Content.from_json(json.dumps(content))


def test_unknown_tool_call_id_is_invalid_request() -> None:
    names = tool_call_names(AGENT_HISTORY)
    with pytest.raises(InvalidRequest, match="call_9"):
        message_tool_parts({"role": "tool", "tool_call_id": "call_9", "content": "x"}, names,
                           gemini3=False, param="messages[4]")


def test_message_tool_parts_for_each_role() -> None:
    names = tool_call_names(AGENT_HISTORY)
    model_parts = message_tool_parts(AGENT_HISTORY[1], names, gemini3=False)
    assert [p["functionCall"]["args"] for p in model_parts] == [
        {"location": "Boston"}, {"location": "Paris"}]
    assert message_tool_parts(AGENT_HISTORY[2], names, gemini3=False) == [
        {"functionResponse": {"name": "get_current_weather", "response": {"temperature": 5}}}]
    legacy_call = {"role": "assistant", "content": None,
                   "function_call": {"name": "f", "arguments": '{"x": 1}'}}
    assert message_tool_parts(legacy_call, {}, gemini3=False) == [
        {"functionCall": {"name": "f", "args": {"x": 1}}}]
    legacy_result = {"role": "function", "name": "f", "content": "done"}
    assert message_tool_parts(legacy_result, {}, gemini3=False) == [
        {"functionResponse": {"name": "f", "response": {"content": "done"}}}]


@pytest.mark.parametrize(
    ("client", "gemini"),
    [("get_weather", "get_weather"), ("_private", "_private"), ("2fa_lookup", "_2fa_lookup"),
     ("-dash", "_-dash"), ("a.b:c-d", "a.b:c-d")],
)
def test_function_names_there_and_back(client: str, gemini: str) -> None:
    assert gemini_function_name(client) == gemini
    assert client_function_name(gemini, [client]) == client


def test_a_client_underscore_name_is_never_stripped() -> None:
    assert client_function_name("_2fa", ["_2fa"]) == "_2fa"
    assert client_function_name("_unknown", ["known"]) == "_unknown"  # not ours to change
    part = {"functionCall": {"name": "_2fa", "args": {}}}
    assert function_call_to_tool_call(part, declared=["2fa"])["function"]["name"] == "2fa"
