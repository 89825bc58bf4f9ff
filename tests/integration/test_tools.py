"""Tools end to end: the real gateway process in front of the simulator, driven by raw HTTP (as
the product page's curl examples) and by the openai SDK; what reached the simulator is checked."""

from __future__ import annotations

import base64
import enum
import json
from typing import Any

import pytest
from pydantic import BaseModel

from tests.integration.helpers import assert_openai_error, post
from tests.unit.openai_schema import assert_valid

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {"type": "object",
                   "properties": {
                       "location": {"type": "string",
                                    "description": "The city and state, e.g. San Francisco, CA"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["location"]}}}
# The product page's two tool examples, verbatim.
FUNCTION_CALLING = {
    "messages": [{"role": "user", "content": "What is the weather like in Boston today?"}],
    "tools": [WEATHER_TOOL],
    "model": "gemini-2.0-flash", "stream": True,
}
CODE_EXECUTION = {
    "messages": [{"role": "user", "content": "What is the sum of the first 50 prime numbers? "
                  "Generate and run code for the calculation, and make sure you get all 50."}],
    "tools": [{"type": "function", "function": {"name": "codeExecution"}}],
    "model": "gemini-2.0-flash", "stream": True,
}
THINKING_MODEL = "gemini-3-flash-preview"


def _raw(gateway: Any, body: dict[str, Any]) -> Any:
    return post(gateway.base_url + "/chat/completions", body,
                {"Authorization": gateway.license})  # the license raw, as on the product page


def _generate_bodies(sim: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in sim.requests() if "enerateContent" in r["path"]]


def _stream_tool_calls(chunks: list[Any]) -> list[dict[str, Any]]:
    """Assemble streamed tool-call deltas by index, as OpenAI clients do."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


def test_product_page_function_calling_verbatim(gateway: Any, sim: Any) -> None:
    resp = _raw(gateway, FUNCTION_CALLING)
    assert resp.status == 200, resp.body
    chunks = resp.chunks()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    deltas = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get(
        "tool_calls") or []]
    assert len(deltas) == 1
    [call] = deltas
    assert call["index"] == 0 and call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_current_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "sample location"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    [body] = _generate_bodies(sim)
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_current_weather"
    assert declaration["parameters"]["type"] == "OBJECT"  # 2.0: converted, not JSON Schema
    assert declaration["parameters"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]


def test_product_page_code_execution_verbatim(gateway: Any, sim: Any) -> None:
    resp = _raw(gateway, CODE_EXECUTION)
    assert resp.status == 200, resp.body
    chunks = resp.chunks()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "```python\nprint(sum(range(" in text
    assert "```output\n" in text and "The result is" in text
    assert text.index("```python") < text.index("```output") < text.index("The result is")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    [body] = _generate_bodies(sim)
    assert body["tools"] == [{"codeExecution": {}}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_agent_loop_with_gemini3_signatures_in_standard_fields(gateway: Any, sim: Any,
                                                               stream: bool) -> None:
    """question → tool call → tool result → answer, echoing back only id/type/function."""
    client = gateway.client()
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the weather like in Boston today?"}]
    kwargs = {"model": THINKING_MODEL, "tools": [WEATHER_TOOL], "stream": stream}
    if stream:
        calls = _stream_tool_calls(list(client.chat.completions.create(messages=messages,
                                                                       **kwargs)))
    else:
        first = client.chat.completions.create(messages=messages, **kwargs)
        assert first.choices[0].finish_reason == "tool_calls"
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                 for c in first.choices[0].message.tool_calls]
    assert len(calls) == 1 and "__ts_" in calls[0]["id"]
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"],
                     "content": json.dumps({"temperature": 22, "unit": "celsius"})})
    if stream:
        answer = "".join(c.choices[0].delta.content or "" for c in
                         client.chat.completions.create(messages=messages, **kwargs)
                         if c.choices)
    else:
        answer = client.chat.completions.create(messages=messages, **kwargs) \
            .choices[0].message.content
    assert 'The function get_current_weather returned {"temperature":22' in answer
    second = _generate_bodies(sim)[-1]
    model_turn = second["contents"][1]
    assert model_turn["role"] == "model"
    signature = model_turn["parts"][0]["thoughtSignature"]
    assert base64.b64decode(signature).startswith(b"simsig:")  # the simulator's own, returned
    assert second["contents"][2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "get_current_weather", "response": {"temperature": 22, "unit": "celsius"}}}]}


def test_agent_loop_appending_the_sdk_message(gateway: Any, sim: Any) -> None:
    """The common idiom: append the SDK's message object (extra_content rides along)."""
    client = gateway.client()
    messages: list[Any] = [{"role": "user", "content": "What is the weather like in Boston?"}]
    first = client.chat.completions.create(model=THINKING_MODEL, messages=messages,
                                           tools=[WEATHER_TOOL])
    message = first.choices[0].message
    messages.append(message)
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    final = client.chat.completions.create(model=THINKING_MODEL, messages=messages,
                                           tools=[WEATHER_TOOL])
    assert '{"content":"sunny"}' in final.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True])
def test_a_name_gemini_refuses_is_renamed_there_and_back(gateway: Any, sim: Any,
                                                         stream: bool) -> None:
    """OpenAI takes '2fa_lookup'; Gemini refuses a leading digit. The client never notices."""
    tool = {"type": "function", "function": {"name": "2fa_lookup", "parameters": {
        "type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]}}}
    client = gateway.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Find the code for ann"}]
    kwargs = {"model": "gemini-2.5-flash", "tools": [tool], "stream": stream,
              "tool_choice": {"type": "function", "function": {"name": "2fa_lookup"}}}
    if stream:
        calls = _stream_tool_calls(list(client.chat.completions.create(messages=messages,
                                                                       **kwargs)))
    else:
        message = client.chat.completions.create(messages=messages, **kwargs).choices[0].message
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                 for c in message.tool_calls]
    assert [c["name"] for c in calls] == ["2fa_lookup"]
    first = _generate_bodies(sim)[-1]
    assert first["tools"][0]["functionDeclarations"][0]["name"] == "_2fa_lookup"
    assert first["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == ["_2fa_lookup"]
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[0]["id"], "type": "function",
         "function": {"name": "2fa_lookup", "arguments": calls[0]["arguments"]}}]})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "424242"})
    kwargs.pop("tool_choice")
    client.chat.completions.create(messages=messages, **kwargs)
    second = _generate_bodies(sim)[-1]["contents"]
    assert second[1]["parts"][0]["functionCall"]["name"] == "_2fa_lookup"
    assert second[2]["parts"][0]["functionResponse"]["name"] == "_2fa_lookup"


def test_history_without_signatures_on_gemini3(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    final = client.chat.completions.create(model=THINKING_MODEL, tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_01", "type": "function",
             "function": {"name": "get_current_weather", "arguments": '{"location": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "cold"},
    ])
    assert "cold" in final.choices[0].message.content
    sent = _generate_bodies(sim)[-1]["contents"][1]["parts"][0]
    assert sent["thoughtSignature"] == "skip_thought_signature_validator"


def test_parallel_tool_calls(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    messages = [{"role": "user", "content": "PARALLEL please"}]
    both = client.chat.completions.create(model="gemini-2.5-flash", messages=messages,
                                          tools=[WEATHER_TOOL, lookup])
    calls = both.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_current_weather", "lookup"]
    assert len({c.id for c in calls}) == 2
    one = client.chat.completions.create(model="gemini-2.5-flash", messages=messages,
                                         tools=[WEATHER_TOOL, lookup], parallel_tool_calls=False)
    assert [c.function.name for c in one.choices[0].message.tool_calls] == [
        "get_current_weather"]
    body = _generate_bodies(sim)[-1]
    assert "parametersJsonSchema" in body["tools"][0]["functionDeclarations"][0]


def test_tool_choice_reaches_gemini(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    lookup = {"type": "function", "function": {"name": "lookup"}}
    forced = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}],
        tools=[WEATHER_TOOL, lookup], tool_choice={"type": "function",
                                                   "function": {"name": "lookup"}})
    assert forced.choices[0].message.tool_calls[0].function.name == "lookup"
    assert _generate_bodies(sim)[-1]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}}
    none = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}],
        tools=[WEATHER_TOOL], tool_choice="none")
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].finish_reason == "stop"


class Colour(enum.StrEnum):
    red = "red"
    green = "green"


class Pet(BaseModel):
    name: str
    colour: Colour
    nickname: str | None
    toys: list[str]


class Owner(BaseModel):
    name: str
    pet: Pet


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.0-flash"])
def test_structured_output_with_parse(gateway: Any, sim: Any, model: str) -> None:
    client = gateway.client()
    completion = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Invent an owner and a pet."}],
        response_format=Owner)
    owner = completion.choices[0].message.parsed
    assert isinstance(owner, Owner) and owner.pet.colour is Colour.red
    config = _generate_bodies(sim)[-1]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    if model == "gemini-2.5-flash":
        pet = config["responseJsonSchema"]["properties"]["pet"]  # $ref inlined
        assert pet["properties"]["colour"]["enum"] == ["red", "green"]
    else:
        assert config["responseSchema"]["properties"]["pet"]["properties"]["colour"]["enum"] == [
            "red", "green"]


def test_json_object_mode(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    completion = client.chat.completions.create(
        model="gemini-2.0-flash", messages=[{"role": "user", "content": "Say hi in JSON."}],
        response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    assert _generate_bodies(sim)[-1]["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_web_search_options_ground_the_answer(gateway: Any, sim: Any, stream: bool) -> None:
    body = {"model": "gemini-2.5-flash", "stream": stream, "web_search_options": {},
            "messages": [{"role": "user", "content": "Who won Euro 2024?"}]}
    resp = _raw(gateway, body)
    assert resp.status == 200, resp.body
    if stream:
        deltas = [c["choices"][0]["delta"] for c in resp.chunks() if c["choices"]]
        content = "".join(d.get("content") or "" for d in deltas)
        annotations = [a for d in deltas for a in d.get("annotations") or []]
    else:
        message = resp.json()["choices"][0]["message"]
        assert_valid(resp.json(), "CreateChatCompletionResponse")
        content, annotations = message["content"], message["annotations"]
    assert "\n\nSources:\n1. [example.com](https://vertexaisearch.cloud.google.com/" in content
    assert annotations and annotations[0]["type"] == "url_citation"
    citation = annotations[0]["url_citation"]
    assert citation["start_index"] == 0 and citation["end_index"] > 0
    assert citation["url"].startswith("https://vertexaisearch.cloud.google.com/")
    assert _generate_bodies(sim)[-1]["tools"] == [{"googleSearch": {}}]


def test_builtin_and_function_tools_mix_only_on_gemini3(gateway: Any, sim: Any) -> None:
    tools = [WEATHER_TOOL, {"type": "function", "function": {"name": "googleSearch"}}]
    messages = [{"role": "user", "content": "Weather where Euro 2024 was won?"}]
    refused = _raw(gateway, {"model": "gemini-2.5-flash", "messages": messages, "tools": tools})
    err = assert_openai_error(refused, 400, "invalid_request_error")
    assert "Gemini 3" in err["message"] and err["param"] == "tools"
    accepted = _raw(gateway, {"model": "gemini-3-pro-preview", "messages": messages,
                              "tools": tools})
    assert accepted.status == 200, accepted.body
    assert _generate_bodies(sim)[-1]["toolConfig"]["includeServerSideToolInvocations"] is True


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"messages": [{"role": "user", "content": "hi"},
                                   {"role": "tool", "tool_call_id": "call_zz", "content": "x"}]},
                     "messages[1].tool_call_id", id="unknown-tool-call-id"),
        pytest.param({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "get_current_weather", "arguments": "{oops"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "x"}]},
            "messages[1].tool_calls[0].function.arguments", id="bad-arguments"),
        pytest.param({"messages": [{"role": "user", "content": "hi"}],
                      "tools": [WEATHER_TOOL], "tool_choice": {
                          "type": "function", "function": {"name": "nope"}}},
                     "tool_choice", id="unknown-tool-choice"),
    ],
)
def test_bad_tool_requests_are_400(gateway: Any, sim: Any, body: dict[str, Any],
                                   param: str) -> None:
    resp = _raw(gateway, {"model": "gemini-2.5-flash", **body})
    err = assert_openai_error(resp, 400, "invalid_request_error")
    assert err["param"] == param
    assert _generate_bodies(sim) == []
