"""Acceptance of the core (issue 2) as an outside user sees it: real clients, real processes.

Two upstreams: our simulator (``gateway``/``sim``), and ``ScriptedGemini``, a second fake Gemini
that answers exactly the bytes a test hands it. It stands for Gemini servers that are not ours:
other field orders, ``\\n`` line ends, usage only at the end, no ``index``, empty text parts,
unknown fields, a last event without its blank line.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import urllib3
from aiohttp import web

from tests.fixtures.gateway import GatewayProcess, launch_gateway
from tests.integration.helpers import RawResponse, assert_openai_error, get, post
from tests.integration.test_tools import WEATHER_TOOL  # the product page's tool, verbatim
from tests.unit.openai_schema import assert_valid

_pool = urllib3.PoolManager(retries=False)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
Reply = tuple[int, str, list[bytes]]  # status, content type, body pieces written one by one


class ScriptedGemini:
    """A fake Gemini on loopback that answers each generate call with the next scripted reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self.pause = 0.01  # seconds between the pieces of a reply
        self.cut_by_gateway = threading.Event()  # the gateway hung up while we were writing
        self.silent_replies = 0  # this many next replies wait 2 s before their headers
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append({
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": json.loads(raw) if raw else None,
        })
        if request.method == "GET":
            return web.json_response({"models": [{"name": "models/gemini-scripted-1"}]})
        if self.replies:
            status, ctype, pieces = self.replies.pop(0)
        else:
            status, ctype, pieces = 500, "application/json", [_google_error(500, "INTERNAL")]
        if self.silent_replies > 0:
            self.silent_replies -= 1
            await asyncio.sleep(2)
        resp = web.StreamResponse(status=status, headers={"Content-Type": ctype})
        await resp.prepare(request)
        try:
            for piece in pieces:
                await resp.write(piece)
                await asyncio.sleep(self.pause)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.cut_by_gateway.set()
            raise
        return resp

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def json(self, body: dict[str, Any], status: int = 200) -> None:
        ctype = "application/json; charset=UTF-8"
        self.replies.append((status, ctype, [json.dumps(body).encode()]))

    def sse(self, *events: dict[str, Any], line_end: bytes = b"\r\n") -> None:
        pieces = [b"data: " + json.dumps(e).encode() + line_end * 2 for e in events]
        self.replies.append((200, "text/event-stream", pieces))

    def error(self, code: int, status: str, details: list[dict[str, Any]] | None = None) -> None:
        self.replies.append((code, "application/json", [_google_error(code, status, details)]))

    def generate_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]


def _google_error(code: int, status: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": f"scripted {status}", "status": status}
    if details:
        error["details"] = details
    return json.dumps({"error": error}).encode()


def _retry_info(delay: str) -> list[dict[str, Any]]:
    return [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]


def _answer(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": list(parts), "role": "model"},
                            "finishReason": finish}], **extra}


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedGemini]:
    server = ScriptedGemini()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scripted_gateway(
    scripted: ScriptedGemini, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """One gateway in front of the scripted upstream, for tests that leave every key healthy."""
    gw = launch_gateway(tmp_path_factory.mktemp("scripted"), scripted.url)
    gw.license = gw.create_license("scripted")
    yield gw
    gw.stop()


@pytest.fixture
def fresh_gateway(
    scripted: ScriptedGemini, tmp_path: Path
) -> Iterator[Callable[..., GatewayProcess]]:
    """A new gateway per test, for tests that cool down or disable keys."""
    started: list[GatewayProcess] = []

    def start(**env: str) -> GatewayProcess:
        gw = launch_gateway(tmp_path, scripted.url, env)
        gw.license = gw.create_license("fresh")
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop(signal.SIGKILL)


@pytest.fixture
def script(scripted: ScriptedGemini) -> ScriptedGemini:
    scripted.replies.clear()
    scripted.requests.clear()
    scripted.pause = 0.01
    scripted.cut_by_gateway.clear()
    scripted.silent_replies = 0
    return scripted


PLAIN = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]}


def _chat(gw: GatewayProcess, body: dict[str, Any], **headers: str) -> RawResponse:
    return post(gw.base_url + "/chat/completions", body, {"Authorization": gw.license, **headers})


def _stream_checks(resp: RawResponse, model: str) -> list[dict[str, Any]]:
    """What every streamed answer must satisfy; returns the chunks."""
    assert resp.status == 200, resp.body[:300]
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.sse_events()[-1] == "[DONE]"
    chunks = resp.chunks()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert chunk["model"] == model
    assert len({c["id"] for c in chunks}) == 1
    assert len({c["created"] for c in chunks}) == 1
    with_choices = [c for c in chunks if c["choices"]]
    assert with_choices[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in with_choices[1:])
    assert with_choices[-1]["choices"][0]["finish_reason"] is not None
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])
    return chunks


def _content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# --- the product page, verbatim -----------------------------------------------------------------

PAGE_EXAMPLES = {
    "basic": {"messages": [{"role": "user", "content": "What model are you?"}],
              "model": "gemini-2.0-flash", "stream": True},
    "function-calling": {
        "messages": [{"role": "user", "content": "What is the weather like in Boston today?"}],
        "tools": [WEATHER_TOOL], "model": "gemini-2.0-flash", "stream": True},
    "code-execution": {
        "messages": [{"role": "user", "content": "What is the sum of the first 50 prime numbers? "
                      "Generate and run code for the calculation, and make sure you get all 50."}],
        "tools": [{"type": "function", "function": {"name": "codeExecution"}}],
        "model": "gemini-2.0-flash", "stream": True},
}


@pytest.mark.parametrize("name", list(PAGE_EXAMPLES))
def test_product_page_text_examples_verbatim(gateway: Any, sim: Any, name: str) -> None:
    resp = post(gateway.base_url + "/chat/completions", PAGE_EXAMPLES[name],
                {"Content-Type": "application/json", "Authorization": gateway.license})
    chunks = _stream_checks(resp, "gemini-2.0-flash")
    sent = sim.requests()[-1]
    assert sent["path"].endswith("gemini-2.0-flash:streamGenerateContent")
    assert sent["query"].get("alt") == "sse"
    if name == "function-calling":
        calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get(
            "tool_calls") or []]
        assert calls and calls[0]["function"]["name"] == "get_current_weather"
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    elif name == "code-execution":
        assert sent["body"]["tools"] == [{"codeExecution": {}}]
        assert _content(chunks)
    else:
        assert "What model are you?" in _content(chunks)


# --- the openai SDK, sync and async, and LangChain ----------------------------------------------

def test_sdk_with_raw_response_has_headers_and_parses(gateway: Any) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(**PLAIN)
    assert raw.status_code == 200
    assert raw.headers["x-request-id"]
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert isinstance(completion.created, int) and completion.created > 1_600_000_000


def test_sdk_stream_helper_final_completion_with_usage(gateway: Any) -> None:
    with gateway.client().chat.completions.stream(
        model="gemini-2.5-flash-thinking", messages=[{"role": "user", "content": "hi there"}],
        stream_options={"include_usage": True},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.delta" in kinds and "content.done" in kinds
    assert "hi there" in final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.completion_tokens_details.reasoning_tokens > 0
    assert final.usage.total_tokens >= final.usage.completion_tokens


def test_sdk_parse_plain_text(gateway: Any) -> None:
    client = gateway.client()
    for parse in (client.beta.chat.completions.parse, client.chat.completions.parse):
        result = parse(**PLAIN)
        message = result.choices[0].message
        assert message.parsed is None
        assert '"hi"' in message.content


def test_sdk_stream_usage_chunk_has_no_choices(gateway: Any) -> None:
    chunks = list(gateway.client().chat.completions.create(
        **PLAIN, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


async def test_async_sdk_create_stream_helper_raw_and_errors(gateway: Any) -> None:
    client = gateway.async_client()
    completion = await client.chat.completions.create(**PLAIN)
    assert completion.choices[0].message.role == "assistant"
    text = ""
    async for chunk in await client.chat.completions.create(**PLAIN, stream=True):
        text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert text == completion.choices[0].message.content
    async with client.chat.completions.stream(**PLAIN) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == text
    raw = await client.chat.completions.with_raw_response.create(**PLAIN)
    assert raw.status_code == 200 and raw.headers["x-request-id"]
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="gemini-2.0-flash", messages=[])
    assert bad.value.body["param"] == "messages"
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=gateway.base_url, api_key="not-a-license",
                                 max_retries=0).chat.completions.create(**PLAIN)
    models = [m.id async for m in client.models.list()]
    assert "gemini-2.5-pro-thinking" in models


def test_langchain_chat_openai_invoke_and_stream(gateway: Any) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(
        model="gemini-2.5-flash-thinking", base_url=gateway.base_url, api_key=gateway.license,
        max_retries=0, stream_usage=True,
    )
    message = llm.invoke("hello there")
    assert "hello there" in message.content
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata["output_token_details"]["reasoning"] > 0
    streamed = "".join(str(chunk.content) for chunk in llm.stream("hello there"))
    assert streamed == message.content


# --- bad input: every known parameter with a wrong type is a 400 naming it ----------------------

@pytest.mark.parametrize(("extra", "param"), [
    pytest.param({"temperature": "hot"}, "temperature", id="temperature"),
    pytest.param({"top_p": "x"}, "top_p", id="top_p"),
    pytest.param({"top_k": "x"}, "top_k", id="top_k"),
    pytest.param({"max_tokens": "10"}, "max_tokens", id="max_tokens"),
    pytest.param({"max_completion_tokens": 1.5}, "max_completion_tokens", id="max_completion"),
    pytest.param({"stop": 5}, "stop", id="stop-type"),
    pytest.param({"stop": ["a", "b", "c", "d", "e", "f"]}, "stop", id="stop-six"),
    pytest.param({"n": "2"}, "n", id="n"),
    pytest.param({"presence_penalty": "x"}, "presence_penalty", id="presence_penalty"),
    pytest.param({"frequency_penalty": []}, "frequency_penalty", id="frequency_penalty"),
    pytest.param({"seed": 1.5}, "seed", id="seed"),
    pytest.param({"logprobs": "yes"}, "logprobs", id="logprobs"),
    pytest.param({"logprobs": True, "top_logprobs": "3"}, "top_logprobs", id="top_logprobs"),
    pytest.param({"reasoning_effort": "extreme"}, "reasoning_effort", id="reasoning_effort"),
    pytest.param({"stream": "yes"}, "stream", id="stream"),
    pytest.param({"stream": True, "stream_options": "x"}, "stream_options", id="stream_options"),
    pytest.param({"user": 5}, "user", id="user"),
    pytest.param({"store": "x"}, "store", id="store"),
    pytest.param({"metadata": "x"}, "metadata", id="metadata"),
    pytest.param({"logit_bias": "x"}, "logit_bias", id="logit_bias"),
    pytest.param({"service_tier": 5}, "service_tier", id="service_tier"),
    pytest.param({"parallel_tool_calls": "x"}, "parallel_tool_calls", id="parallel_tool_calls"),
    pytest.param({"tools": "x"}, "tools", id="tools"),
    pytest.param({"tool_choice": 5}, "tool_choice", id="tool_choice"),
    pytest.param({"response_format": "json"}, "response_format", id="response_format"),
    pytest.param({"model": 5}, "model", id="model-type"),
    pytest.param({"messages": "hi"}, "messages", id="messages-type"),
    pytest.param({"messages": []}, "messages", id="messages-empty"),
    pytest.param({"messages": [{"role": "system", "content": "x"}]}, "messages",
                 id="system-only"),
    pytest.param({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role",
                 id="bad-role"),
])
def test_bad_parameters_are_400_naming_the_field(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, extra: dict[str, Any], param: str
) -> None:
    err = assert_openai_error(_chat(scripted_gateway, {**PLAIN, **extra}), 400,
                              "invalid_request_error")
    assert err["param"] == param, err
    assert script.generate_calls() == []  # refused by us, never sent upstream


def test_unknown_parameters_and_nulls_are_ignored_and_nothing_invented(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.json(_answer({"text": "ok"}))
    body = {**PLAIN, "user": "u1", "store": False, "metadata": {"a": "b"}, "service_tier": "auto",
            "logit_bias": {"50256": -100}, "prompt_cache_key": "k", "safety_identifier": "s",
            "some_future_option": {"x": 1}, "temperature": None, "top_p": None, "stop": None,
            "max_tokens": None, "n": None, "seed": None, "tools": None, "stream": None}
    resp = _chat(scripted_gateway, body)
    assert resp.status == 200, resp.body
    sent = script.generate_calls()[0]["body"]
    assert "generationConfig" not in sent  # no defaults the client did not ask for
    assert set(sent) == {"contents", "safetySettings"}
    assert {s["threshold"] for s in sent["safetySettings"]} == {"OFF"}
    assert len(sent["safetySettings"]) == 5


def test_bad_body_and_method(scripted_gateway: GatewayProcess) -> None:
    url = scripted_gateway.base_url + "/chat/completions"
    auth = {"Authorization": scripted_gateway.license}
    assert_openai_error(post(url, None, auth, raw=b"{not json"), 400)
    assert_openai_error(post(url, None, auth, raw=b"[1, 2]"), 400)
    assert_openai_error(post(url, None, auth, raw=b""), 400)
    assert_openai_error(get(url, auth), 405)


# --- licenses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    pytest.param("Authorization: {}", id="raw"),
    pytest.param("Authorization: Bearer {}", id="bearer"),
    pytest.param("Authorization: bearer {}", id="bearer-lowercase"),
    pytest.param("x-api-key: {}", id="x-api-key"),
])
def test_license_headers_accepted(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, header: str
) -> None:
    script.json(_answer({"text": "ok"}))
    name, value = header.format(scripted_gateway.license).split(": ", 1)
    resp = post(scripted_gateway.base_url + "/chat/completions", PLAIN, {name: value})
    assert resp.status == 200, resp.body


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="missing"),
    pytest.param({"Authorization": "gg-not-a-real-license"}, id="unknown"),
    pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
])
def test_missing_or_unknown_license_is_401(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, headers: dict[str, str]
) -> None:
    resp = post(scripted_gateway.base_url + "/chat/completions", PLAIN, headers)
    assert_openai_error(resp, 401, "authentication_error")
    assert resp.headers["x-request-id"]
    assert script.generate_calls() == []


# --- models -------------------------------------------------------------------------------------

def test_models_list_and_retrieve(scripted_gateway: GatewayProcess) -> None:
    auth = {"Authorization": "Bearer " + scripted_gateway.license}
    listing = get(scripted_gateway.base_url + "/models", auth)
    assert listing.status == 200
    body = listing.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    for page_model in ("gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro",
                       "gemini-2.5-flash-thinking", "gemini-2.5-pro-thinking",
                       "gemini-2.5-flash-preview-tts", "gemini-2.0-flash-preview-image-generation"):
        assert page_model in ids
    assert "gemini-scripted-1" in ids  # what upstream lists
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int)
        assert isinstance(model["owned_by"], str)
    for usable in ("gemini-2.5-flash", "gemini-scripted-1", "gemini-2.5-flash-nothinking",
                   "gemini-2.5-flash-thinking-512", "models/gemini-2.5-pro"):
        one = get(scripted_gateway.base_url + "/models/" + usable, auth)
        assert one.status == 200, (usable, one.body)
        assert one.json()["id"] == usable.removeprefix("models/")
    assert_openai_error(get(scripted_gateway.base_url + "/models/no-such-model", auth), 404)
    assert_openai_error(get(scripted_gateway.base_url + "/models"), 401)


# --- responses from a Gemini that is not ours ---------------------------------------------------

def test_response_with_unknown_fields_empty_parts_and_no_index(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.json({"modelVersion": "gemini-2.0-flash-001", "responseId": "r1", "brandNew": {"x": 1},
                 "usageMetadata": {"totalTokenCount": 9, "promptTokenCount": 4,
                                   "candidatesTokenCount": 5},
                 "candidates": [{"finishReason": "STOP", "avgLogprobs": -0.1,
                                 "content": {"role": "model", "parts": [
                                     {"text": "Hel"}, {"text": ""}, {"text": "lo"}]}}]})
    resp = _chat(scripted_gateway, {**PLAIN, "model": "my-custom-name"})
    assert resp.status == 200
    body = resp.json()
    assert_valid(body, "CreateChatCompletionResponse")
    assert body["model"] == "my-custom-name"
    assert body["object"] == "chat.completion"
    assert body["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Hello", "refusal": None}}]
    assert body["usage"]["prompt_tokens"] == 4 and body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == 9
    assert script.generate_calls()[0]["path"] == "/v1beta/models/my-custom-name:generateContent"


def test_candidates_in_any_order_with_index_zero_omitted(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    """Proto3 JSON leaves out ``index: 0``: a candidate without index is choice 0."""
    script.json({"candidates": [
        {"index": 1, "content": {"parts": [{"text": "second"}]}, "finishReason": "MAX_TOKENS"},
        {"content": {"parts": [{"text": "first"}]}, "finishReason": "STOP"}]})
    body = _chat(scripted_gateway, {**PLAIN, "n": 2}).json()
    assert_valid(body, "CreateChatCompletionResponse")
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "first", "stop"), (1, "second", "length")]
    assert script.generate_calls()[0]["body"]["generationConfig"] == {"candidateCount": 2}


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_stream_usage_only_on_the_last_event(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, line_end: bytes
) -> None:
    script.sse(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "A"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "B"}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3,
                           "thoughtsTokenCount": 4, "cachedContentTokenCount": 1,
                           "totalTokenCount": 9}},
        line_end=line_end,
    )
    resp = _chat(scripted_gateway, {**PLAIN, "stream": True,
                                    "stream_options": {"include_usage": True}})
    chunks = _stream_checks(resp, "gemini-2.0-flash")
    assert _content(chunks) == "AB"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 4}}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert script.generate_calls()[0]["query"] == {"alt": "sse"}


def test_stream_is_relayed_as_events_arrive(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.pause = 0.5
    script.sse({"candidates": [{"content": {"parts": [{"text": "early"}]}}]},
               _answer({"text": " late"}))
    started = time.monotonic()
    resp = _pool.request("POST", scripted_gateway.base_url + "/chat/completions",
                         body=json.dumps({**PLAIN, "stream": True}).encode(),
                         headers={"Authorization": scripted_gateway.license},
                         preload_content=False, timeout=10)
    first = b""
    while b"early" not in first:
        first += resp.read1(65536) or b""
    assert time.monotonic() - started < 0.4  # not held back until the answer is whole
    rest = resp.read()
    assert b" late" in rest and rest.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_client_disconnect_cancels_the_upstream_request(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, stream: bool
) -> None:
    script.pause = 0.2
    if stream:
        script.sse(*[{"candidates": [{"content": {"parts": [{"text": f"{i} "}]}}]}
                     for i in range(50)])
    else:  # a JSON answer that trickles in for 10 s
        whole = json.dumps(_answer({"text": "x" * 500})).encode()
        script.replies.append((200, "application/json",
                               [whole[i:i + 10] for i in range(0, len(whole), 10)]))
    body = json.dumps({**PLAIN, "stream": stream}).encode()
    host, port = scripted_gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /gemini/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\nAuthorization: "
            + scripted_gateway.license.encode()
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        if stream:
            received = b""
            while b"0 " not in received:
                received += sock.recv(65536)
        else:
            deadline = time.monotonic() + 5
            while not script.generate_calls() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
    assert script.cut_by_gateway.wait(2)  # well before the 10 s the answer would take


def test_stream_finish_in_its_own_event_then_usage_only(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.sse({"candidates": [{"content": {"parts": [{"text": "A"}]}}]},
               {"candidates": [{"finishReason": "STOP"}]},
               {"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}})
    chunks = _stream_checks(_chat(scripted_gateway, {**PLAIN, "stream": True}), "gemini-2.0-flash")
    assert _content(chunks) == "A"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in chunks[-1]  # not asked for


def test_stream_last_event_without_blank_line_is_kept(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.replies.append((200, "text/event-stream", [
        b'data: {"candidates":[{"content":{"parts":[{"text":"A"}]}}]}\n\n',
        b'data: {"candidates":[{"content":{"parts":[{"text":"B"}]},"finishReason":"STOP"}]}\n']))
    chunks = _stream_checks(_chat(scripted_gateway, {**PLAIN, "stream": True}), "gemini-2.0-flash")
    assert _content(chunks) == "AB"
    assert not any("error" in c for c in chunks)


def test_stream_cut_mid_event_ends_with_error_event(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.replies.append((200, "text/event-stream", [
        b'data: {"candidates":[{"content":{"parts":[{"text":"A"}]}}]}\r\n\r\n',
        b'data: {"candidates":[{"conte']))
    resp = _chat(scripted_gateway, {**PLAIN, "stream": True})
    assert resp.status == 200
    events = resp.sse_events()
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "A"
    error = json.loads(events[-2])
    assert set(error) == {"error"} and error["error"]["message"]
    script.replies.append((200, "text/event-stream", [
        b'data: {"candidates":[{"content":{"parts":[{"text":"A"}]}}]}\r\n\r\n',
        b'data: {"candidates":[{"conte']))
    received = []
    with pytest.raises(openai.APIError):  # the SDK turns the error event into an exception
        for chunk in scripted_gateway.client().chat.completions.create(**PLAIN, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["A"]


def test_stream_opening_with_an_error_event_is_an_http_error(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.replies.append((200, "text/event-stream", [_google_error(400, "INVALID_ARGUMENT")
                                                      .join([b"data: ", b"\r\n\r\n"])]))
    assert_openai_error(_chat(scripted_gateway, {**PLAIN, "stream": True}), 400,
                        "invalid_request_error")
    assert len(script.generate_calls()) == 1  # the client's fault: not retried


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_prompt_blocked_is_content_filter_with_the_reason(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, stream: bool
) -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
               "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}
    (script.sse if stream else script.json)(blocked)
    resp = _chat(scripted_gateway, {**PLAIN, "stream": stream})
    if stream:
        chunks = _stream_checks(resp, "gemini-2.0-flash")
        choice = chunks[-1]["choices"][0]
        refusal = choice["delta"]["refusal"]
    else:
        assert_valid(resp.json(), "CreateChatCompletionResponse")
        choice = resp.json()["choices"][0]
        refusal = choice["message"]["refusal"]
        assert choice["message"]["content"] is None
    assert choice["finish_reason"] == "content_filter"
    assert "PROHIBITED_CONTENT" in refusal


@pytest.mark.parametrize(("reason", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("MALFORMED_FUNCTION_CALL", "content_filter"),
    ("OTHER", "stop"), ("SOME_FUTURE_REASON", "stop"),
])
def test_finish_reasons(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, reason: str, expected: str
) -> None:
    script.json(_answer({"text": "partial"}, finish=reason))
    script.sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]},
               {"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": reason}]})
    plain = _chat(scripted_gateway, PLAIN).json()
    assert_valid(plain, "CreateChatCompletionResponse")
    assert plain["choices"][0]["finish_reason"] == expected
    chunks = _stream_checks(_chat(scripted_gateway, {**PLAIN, "stream": True}), "gemini-2.0-flash")
    assert chunks[-1]["choices"][0]["finish_reason"] == expected
    if reason == "MALFORMED_FUNCTION_CALL":  # surfaced, not hidden as an ordinary stop
        assert reason in plain["choices"][0]["message"]["refusal"]
        assert reason in chunks[-1]["choices"][0]["delta"]["refusal"]


def test_function_call_candidate_is_tool_calls(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.json(_answer({"functionCall": {"name": "get_current_weather",
                                          "args": {"location": "Boston, MA"}}}))
    body = {**PAGE_EXAMPLES["function-calling"], "stream": False}
    completion = _chat(scripted_gateway, body).json()
    assert_valid(completion, "CreateChatCompletionResponse")
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert json.loads(call["function"]["arguments"]) == {"location": "Boston, MA"}


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-flash-thinking"])
def test_thought_text_only_with_the_thinking_suffix(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, model: str
) -> None:
    thought = {"text": "secret musing", "thought": True}
    script.json(_answer(thought, {"text": "answer"},
                        usageMetadata={"promptTokenCount": 1, "candidatesTokenCount": 1,
                                       "thoughtsTokenCount": 6, "totalTokenCount": 8}))
    script.sse({"candidates": [{"content": {"parts": [thought]}}]},
               {"candidates": [{"content": {"parts": [{"text": "answer"}]},
                                "finishReason": "STOP"}]})
    message = _chat(scripted_gateway, {**PLAIN, "model": model}).json()["choices"][0]["message"]
    chunks = _stream_checks(_chat(scripted_gateway, {**PLAIN, "model": model, "stream": True}),
                            model)
    streamed_reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                                 for c in chunks if c["choices"])
    assert message["content"] == "answer" and _content(chunks) == "answer"
    if model.endswith("-thinking"):
        assert message["reasoning_content"] == "secret musing"
        assert streamed_reasoning == "secret musing"
        sent = script.generate_calls()[0]
        assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert sent["body"]["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    else:
        assert "reasoning_content" not in message and streamed_reasoning == ""
        assert "secret musing" not in json.dumps(chunks)


def test_safety_override_per_request(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.json(_answer({"text": "ok"}))
    override = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}]
    body = {**PLAIN, "extra_body": {"google": {"safety_settings": override}}}
    assert _chat(scripted_gateway, body).status == 200
    settings = {s["category"]: s["threshold"]
                for s in script.generate_calls()[0]["body"]["safetySettings"]}
    assert settings == {"HARM_CATEGORY_HARASSMENT": "OFF", "HARM_CATEGORY_HATE_SPEECH":
                        "BLOCK_LOW_AND_ABOVE", "HARM_CATEGORY_SEXUALLY_EXPLICIT": "OFF",
                        "HARM_CATEGORY_DANGEROUS_CONTENT": "OFF",
                        "HARM_CATEGORY_CIVIC_INTEGRITY": "OFF"}


# --- the key pool as clients see it -------------------------------------------------------------

def test_keys_travel_only_in_the_header(
    scripted_gateway: GatewayProcess, script: ScriptedGemini
) -> None:
    script.json(_answer({"text": "ok"}))
    script.sse(_answer({"text": "ok"}))
    _chat(scripted_gateway, PLAIN)
    _chat(scripted_gateway, {**PLAIN, "stream": True})
    for call in script.generate_calls():
        assert call["headers"]["x-goog-api-key"] in ("sim-key-1", "sim-key-2")
        assert "key" not in call["query"]
        assert "authorization" not in call["headers"]


def test_client_error_is_not_retried_and_spares_the_key(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="only-key")
    script.error(400, "INVALID_ARGUMENT")
    assert_openai_error(_chat(gw, PLAIN), 400, "invalid_request_error")
    assert len(script.generate_calls()) == 1
    assert get(gw.url + "/readyz").json()["usable_keys"] == 1
    script.json(_answer({"text": "ok"}))
    assert _chat(gw, PLAIN).status == 200


def test_429_fails_over_then_all_cooling_is_429_with_retry_after(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway()
    script.error(429, "RESOURCE_EXHAUSTED", _retry_info("30s"))
    script.json(_answer({"text": "ok"}))
    assert _chat(gw, PLAIN).status == 200
    keys = [c["headers"]["x-goog-api-key"] for c in script.generate_calls()]
    assert len(keys) == 2 and keys[0] != keys[1]
    script.error(429, "RESOURCE_EXHAUSTED", _retry_info("40s"))
    resp = _chat(gw, {**PLAIN, "stream": True})
    assert_openai_error(resp, 429)
    assert 25 <= int(resp.headers["retry-after"]) <= 40
    calls = len(script.generate_calls())
    assert_openai_error(_chat(gw, PLAIN), 429)
    assert len(script.generate_calls()) == calls  # no key is asked while all cool down


def test_5xx_is_retried_on_another_key_then_503(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway()
    script.error(503, "UNAVAILABLE")
    script.sse(_answer({"text": "ok"}))
    chunks = _stream_checks(_chat(gw, {**PLAIN, "stream": True}), "gemini-2.0-flash")
    assert _content(chunks) == "ok"
    keys = [c["headers"]["x-goog-api-key"] for c in script.generate_calls()]
    assert len(keys) == 2 and keys[0] != keys[1]
    script.replies += [(503, "application/json", [_google_error(503, "UNAVAILABLE")])] * 10
    resp = _chat(gw, PLAIN)
    assert resp.status in (502, 503), resp.body
    assert_openai_error(resp, resp.status)
    assert 2 <= len(script.generate_calls()) - 2 <= 6  # bounded


def test_403_disables_the_key_and_says_so(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="key-one-secret,key-two-secret")
    script.error(403, "PERMISSION_DENIED")
    script.json(_answer({"text": "ok"}))
    assert _chat(gw, PLAIN).status == 200
    assert get(gw.url + "/readyz").json()["usable_keys"] == 1
    time.sleep(0.2)
    logs = gw.logs()
    assert "disabled" in logs
    assert "key-one-secret" not in logs and "key-two-secret" not in logs
    assert gw.license not in logs


def test_no_usable_key_makes_readyz_503(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="lonely-key")
    script.error(400, "INVALID_ARGUMENT", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com"}])
    resp = _chat(gw, PLAIN)
    assert resp.status >= 500 or resp.status == 401, resp.body
    assert_openai_error(resp, resp.status)
    assert get(gw.url + "/readyz").status == 503
    assert get(gw.url + "/healthz").status == 200


def test_first_start_with_real_keys_prints_no_license(
    scripted_gateway: GatewayProcess,
) -> None:
    """A license is printed only in simulator mode; with keys the operator issues them."""
    assert "No license existed" not in scripted_gateway.logs()
    listed = scripted_gateway.cli("license", "list", "--json").stdout
    assert "quickstart" not in listed


# --- running it ---------------------------------------------------------------------------------

def test_chunked_body_over_limit_is_413(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_MAX_BODY_BYTES="2000")

    def body() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"x" * 1000
        yield b'"}]}'

    request = urllib.request.Request(
        gw.base_url + "/chat/completions", data=body(), method="POST",
        headers={"Authorization": gw.license, "Content-Type": "application/json",
                 "Transfer-Encoding": "chunked"})
    with pytest.raises(urllib.error.HTTPError) as failed:
        _NO_PROXY.open(request, timeout=10)
    assert failed.value.code == 413
    assert set(json.loads(failed.value.read())) == {"error"}
    assert script.generate_calls() == []


def test_sigterm_finishes_open_stream_and_refuses_new_work(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway()
    events = [{"candidates": [{"content": {"parts": [{"text": f"{i} "}]}}]} for i in range(8)]
    events.append(_answer({"text": "end"}))
    script.pause = 0.15  # about 1.3 s of stream
    script.replies.append((200, "text/event-stream",
                           [b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events]))
    result: dict[str, RawResponse] = {}
    thread = threading.Thread(
        target=lambda: result.update(resp=_chat(gw, {**PLAIN, "stream": True})))
    thread.start()
    deadline = time.monotonic() + 5
    while not script.generate_calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    gw.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert thread.is_alive()  # the stream is still open ...
    with pytest.raises(OSError):  # ... and no new request is taken
        _NO_PROXY.open(gw.url + "/healthz", timeout=2)
    thread.join(20)
    chunks = _stream_checks(result["resp"], "gemini-2.0-flash")
    assert _content(chunks) == "0 1 2 3 4 5 6 7 end"
    assert gw.process.wait(20) in (0, -signal.SIGTERM)


def test_daily_quota_cools_the_key_until_it_resets(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="day-key")
    script.error(429, "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
             "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        *_retry_info("20s")])
    resp = _chat(gw, PLAIN)
    assert_openai_error(resp, 429)
    assert int(resp.headers["retry-after"]) > 60  # until the day's quota resets, not 20 s
    assert get(gw.url + "/readyz").status == 503


def test_operator_options_think_tags_and_safety_threshold(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_THINKING_OUTPUT="think_tags",
                       GEMINI_GATEWAY_SAFETY_THRESHOLD="BLOCK_ONLY_HIGH")
    script.json(_answer({"text": "musing", "thought": True}, {"text": "answer"}))
    message = _chat(gw, {**PLAIN, "model": "gemini-2.5-flash-thinking"}).json()[
        "choices"][0]["message"]
    assert message["content"].startswith("<think>")
    assert "musing" in message["content"] and message["content"].endswith("answer")
    assert "reasoning_content" not in message
    sent = script.generate_calls()[0]["body"]["safetySettings"]
    assert len(sent) == 5 and {s["threshold"] for s in sent} == {"BLOCK_ONLY_HIGH"}


def test_one_log_line_per_request_without_secrets(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="AIzaSECRETKEYNUMBERONE")
    script.sse(_answer({"text": "ok"}))
    script.json(_answer({"text": "ok"}))
    streamed = _chat(gw, {**PLAIN, "stream": True})
    plain = _chat(gw, {**PLAIN, "model": "gemini-2.5-flash"}, **{"x-api-key": gw.license})
    post(gw.base_url + "/chat/completions", PLAIN, {"Authorization": "Bearer gg-wrong-guess-123"})
    time.sleep(0.2)
    logs = gw.logs()
    for secret in ("AIzaSECRETKEYNUMBERONE", gw.license, "gg-wrong-guess-123"):
        assert secret not in logs
    access = [json.loads(line) for line in logs.splitlines()
              if line.startswith("{") and '"gemini_gateway.access"' in line]
    by_id = {entry["request_id"]: entry for entry in access}
    for resp, model in ((streamed, "gemini-2.0-flash"), (plain, "gemini-2.5-flash")):
        entry = by_id[resp.headers["x-request-id"]]
        assert entry["license"] == "fresh" and entry["model"] == model
        assert entry["status"] == 200 and entry["latency_ms"] >= 0
        assert entry["key"].startswith("k-")
    assert sorted(e["status"] for e in access if e.get("path", "").endswith("completions")) == [
        200, 200, 401]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_model_unknown_upstream_is_404_model_not_found(
    scripted_gateway: GatewayProcess, script: ScriptedGemini, stream: bool
) -> None:
    not_found = (404, "application/json", [json.dumps({"error": {
        "code": 404, "status": "NOT_FOUND", "message": "models/gemini-9-nope is not found for "
        "API version v1beta, or is not supported for generateContent."}}).encode()])
    script.replies += [not_found, not_found]
    resp = _chat(scripted_gateway, {**PLAIN, "model": "gemini-9-nope", "stream": stream})
    err = assert_openai_error(resp, 404, "invalid_request_error")
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert len(script.generate_calls()) == 1  # the client's mistake: no other key is tried
    with pytest.raises(openai.NotFoundError):
        scripted_gateway.client().chat.completions.create(**{**PLAIN, "model": "gemini-9-nope"})


def test_without_keys_it_serves_the_simulator_and_prints_a_working_license(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_KEYS="")
    logs = gw.logs()
    assert "SIMULATOR" in logs
    printed = [line.split("Authorization: ", 1)[1].rstrip("' \\")
               for line in logs.splitlines() if "Authorization: " in line]
    assert len(printed) == 1
    resp = post(gw.base_url + "/chat/completions", PAGE_EXAMPLES["basic"],
                {"Authorization": printed[0]})
    assert "What model are you?" in _content(_stream_checks(resp, "gemini-2.0-flash"))
    assert script.generate_calls() == []  # the built-in simulator answered


def test_silence_before_the_first_byte_is_retried_on_another_key_then_504(
    fresh_gateway: Callable[..., GatewayProcess], script: ScriptedGemini
) -> None:
    gw = fresh_gateway(GEMINI_GATEWAY_UPSTREAM_TIMEOUT="0.5")
    script.silent_replies = 1
    script.replies.append((200, "text/event-stream", []))
    script.sse(_answer({"text": "ok"}))
    chunks = _stream_checks(_chat(gw, {**PLAIN, "stream": True}), "gemini-2.0-flash")
    assert _content(chunks) == "ok"
    keys = [c["headers"]["x-goog-api-key"] for c in script.generate_calls()]
    assert len(keys) == 2 and keys[0] != keys[1]
    script.silent_replies = 10
    script.replies += [(200, "application/json", [b"{}"])] * 10
    assert_openai_error(_chat(gw, PLAIN), 504)
