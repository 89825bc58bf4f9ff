"""tools / tool_choice / built-in tools → Gemini, checked against Gemini's protos and the
community OpenAPI spec (for fields the protos lack, such as includeServerSideToolInvocations)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.ai.generativelanguage_v1beta import types as gl

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.simulator.google_errors import GoogleError
from gemini_gateway.simulator.proto_walk import normalise_request
from gemini_gateway.simulator.validation import check_generate_request, make_signature
from gemini_gateway.translate.request import chat_request_to_gemini
from gemini_gateway.translate.toolcalls import SKIP_SIGNATURE, function_call_to_tool_call
from gemini_gateway.translate.tools import ToolPlan, check_tools_with_json_output, tools_to_gemini
from tests.unit.test_translate_schema import (
    MCP_EDIT_FILE,
    SPEC_PATH,
    WEATHER,
    community_validator,
)

# The product page's requests, verbatim apart from messages/stream.
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": WEATHER,
}}
CODE_EXECUTION_TOOL = {"type": "function", "function": {"name": "codeExecution"}}


def fn_tool(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": f"{name} does things"}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def assert_valid_body(plan: ToolPlan) -> dict[str, Any]:
    """The request body the plan produces is a valid GenerateContentRequest."""
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    plan.apply(body)
    proto_body = json.loads(json.dumps(body))
    proto_body.get("toolConfig", {}).pop("includeServerSideToolInvocations", None)
    if not proto_body.get("toolConfig", True):
        proto_body.pop("toolConfig")
    gl.GenerateContentRequest.from_json(json.dumps(proto_body))
    if SPEC_PATH.exists():
        community_validator("GenerateContentRequest").validate(body)
    return body


def test_product_page_function_calling_on_gemini_2_0() -> None:
    plan = tools_to_gemini({"tools": [WEATHER_TOOL]}, "gemini-2.0-flash")
    body = assert_valid_body(plan)
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "OBJECT",
            "properties": {
                "location": {"type": "STRING",
                             "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"], "format": "enum"},
            },
            "required": ["location"],
        },
    }]}]
    assert "toolConfig" not in body
    assert plan.function_names == ("get_current_weather",)


def test_gemini_2_5_gets_parameters_json_schema() -> None:
    plan = tools_to_gemini({"tools": [WEATHER_TOOL, fn_tool("edit_file", MCP_EDIT_FILE)]},
                           "gemini-2.5-flash")
    body = assert_valid_body(plan)
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[0]["parametersJsonSchema"] == WEATHER
    assert "parameters" not in declarations[0]
    edit = declarations[1]["parametersJsonSchema"]
    assert "$schema" not in edit and edit["additionalProperties"] is False


def test_product_page_code_execution() -> None:
    plan = tools_to_gemini({"tools": [CODE_EXECUTION_TOOL]}, "gemini-2.0-flash")
    body = assert_valid_body(plan)
    assert body["tools"] == [{"codeExecution": {}}]
    assert "toolConfig" not in body
    assert plan.builtins == ("codeExecution",) and plan.function_names == ()


@pytest.mark.parametrize(
    ("request_tools", "expected"),
    [
        pytest.param({"tools": [fn_tool("googleSearch")]}, [{"googleSearch": {}}], id="search"),
        pytest.param({"tools": [fn_tool("urlContext")]}, [{"urlContext": {}}], id="url-context"),
        pytest.param({"tools": [fn_tool("google_search"), fn_tool("code_execution")]},
                     [{"googleSearch": {}}, {"codeExecution": {}}], id="snake-case-names"),
        pytest.param({"messages": [], "web_search_options": {}}, [{"googleSearch": {}}],
                     id="web_search_options"),
        pytest.param({"web_search_options": {"search_context_size": "low"},
                      "tools": [fn_tool("googleSearch")]}, [{"googleSearch": {}}],
                     id="search-once"),
    ],
)
def test_builtin_tools(request_tools: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    body = assert_valid_body(tools_to_gemini(request_tools, "gemini-2.5-flash"))
    assert body["tools"] == expected


def test_gemini_2_cannot_mix_builtin_and_functions() -> None:
    with pytest.raises(InvalidRequest, match="cannot combine") as err:
        tools_to_gemini({"tools": [WEATHER_TOOL, CODE_EXECUTION_TOOL]}, "gemini-2.5-flash")
    assert err.value.param == "tools"
    with pytest.raises(InvalidRequest):
        tools_to_gemini({"tools": [WEATHER_TOOL], "web_search_options": {}}, "gemini-2.0-flash")


def test_gemini_3_mixes_builtin_and_functions() -> None:
    plan = tools_to_gemini({"tools": [WEATHER_TOOL, fn_tool("googleSearch")]},
                           "gemini-3-pro-preview")
    body = assert_valid_body(plan)
    assert body["tools"][1] == {"googleSearch": {}}
    assert body["toolConfig"] == {"includeServerSideToolInvocations": True}


def test_tool_without_parameters_sends_no_parameters() -> None:
    for params in (None, {"type": "object", "properties": {}}, {"type": "object"}):
        for model in ("gemini-2.0-flash", "gemini-2.5-pro"):
            body = assert_valid_body(tools_to_gemini({"tools": [fn_tool("ping", params)]}, model))
            assert body["tools"] == [{"functionDeclarations": [
                {"name": "ping", "description": "ping does things"}]}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        pytest.param("none", {"mode": "NONE"}, id="none"),
        pytest.param("auto", {"mode": "AUTO"}, id="auto"),
        pytest.param("required", {"mode": "ANY"}, id="required"),
        pytest.param({"type": "function", "function": {"name": "get_current_weather"}},
                     {"mode": "ANY", "allowedFunctionNames": ["get_current_weather"]},
                     id="named"),
        pytest.param({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
            {"type": "function", "function": {"name": "lookup"}}]}},
            {"mode": "ANY", "allowedFunctionNames": ["lookup"]}, id="allowed-required"),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    request = {"tools": [WEATHER_TOOL, fn_tool("lookup")], "tool_choice": choice}
    body = assert_valid_body(tools_to_gemini(request, "gemini-2.5-flash"))
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_allowed_tools_auto_declares_only_those() -> None:
    request = {"tools": [WEATHER_TOOL, fn_tool("lookup")], "tool_choice": {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function",
                                                     "function": {"name": "lookup"}}]}}}
    body = assert_valid_body(tools_to_gemini(request, "gemini-2.5-flash"))
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["lookup"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_legacy_functions_and_function_call() -> None:
    request = {"functions": [WEATHER_TOOL["function"]],
               "function_call": {"name": "get_current_weather"}}
    body = assert_valid_body(tools_to_gemini(request, "gemini-2.0-flash"))
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "get_current_weather"
    assert body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == [
        "get_current_weather"]


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, id="bad-mode"),
        pytest.param({"tools": [WEATHER_TOOL], "tool_choice": {
            "type": "function", "function": {"name": "nope"}}}, id="unknown-name"),
        pytest.param({"tool_choice": "required"}, id="required-without-tools"),
        pytest.param({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, id="custom-tool"),
        pytest.param({"tools": [fn_tool("2fa"), fn_tool("_2fa")]}, id="names-collide-once-renamed"),
        pytest.param({"tools": [fn_tool("9" * 64)]}, id="too-long-once-renamed"),
        pytest.param({"tools": [fn_tool("a b")]}, id="name-with-space"),
        pytest.param({"tools": [fn_tool("dup"), fn_tool("dup")]}, id="duplicate"),
        pytest.param({"tools": [{"type": "function", "function": {}}]}, id="no-name"),
        pytest.param({"tools": "get_current_weather"}, id="tools-not-array"),
        pytest.param({"tools": [fn_tool("f", {"type": "object", "properties": {
            "a": {"$ref": "#/$defs/Missing"}}})]}, id="bad-ref-on-old-model"),
    ],
)
def test_invalid_tool_requests(request_body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        tools_to_gemini(request_body, "gemini-2.0-flash")


def test_tool_choice_none_and_auto_without_tools_are_harmless() -> None:
    for choice in ("none", "auto"):
        plan = tools_to_gemini({"tool_choice": choice}, "gemini-2.5-flash")
        assert plan.tools == [] and plan.tool_config is None


def test_parallel_tool_calls_false_is_recorded() -> None:
    assert tools_to_gemini({"tools": [WEATHER_TOOL], "parallel_tool_calls": False},
                           "gemini-2.5-flash").single_call
    assert not tools_to_gemini({"tools": [WEATHER_TOOL], "parallel_tool_calls": True},
                               "gemini-2.5-flash").single_call
    assert not tools_to_gemini({"tools": [WEATHER_TOOL]}, "gemini-2.5-flash").single_call


def test_no_tools_leaves_body_alone() -> None:
    body: dict[str, Any] = {"contents": []}
    tools_to_gemini({}, "gemini-2.5-flash").apply(body)
    assert body == {"contents": []}


def test_tools_with_json_output_only_on_gemini_3() -> None:
    json_output = {"responseMimeType": "application/json"}
    for model in ("gemini-2.0-flash", "gemini-2.5-pro"):
        plan = tools_to_gemini({"tools": [WEATHER_TOOL]}, model)
        with pytest.raises(InvalidRequest, match="JSON response_format"):
            check_tools_with_json_output(plan, json_output, model)
        check_tools_with_json_output(plan, {}, model)
        check_tools_with_json_output(tools_to_gemini({}, model), json_output, model)
    plan = tools_to_gemini({"tools": [WEATHER_TOOL]}, "gemini-3-flash-preview")
    check_tools_with_json_output(plan, json_output, "gemini-3-flash-preview")


# --- whole requests through chat_request_to_gemini, checked by the simulator's validator ------

def _checked_body(request: dict[str, Any]) -> dict[str, Any]:
    """Translate, then refuse what Gemini refuses (the simulator's proto-based validator)."""
    call = chat_request_to_gemini(request)
    body = call.body
    normalised = normalise_request(json.loads(json.dumps(body)), "GenerateContentRequest",
                                   "v1beta", strict=True)
    check_generate_request(normalised, call.model.upstream)
    return body


def test_product_page_requests_translate_and_validate() -> None:
    weather = {"messages": [{"role": "user",
                             "content": "What is the weather like in Boston today?"}],
               "tools": [WEATHER_TOOL], "model": "gemini-2.0-flash", "stream": True}
    body = _checked_body(weather)
    assert body["tools"][0]["functionDeclarations"][0]["parameters"]["type"] == "OBJECT"
    code = {"messages": [{"role": "user", "content": "What is the sum of the first 50 prime "
                          "numbers? Generate and run code for the calculation, and make sure you "
                          "get all 50."}],
            "tools": [CODE_EXECUTION_TOOL], "model": "gemini-2.0-flash", "stream": True}
    assert _checked_body(code)["tools"] == [{"codeExecution": {}}]


def _agent_history(call: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What is the weather like in Boston today?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 22}'},
    ]


def test_gemini3_agent_history_round_trips_the_signature() -> None:
    signature = make_signature(b"turn-1")  # what the simulator (and Gemini) would sign
    gemini_part = {"functionCall": {"name": "get_current_weather",
                                    "args": {"location": "Boston, MA"}},
                   "thoughtSignature": signature}
    sent = function_call_to_tool_call(gemini_part)
    echoed = {"id": sent["id"], "type": "function", "function": sent["function"]}
    body = _checked_body({"model": "gemini-3-pro-preview", "tools": [WEATHER_TOOL],
                          "messages": _agent_history(echoed)})
    model_turn, tool_turn = body["contents"][1], body["contents"][2]
    assert model_turn == {"role": "model", "parts": [gemini_part]}
    assert tool_turn == {"role": "user", "parts": [{"functionResponse": {
        "name": "get_current_weather", "response": {"temperature": 22}}}]}


def test_gemini3_history_from_elsewhere_gets_the_placeholder() -> None:
    foreign = {"id": "toolu_01", "type": "function",
               "function": {"name": "get_current_weather", "arguments": '{"location": "Oslo"}'}}
    body = _checked_body({"model": "gemini-3-pro-preview", "tools": [WEATHER_TOOL],
                          "messages": _agent_history(foreign)})
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE


def test_gemini3_refuses_a_lost_signature() -> None:
    """The oracle itself: without the id trick Gemini 3 would refuse this history."""
    body = _checked_body({"model": "gemini-3-pro-preview", "tools": [WEATHER_TOOL],
                          "messages": _agent_history({"id": "call_x", "type": "function",
                                                      "function": {"name": "get_current_weather",
                                                                   "arguments": "{}"}})})
    body["contents"][1]["parts"][0].pop("thoughtSignature")
    with pytest.raises(GoogleError, match="thought_signature"):
        check_generate_request(body, "gemini-3-pro-preview")


def test_structured_output_request() -> None:
    body = _checked_body({"model": "gemini-2.5-flash",
                          "messages": [{"role": "user", "content": "Describe Ada."}],
                          "response_format": {"type": "json_schema", "json_schema": {
                              "name": "person", "strict": True,
                              "schema": {"type": "object",
                                         "properties": {"name": {"type": "string"}},
                                         "required": ["name"], "additionalProperties": False}}}})
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"]["required"] == ["name"]


def test_parallel_tool_calls_false_reaches_the_call() -> None:
    call = chat_request_to_gemini({"model": "gemini-2.5-flash", "tools": [WEATHER_TOOL],
                                   "parallel_tool_calls": False,
                                   "messages": [{"role": "user", "content": "hi"}]})
    assert call.extra["single_tool_call"] is True
    assert call.tool_names == ("get_current_weather",)
