"""Acceptance of issue 5 (tools) as an outside user would check it: real clients (the openai SDK,
LangChain, raw HTTP) against the real gateway process.

Two upstreams: the project's simulator, and ``ScriptedGemini``, a second fake Gemini that answers
from a script the way Gemini 3 does and the simulator does not: a ``functionCall.id`` on every
call, the thought signature on the first call of a step, no candidate ``index``, stream events
of one part each with ``\\r\\n`` line endings, ``usageMetadata`` only on the last event, a
trailing empty text part carrying a signature, and unknown fields. Every request it receives is
checked with the simulator's Google rules (protobuf walk, roles, Gemini 3 signatures).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
import orjson
import pytest
from aiohttp import web
from pydantic import BaseModel, Field

from gemini_gateway.simulator import proto_walk, validation
from gemini_gateway.simulator.google_errors import GoogleError
from tests.fixtures.gateway import GatewayProcess, launch_gateway
from tests.integration.helpers import assert_openai_error, post
from tests.unit.openai_schema import assert_valid

GEMINI3 = "gemini-3-flash-preview"
WEATHER = {"type": "function", "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"]}}}
LOOKUP = {"type": "function", "function": {
    "name": "lookup", "description": "Look a word up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


# --- A second fake Gemini, driven by a script ------------------------------------------------


def signature(n: int) -> str:
    """A signature the Gemini 3 rules accept (the simulator's private prefix)."""
    return validation.make_signature(f"step-{n}".encode())


@dataclass
class Reply:
    """One scripted model answer: parts, in order."""

    parts: list[dict[str, Any]]
    finish: str = "STOP"


@dataclass
class ScriptedGemini:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    url: str = ""

    def script(self, *replies: Reply) -> None:
        self.replies[:] = list(replies)
        self.requests.clear()
        self.problems.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        body = await request.json()
        self.requests.append({"model": model, "action": action, "body": body})
        try:  # Google's own checks, as the simulator applies them
            normalised = proto_walk.normalise_request(body, "GenerateContentRequest", "v1beta",
                                                      strict=True)
            validation.check_generate_request(normalised, model)
        except GoogleError as err:
            self.problems.append(err.message)
            return web.json_response({"error": {"code": 400, "message": self.problems[-1],
                                                "status": "INVALID_ARGUMENT"}}, status=400)
        reply = self.replies.pop(0) if self.replies else Reply([{"text": "(script ended)"}])
        usage = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18}
        if action == "generateContent":
            return web.json_response({
                "candidates": [{"content": {"parts": reply.parts, "role": "model"},
                                "finishReason": reply.finish, "avgLogprobs": -0.1}],
                "usageMetadata": usage, "modelVersion": model, "responseId": "scripted",
                "modelStatus": {"modelStage": "PREVIEW"}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        events = [{"candidates": [{"content": {"role": "model", "parts": [part]}}],
                   "modelVersion": model} for part in reply.parts]
        events.append({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                       "finishReason": reply.finish}],
                       "usageMetadata": usage, "modelVersion": model, "responseId": "scripted"})
        for event in events:
            await resp.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
        await resp.write_eof()
        return resp


class _Thread(threading.Thread):
    def __init__(self, fake: ScriptedGemini) -> None:
        super().__init__(name="scripted-gemini", daemon=True)
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1beta/models/{target}", self.fake.handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.fake.url = f"http://127.0.0.1:{port}"
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=10)


@pytest.fixture(scope="module")
def scripted_upstream(tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[tuple[ScriptedGemini, GatewayProcess]]:
    fake = ScriptedGemini()
    thread = _Thread(fake)
    thread.start()
    assert thread.ready.wait(10)
    gw = launch_gateway(tmp_path_factory.mktemp("scripted"), fake.url)
    try:
        gw.license = gw.create_license("acceptance")
        yield fake, gw
    finally:
        gw.stop()
        thread.stop()


@pytest.fixture
def scripted(scripted_upstream: tuple[ScriptedGemini, GatewayProcess]
             ) -> tuple[ScriptedGemini, GatewayProcess]:
    fake, gw = scripted_upstream
    fake.script()
    return fake, gw


def call_part(name: str, args: dict[str, Any], call_id: str, sig: str | None = None
              ) -> dict[str, Any]:
    part: dict[str, Any] = {"functionCall": {"id": call_id, "name": name, "args": args}}
    if sig:
        part["thoughtSignature"] = sig
    return part


# --- Helpers for clients ----------------------------------------------------------------------


def collect_stream(chunks: list[Any]) -> tuple[str, list[dict[str, Any]], str | None]:
    """(content, tool calls assembled by index, finish_reason) from openai SDK chunks; checks
    that each call's id and name come once, on its first delta, and the index never moves."""
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        content += choice.delta.content or ""
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            if delta.index not in calls:
                assert delta.id and delta.function.name and delta.type == "function"
                calls[delta.index] = {"id": delta.id, "name": delta.function.name,
                                      "arguments": delta.function.arguments or ""}
            else:
                assert not delta.id and not delta.function.name
                calls[delta.index]["arguments"] += delta.function.arguments or ""
    assert sorted(calls) == list(range(len(calls)))  # indexes 0, 1, … in order
    return content, [calls[i] for i in sorted(calls)], finish


def ask(client: Any, stream: bool, **kwargs: Any) -> tuple[str | None, list[dict[str, Any]], str]:
    """One chat completion, streamed or not: (content, tool calls, finish_reason)."""
    if stream:
        content, calls, finish = collect_stream(list(
            client.chat.completions.create(stream=True, **kwargs)))
        return content, calls, finish or ""
    completion = client.chat.completions.create(**kwargs)
    assert_valid(completion.model_dump(mode="json", exclude_unset=True),
                 "CreateChatCompletionResponse")
    message = completion.choices[0].message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
             for c in message.tool_calls or []]
    return message.content, calls, completion.choices[0].finish_reason


def standard_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the standard fields, as a strict client echoes them."""
    return [{"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]


# --- Thought signatures and Gemini's call ids over real loops ---------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_gemini3_parallel_calls_keep_ids_and_signature(
        scripted: tuple[ScriptedGemini, GatewayProcess], stream: bool) -> None:
    fake, gw = scripted
    fake.script(
        Reply([{"text": "Let me check both."},
               call_part("get_current_weather", {"location": "Boston, MA"}, "fc-a1", signature(1)),
               call_part("lookup", {"q": "Boston"}, "fc-b2")]),
        Reply([{"text": "It is sunny in Boston.", "thoughtSignature": signature(2)}]),
    )
    client = gw.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Boston?"}]
    content, calls, finish = ask(client, stream, model=GEMINI3, messages=messages,
                                 tools=[WEATHER, LOOKUP])
    assert finish == "tool_calls"
    assert content == "Let me check both."
    assert [c["name"] for c in calls] == ["get_current_weather", "lookup"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"location": "Boston, MA"},
                                                            {"q": "Boston"}]
    assert len({c["id"] for c in calls}) == 2 and all(c["id"].startswith("call_") for c in calls)
    messages.append({"role": "assistant", "content": content,
                     "tool_calls": standard_tool_calls(calls)})
    # results in the other order: matched by id, not by position
    messages.append({"role": "tool", "tool_call_id": calls[1]["id"], "content": "a city"})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"],
                     "content": json.dumps({"sky": "sunny"})})
    content, calls, finish = ask(client, stream, model=GEMINI3, messages=messages,
                                 tools=[WEATHER, LOOKUP])
    assert (content, calls, finish) == ("It is sunny in Boston.", [], "stop")
    assert fake.problems == []
    sent = fake.requests[-1]["body"]["contents"]
    assert sent[1] == {"role": "model", "parts": [
        {"text": "Let me check both."},
        {"functionCall": {"name": "get_current_weather", "args": {"location": "Boston, MA"},
                          "id": "fc-a1"}, "thoughtSignature": signature(1)},
        {"functionCall": {"name": "lookup", "args": {"q": "Boston"}, "id": "fc-b2"}}]}
    assert sent[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "lookup", "response": {"content": "a city"}, "id": "fc-b2"}},
        {"functionResponse": {"name": "get_current_weather", "response": {"sky": "sunny"},
                              "id": "fc-a1"}}]}


def test_long_tool_loop_keeps_every_step_signed(
        scripted: tuple[ScriptedGemini, GatewayProcess]) -> None:
    """Eight sequential steps in one turn, streamed and not in turn, after an earlier turn:
    every model step goes back with its own signature and id, or Gemini 3 would refuse."""
    fake, gw = scripted
    steps = 8
    fake.script(*[Reply([call_part("lookup", {"q": f"w{n}"}, f"id-{n}", signature(n))])
                  for n in range(steps)], Reply([{"text": "Done."}]))
    client = gw.client()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Earlier question"},
        {"role": "assistant", "content": "Earlier answer"},
        {"role": "user", "content": "Look up eight words."}]
    for n in range(steps + 1):
        content, calls, finish = ask(client, n % 2 == 1, model=GEMINI3, messages=messages,
                                     tools=[LOOKUP], tool_choice="auto")
        assert fake.problems == [], fake.problems
        if n == steps:
            assert (content, finish) == ("Done.", "stop")
            break
        assert finish == "tool_calls" and len(calls) == 1
        messages.append({"role": "assistant", "content": None,
                         "tool_calls": standard_tool_calls(calls)})
        messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": f"r{n}"})
    contents = fake.requests[-1]["body"]["contents"]
    assert len(contents) == 3 + 2 * steps
    for n in range(steps):
        model_turn, result_turn = contents[3 + 2 * n], contents[4 + 2 * n]
        assert model_turn == {"role": "model", "parts": [
            {"functionCall": {"name": "lookup", "args": {"q": f"w{n}"}, "id": f"id-{n}"},
             "thoughtSignature": signature(n)}]}
        assert result_turn == {"role": "user", "parts": [{"functionResponse": {
            "name": "lookup", "response": {"content": f"r{n}"}, "id": f"id-{n}"}}]}
    assert fake.requests[-1]["body"]["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_google_extra_content_shape_is_accepted(
        scripted: tuple[ScriptedGemini, GatewayProcess]) -> None:
    """Google's own OpenAI shape: the signature in extra_content, the id from elsewhere."""
    fake, gw = scripted
    fake.script(Reply([{"text": "ok"}]))
    client = gw.client()
    client.chat.completions.create(model=GEMINI3, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "function-call-123", "type": "function",
            "function": {"name": "get_current_weather", "arguments": '{"location": "Rome"}'},
            "extra_content": {"google": {"thought_signature": signature(7)}}}]},
        {"role": "tool", "tool_call_id": "function-call-123", "content": "warm"}])
    assert fake.problems == []
    part = fake.requests[-1]["body"]["contents"][1]["parts"][0]
    assert part == {"functionCall": {"name": "get_current_weather", "args": {"location": "Rome"}},
                    "thoughtSignature": signature(7)}


def test_streamed_text_answer_with_trailing_signature_part(
        scripted: tuple[ScriptedGemini, GatewayProcess]) -> None:
    fake, gw = scripted
    fake.script(Reply([{"text": "Hel"}, {"text": "lo", "thoughtSignature": signature(3)},
                       {"text": "", "thoughtSignature": signature(4)}]))
    resp = post(gw.base_url + "/chat/completions",
                {"model": GEMINI3, "stream": True, "tools": [WEATHER],
                 "stream_options": {"include_usage": True},
                 "messages": [{"role": "user", "content": "hi"}]},
                {"Authorization": gw.license})
    assert resp.status == 200, resp.body
    assert b"\r\n" not in resp.body
    chunks = resp.chunks()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    assert "".join(d["delta"].get("content") or "" for d in deltas) == "Hello"
    assert [d["finish_reason"] for d in deltas][-1] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 18


def test_raw_stream_of_tool_calls_is_openai_shaped(
        scripted: tuple[ScriptedGemini, GatewayProcess]) -> None:
    """Raw SSE as curl sees it: every chunk valid, one delta per call with a stable index, odd
    Gemini ids (underscores, non-ASCII) and a call without arguments survive the round trip."""
    fake, gw = scripted
    odd_id = "fc_1__ts_ø"
    fake.script(Reply([call_part("lookup", {"q": "a"}, odd_id, signature(5)),
                       {"functionCall": {"name": "get_time"}}]), Reply([{"text": "ok"}]))
    tools = [LOOKUP, {"type": "function", "function": {"name": "get_time"}}]
    request = {"model": GEMINI3, "stream": True, "tools": tools,
               "messages": [{"role": "user", "content": "go"}]}
    resp = post(gw.base_url + "/chat/completions", request, {"Authorization": gw.license})
    assert resp.status == 200, resp.body
    chunks = resp.chunks()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"] == chunks[0]["id"]
    deltas = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [(d["index"], d["function"]["name"]) for d in deltas] == [(0, "lookup"),
                                                                      (1, "get_time")]
    assert deltas[1]["function"]["arguments"] == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert resp.sse_events()[-1] == "[DONE]"
    history = [*request["messages"], {"role": "assistant", "content": None, "tool_calls": [
        {"id": d["id"], "type": "function", "function": d["function"]} for d in deltas]}]
    history += [{"role": "tool", "tool_call_id": d["id"], "content": "x"} for d in deltas]
    resp = post(gw.base_url + "/chat/completions", {**request, "stream": False,
                                                     "messages": history},
                {"Authorization": gw.license})
    assert resp.status == 200, resp.body
    assert fake.problems == []
    parts = fake.requests[-1]["body"]["contents"][1]["parts"]
    assert parts == [{"functionCall": {"name": "lookup", "args": {"q": "a"}, "id": odd_id},
                      "thoughtSignature": signature(5)},
                     {"functionCall": {"name": "get_time", "args": {}}}]
    responses = fake.requests[-1]["body"]["contents"][2]["parts"]
    assert [p["functionResponse"].get("id") for p in responses] == [odd_id, None]


# --- LangChain: bind_tools, invoke, ToolMessage, invoke again ---------------------------------


def _langchain_model(gw: GatewayProcess, stream: bool) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=GEMINI3, base_url=gw.base_url, api_key=gw.license, max_retries=0,
                      streaming=stream)


def _langchain_turn(model: Any, messages: list[Any], stream: bool) -> Any:
    if not stream:
        return model.invoke(messages)
    message = None
    for chunk in model.stream(messages):
        message = chunk if message is None else message + chunk
    return message


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_agent_loop_on_scripted_gemini3(
        scripted: tuple[ScriptedGemini, GatewayProcess], stream: bool) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_current_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
                            ) -> str:
        """Get the current weather in a given location."""
        return f"22 {unit} in {location}"

    @tool
    def lookup(q: str) -> dict[str, Any]:
        """Look a word up."""
        return {"q": q, "found": True}

    fake, gw = scripted
    fake.script(
        Reply([call_part("get_current_weather", {"location": "Oslo"}, "c-1", signature(1)),
               call_part("lookup", {"q": "Oslo"}, "c-2")]),
        Reply([call_part("lookup", {"q": "fjord"}, "c-3", signature(2))]),
        Reply([{"text": "Cold and a fjord.", "thoughtSignature": signature(3)}]))
    tools = {"get_current_weather": get_current_weather, "lookup": lookup}
    model = _langchain_model(gw, stream).bind_tools(list(tools.values()))
    messages: list[Any] = [HumanMessage("Weather in Oslo, and what is a fjord?")]
    for _ in range(5):
        ai = _langchain_turn(model, messages, stream)
        messages.append(ai)
        if not ai.tool_calls:
            break
        for call in ai.tool_calls:
            result = tools[call["name"]].invoke(call["args"])
            messages.append(ToolMessage(json.dumps(result) if isinstance(result, dict)
                                        else result, tool_call_id=call["id"]))
    assert messages[-1].content == "Cold and a fjord."
    assert fake.problems == []
    contents = fake.requests[-1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[1]["parts"][0]["thoughtSignature"] == signature(1)
    assert contents[1]["parts"][0]["functionCall"]["id"] == "c-1"
    assert "thoughtSignature" not in contents[1]["parts"][1]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_current_weather",
                              "response": {"content": "22 celsius in Oslo"}, "id": "c-1"}},
        {"functionResponse": {"name": "lookup", "response": {"q": "Oslo", "found": True},
                              "id": "c-2"}}]
    assert contents[3]["parts"][0]["thoughtSignature"] == signature(2)
    declarations = fake.requests[0]["body"]["tools"][0]["functionDeclarations"]
    weather = declarations[0]["parametersJsonSchema"]
    assert weather["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert weather["required"] == ["location"]


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_agent_loop_on_simulator(gateway: GatewayProcess, sim: Any,
                                           stream: bool) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_current_weather(location: str) -> str:
        """Get the current weather in a given location."""
        return f"22 celsius in {location}"

    model = _langchain_model(gateway, stream).bind_tools([get_current_weather])
    messages: list[Any] = [HumanMessage("What is the weather like in Boston today?")]
    ai = _langchain_turn(model, messages, stream)
    assert [c["name"] for c in ai.tool_calls] == ["get_current_weather"]
    messages.append(ai)
    messages.append(ToolMessage(get_current_weather.invoke(ai.tool_calls[0]["args"]),
                                tool_call_id=ai.tool_calls[0]["id"]))
    final = _langchain_turn(model, messages, stream)
    assert "The function get_current_weather returned" in final.content
    body = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"]
    signed = body["contents"][1]["parts"][0]["thoughtSignature"]
    assert base64.b64decode(signed).startswith(b"simsig:")  # the simulator's own came back


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output(gateway: GatewayProcess, sim: Any, method: str) -> None:
    class Verdict(BaseModel):
        text: str
        score: float

    verdict = _langchain_model(gateway, False).with_structured_output(Verdict, method=method) \
        .invoke("Judge this sentence.")
    assert verdict == Verdict(text="sample text", score=1.5)


def test_foreign_ids_carry_no_gemini_id() -> None:
    """Ids the gateway did not make (or mangled ones) add no ``id`` to what Gemini gets."""
    from gemini_gateway.translate.toolcalls import gemini_id_from_tool_call_id, new_tool_call_id

    assert gemini_id_from_tool_call_id(new_tool_call_id("c2ln", "fc_1__ts_ø")) == "fc_1__ts_ø"
    for foreign in ("call_abc", "toolu_01__id_zz", "x__id_", "x__id_ff"):
        assert gemini_id_from_tool_call_id(foreign) is None


# --- Real tool schemas ------------------------------------------------------------------------


class Priority(enum.Enum):
    low = 1
    high = 2


class Address(BaseModel):
    street: str
    city: str = Field(description="City name")
    country: Literal["NO", "SE", "DK"] = "NO"


class Person(BaseModel):
    """A person to add to the address book."""

    name: str = Field(min_length=1, max_length=80)
    age: int | None = Field(default=None, ge=0, lt=150)
    priority: Priority = Priority.low
    home: Address
    others: list[Address] = []
    tags: dict[str, str] = {}


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []


REAL_SCHEMAS: dict[str, dict[str, Any]] = {
    # MCP filesystem server, edit_file (zod-to-json-schema output)
    "edit_file": {"type": "object", "properties": {
        "path": {"type": "string"},
        "edits": {"type": "array", "items": {"type": "object", "properties": {
            "oldText": {"type": "string", "description": "Text to search for - must match exactly"},
            "newText": {"type": "string", "description": "Text to replace with"}},
            "required": ["oldText", "newText"], "additionalProperties": False}},
        "dryRun": {"type": "boolean", "default": False,
                   "description": "Preview changes using git-style diff format"}},
        "required": ["path", "edits"], "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#"},
    # MCP GitHub server, create_issue
    "create_issue": {"type": "object", "properties": {
        "owner": {"type": "string"}, "repo": {"type": "string"}, "title": {"type": "string"},
        "body": {"type": "string"},
        "assignees": {"type": "array", "items": {"type": "string"}},
        "milestone": {"type": "number"},
        "labels": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "required": ["owner", "repo", "title"], "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#"},
    # MCP fetch server (pydantic), with exclusive bounds and a uri format
    "fetch": {"type": "object", "title": "Fetch", "description": "Parameters for fetching a URL.",
              "properties": {
                  "url": {"type": "string", "format": "uri", "minLength": 1, "title": "Url",
                          "description": "URL to fetch"},
                  "max_length": {"type": "integer", "default": 5000, "exclusiveMaximum": 1000000,
                                 "exclusiveMinimum": 0, "title": "Max Length"},
                  "start_index": {"type": "integer", "default": 0, "minimum": 0},
                  "raw": {"type": "boolean", "default": False}},
              "required": ["url"]},
    # OpenAI docs, strict function calling: every field required, nullable via a type list
    "get_weather_strict": {"type": "object", "properties": {
        "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
        "units": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None],
                  "description": "Units the temperature will be returned in."}},
        "required": ["location", "units"], "additionalProperties": False},
    # OpenAI docs, a UI generator with a recursive $ref to the root
    "generate_ui": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["div", "button", "header", "section", "field",
                                           "form"]},
        "label": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#"}},
        "attributes": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "value": {"type": "string"}},
            "required": ["name", "value"], "additionalProperties": False}}},
        "required": ["type", "label", "children", "attributes"], "additionalProperties": False},
    # an MCP tool from zod-to-json-schema, reusing a definition by a JSON pointer
    "scrape": {"type": "object", "properties": {
        "urls": {"type": "array", "items": {"type": "string"}},
        "headers": {"type": "object", "properties": {"name": {"type": "string"}},
                    "required": ["name"]},
        "actions": {"type": "array", "items": {"$ref": "#/properties/headers"}}},
        "required": ["urls", "actions"]},
    # pydantic: nested models, enums (int and Literal), Optional, dict, constraints, $defs
    "add_person": Person.model_json_schema(),
    # pydantic: a recursive model
    "add_tree": TreeNode.model_json_schema(),
}
# Recursion: Gemini's Schema object (before 2.5) cannot express it, so the gateway cuts it after
# one level; in JSON Schema it stays a $ref, which the simulator does not follow when it makes up
# arguments. Either way the simulator's call need not conform deep down.
RECURSIVE = {"generate_ui", "add_tree"}


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.5-flash", "gemini-3-pro-preview"])
def test_real_tool_schemas_are_accepted_and_calls_conform(gateway: GatewayProcess, sim: Any,
                                                          model: str) -> None:
    """Each real schema passes Google's parser (the simulator in strict mode) and the call the
    model makes from the converted declaration still validates against the original schema."""
    client = gateway.client()
    for name, schema in REAL_SCHEMAS.items():
        tool = {"type": "function", "function": {"name": name, "parameters": schema}}
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "go"}], tools=[tool],
            tool_choice="required")
        [call] = completion.choices[0].message.tool_calls
        assert call.function.name == name
        if name not in RECURSIVE:
            jsonschema.validate(json.loads(call.function.arguments), schema)
    declarations = [r["body"]["tools"][0]["functionDeclarations"][0]
                    for r in sim.requests() if "enerateContent" in r["path"]]
    by_name = {d["name"]: d for d in declarations}
    if model == "gemini-2.0-flash":
        person = by_name["add_person"]["parameters"]
        assert person["properties"]["home"]["properties"]["country"]["enum"] == ["NO", "SE", "DK"]
        assert person["properties"]["age"]["nullable"] is True
        assert "1, 2" in person["properties"]["priority"]["description"]  # int enum kept as text
        assert "additionalProperties" not in json.dumps(by_name["edit_file"]["parameters"])
        assert by_name["get_weather_strict"]["parameters"]["properties"]["units"] == {
            "type": "STRING", "enum": ["celsius", "fahrenheit"], "format": "enum",
            "nullable": True, "description": "Units the temperature will be returned in."}
    else:
        person = by_name["add_person"]["parametersJsonSchema"]
        assert "$defs" not in person and "$ref" not in json.dumps(person)  # inlined
        assert person["properties"]["home"]["properties"]["country"]["enum"] == ["NO", "SE", "DK"]
        assert "$schema" not in by_name["edit_file"]["parametersJsonSchema"]
        tree = by_name["add_tree"]["parametersJsonSchema"]
        assert tree["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
        assert "TreeNode" in tree["$defs"]  # recursion kept, with what it points to
        scrape = by_name["scrape"]["parametersJsonSchema"]["properties"]["actions"]["items"]
        assert scrape == REAL_SCHEMAS["scrape"]["properties"]["headers"]  # pointer inlined
        ui = by_name["generate_ui"]["parametersJsonSchema"]
        assert ui["properties"]["children"]["items"] == {"$ref": "#"}


@pytest.mark.parametrize("parameters", [None, {}, {"type": "object", "properties": {}}],
                         ids=["absent", "empty", "empty-object"])
@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.5-flash"])
def test_tool_without_parameters(gateway: GatewayProcess, sim: Any, parameters: Any,
                                 model: str) -> None:
    function: dict[str, Any] = {"name": "get_time", "description": "Current time"}
    if parameters is not None:
        function["parameters"] = parameters
    resp = post(gateway.base_url + "/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": "time?"}],
                 "tools": [{"type": "function", "function": function}]},
                {"Authorization": gateway.license})
    assert resp.status == 200, resp.body
    assert_valid(resp.json(), "CreateChatCompletionResponse")
    [call] = resp.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    body = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"]
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_time", "description": "Current time"}]}]


# --- tool_choice -------------------------------------------------------------------------------


@pytest.mark.parametrize(("choice", "config", "called"), [
    ("none", {"mode": "NONE"}, []),
    ("auto", {"mode": "AUTO"}, ["get_current_weather"]),
    ("required", {"mode": "ANY"}, ["get_current_weather"]),
    ({"type": "function", "function": {"name": "lookup"}},
     {"mode": "ANY", "allowedFunctionNames": ["lookup"]}, ["lookup"]),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "lookup"}}]}},
     {"mode": "ANY", "allowedFunctionNames": ["lookup"]}, ["lookup"]),
], ids=["none", "auto", "required", "named", "allowed_tools"])
def test_tool_choice(gateway: GatewayProcess, sim: Any, choice: Any, config: dict[str, Any],
                     called: list[str]) -> None:
    resp = post(gateway.base_url + "/chat/completions",
                {"model": "gemini-2.5-flash", "tool_choice": choice, "tools": [WEATHER, LOOKUP],
                 "messages": [{"role": "user", "content": "hi"}]},
                {"Authorization": gateway.license})
    assert resp.status == 200, resp.body
    choice0 = resp.json()["choices"][0]
    assert [c["function"]["name"] for c in choice0["message"].get("tool_calls") or []] == called
    assert choice0["finish_reason"] == ("tool_calls" if called else "stop")
    body = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_legacy_functions_and_function_call(gateway: GatewayProcess, sim: Any) -> None:
    """The deprecated ``functions``/``function_call`` fields and a ``function`` role result."""
    client = gateway.client()
    completion = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}],
        functions=[LOOKUP["function"]], function_call={"name": "lookup"})
    assert completion.choices[0].message.tool_calls[0].function.name == "lookup"
    final = client.chat.completions.create(model="gemini-2.5-flash", messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "lookup", "arguments": '{"q": "x"}'}},
        {"role": "function", "name": "lookup", "content": "42"}], functions=[LOOKUP["function"]])
    assert final.choices[0].message.content.startswith('The function lookup returned {"result":42}')


# --- Structured output -------------------------------------------------------------------------


class Step(BaseModel):
    explanation: str
    output: str


class MathReasoning(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float | None


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.5-flash", GEMINI3])
@pytest.mark.parametrize("api", ["beta", "stable"])
def test_parse_with_pydantic(gateway: GatewayProcess, sim: Any, model: str, api: str) -> None:
    """OpenAI's structured-output example, through both ``parse`` entry points."""
    client = gateway.client()
    completions = client.beta.chat.completions if api == "beta" else client.chat.completions
    completion = completions.parse(
        model=model, response_format=MathReasoning,
        messages=[{"role": "system", "content": "You are a helpful math tutor."},
                  {"role": "user", "content": "how can I solve 8x + 7 = -23"}])
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, MathReasoning) and isinstance(parsed.steps[0], Step)
    config = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"][
        "generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config.get("responseJsonSchema") or config["responseSchema"]
    assert "steps" in schema["properties"] and "$ref" not in json.dumps(schema)


def test_parse_with_strict_function_tool(gateway: GatewayProcess, sim: Any) -> None:
    import openai

    class GetWeather(BaseModel):
        city: str
        unit: Literal["c", "f"]

    client = gateway.client()
    completion = client.chat.completions.parse(
        model=GEMINI3, messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[openai.pydantic_function_tool(GetWeather)])
    [call] = completion.choices[0].message.tool_calls
    assert call.function.parsed_arguments == GetWeather(city="sample city", unit="c")


def test_sdk_stream_helper_announces_tool_calls_and_parsed_output(gateway: GatewayProcess,
                                                                   sim: Any) -> None:
    """``client.chat.completions.stream``: the ``arguments.done`` event with parsed arguments
    (the SDK sends it only when the finish_reason follows the call), and a parsed answer."""
    import openai

    class GetWeather(BaseModel):
        city: str
        unit: Literal["c", "f"]

    client = gateway.client()
    with client.chat.completions.stream(
            model=GEMINI3, messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[openai.pydantic_function_tool(GetWeather)]) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [e.parsed_arguments for e in done] == [GetWeather(city="sample city", unit="c")]
    assert final.choices[0].finish_reason == "tool_calls"
    with client.chat.completions.stream(
            model=GEMINI3, messages=[{"role": "user", "content": "how can I solve 8x + 7 = -23"}],
            response_format=MathReasoning) as stream:
        content_done = [e for e in stream if e.type == "content.done"]
    assert len(content_done) == 1 and isinstance(content_done[0].parsed, MathReasoning)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_json_object_mode(gateway: GatewayProcess, sim: Any, stream: bool) -> None:
    content, calls, finish = ask(gateway.client(), stream, model="gemini-2.5-flash",
                                 response_format={"type": "json_object"},
                                 messages=[{"role": "user", "content": "Reply in JSON."}])
    assert isinstance(json.loads(content or ""), dict) and finish == "stop" and not calls


# --- Built-in tools ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_code_execution_blocks(gateway: GatewayProcess, sim: Any, stream: bool) -> None:
    content, calls, finish = ask(
        gateway.client(), stream, model="gemini-2.5-flash",
        tools=[{"type": "function", "function": {"name": "codeExecution"}}],
        messages=[{"role": "user", "content": "What is the sum of the first 50 prime numbers?"}])
    assert not calls and finish == "stop"
    assert content is not None
    code = content.index("```python\n")
    output = content.index("```output\n")
    assert code < output < content.index("The result is")


@pytest.mark.parametrize("tool_name", ["googleSearch", "google_search"])
def test_google_search_function_tool_gives_annotations(gateway: GatewayProcess, sim: Any,
                                                       tool_name: str) -> None:
    resp = post(gateway.base_url + "/chat/completions",
                {"model": "gemini-2.5-flash",
                 "tools": [{"type": "function", "function": {"name": tool_name}}],
                 "messages": [{"role": "user", "content": "Who won Euro 2024?"}]},
                {"Authorization": gateway.license})
    assert resp.status == 200, resp.body
    assert_valid(resp.json(), "CreateChatCompletionResponse")
    message = resp.json()["choices"][0]["message"]
    assert "\n\nSources:\n1. [example.com](" in message["content"]
    for annotation in message["annotations"]:
        cited = annotation["url_citation"]
        assert annotation["type"] == "url_citation"
        assert message["content"][cited["start_index"]:cited["end_index"]].startswith("You said")
    body = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"]
    assert body["tools"] == [{"googleSearch": {}}]


def test_url_context_and_search_together(gateway: GatewayProcess, sim: Any) -> None:
    resp = post(gateway.base_url + "/chat/completions",
                {"model": "gemini-2.5-flash", "web_search_options": {"search_context_size": "low"},
                 "tools": [{"type": "function", "function": {"name": "urlContext"}}],
                 "messages": [{"role": "user", "content": "Summarise https://example.com"}]},
                {"Authorization": gateway.license})
    assert resp.status == 200, resp.body
    body = [r for r in sim.requests() if "enerateContent" in r["path"]][-1]["body"]
    assert body["tools"] == [{"urlContext": {}}, {"googleSearch": {}}]
    assert "toolConfig" not in body


def test_builtin_with_functions_before_gemini3_is_a_clear_400(gateway: GatewayProcess,
                                                              sim: Any) -> None:
    resp = post(gateway.base_url + "/chat/completions",
                {"model": "gemini-2.0-flash", "tools": [WEATHER, {
                    "type": "function", "function": {"name": "codeExecution"}}],
                 "messages": [{"role": "user", "content": "hi"}]},
                {"Authorization": gateway.license})
    err = assert_openai_error(resp, 400, "invalid_request_error")
    assert "codeExecution" in err["message"] and "Gemini 3" in err["message"]
    assert [r for r in sim.requests() if "enerateContent" in r["path"]] == []

