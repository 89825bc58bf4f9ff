"""The chat endpoint end to end: real gateway process, real simulator, real clients."""

from __future__ import annotations

import json

import openai
import pytest

from tests.integration.helpers import assert_openai_error, get, post
from tests.unit.openai_schema import assert_valid

BASIC = {
    "messages": [{"role": "user", "content": "What model are you?"}],
    "model": "gemini-2.0-flash",
    "stream": True,
}


def _headers(gateway, bearer: bool = False) -> dict[str, str]:
    return {"Authorization": ("Bearer " if bearer else "") + gateway.license}


def test_product_page_basic_call_verbatim(gateway, sim) -> None:
    resp = post(gateway.base_url + "/chat/completions", BASIC, _headers(gateway))
    assert resp.status == 200, resp.body
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = resp.sse_events()
    assert events[-1] == "[DONE]"
    chunks = resp.chunks()
    assert len(chunks) >= 2
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
        assert chunk["model"] == "gemini-2.0-flash"
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "What model are you?" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    sent = sim.requests()[-1]
    assert "gemini-2.0-flash:streamGenerateContent" in sent["path"]
    assert sent["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "What model are you?"}]}
    ]


@pytest.mark.parametrize("bearer", [False, True], ids=["raw", "bearer"])
def test_license_raw_or_bearer(gateway, bearer: bool) -> None:
    body = {**BASIC, "stream": False}
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway, bearer))
    assert resp.status == 200, resp.body
    assert_valid(resp.json(), "CreateChatCompletionResponse")


def test_also_served_at_v1(gateway) -> None:
    resp = post(gateway.url + "/v1/chat/completions", {**BASIC, "stream": False}, _headers(gateway))
    assert resp.status == 200


def test_openai_sdk_non_streaming(gateway, sim) -> None:
    client = gateway.client()
    completion = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "Hello there"},
        ],
        temperature=0.2,
        max_tokens=200,
    )
    assert completion.model == "gemini-2.5-flash"
    assert completion.choices[0].message.role == "assistant"
    assert "Hello there" in completion.choices[0].message.content
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    sent = sim.requests()[-1]["body"]
    assert sent["systemInstruction"]["parts"][0]["text"].startswith("Be brief.")
    assert "Answer in English." in json.dumps(sent["systemInstruction"])
    assert sent["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 200}
    cats = {s["category"]: s["threshold"] for s in sent["safetySettings"]}
    assert cats["HARM_CATEGORY_HARASSMENT"] == "OFF"
    assert len(cats) == 5


def test_openai_sdk_streaming_with_usage(gateway) -> None:
    client = gateway.client()
    stream = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "Count to three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"


def test_thinking_suffix_gives_reasoning_content(gateway, sim) -> None:
    resp = post(
        gateway.base_url + "/chat/completions",
        {"model": "gemini-2.5-flash-thinking", "messages": [{"role": "user", "content": "Why?"}]},
        _headers(gateway),
    )
    assert resp.status == 200, resp.body
    message = resp.json()["choices"][0]["message"]
    assert message.get("reasoning_content")
    assert message["reasoning_content"] not in message["content"]
    assert resp.json()["model"] == "gemini-2.5-flash-thinking"
    sent = sim.requests()[-1]
    assert "models/gemini-2.5-flash:" in sent["path"]
    assert sent["body"]["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


def test_without_suffix_no_thought_text(gateway) -> None:
    resp = post(
        gateway.base_url + "/chat/completions",
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Why?"}]},
        _headers(gateway),
    )
    assert "reasoning_content" not in resp.json()["choices"][0]["message"]


def test_nothinking_on_pro_is_a_clear_400(gateway) -> None:
    resp = post(
        gateway.base_url + "/chat/completions",
        {"model": "gemini-2.5-pro-nothinking", "messages": [{"role": "user", "content": "x"}]},
        _headers(gateway),
    )
    assert_openai_error(resp, 400, "invalid_request_error")


def test_thinking_budget_out_of_range_is_a_clear_400_and_never_sent(gateway, sim) -> None:
    before = len(sim.requests())
    messages = [{"role": "user", "content": "x"}]
    ask = {"model": "gemini-2.5-flash-thinking-99999", "messages": messages}
    resp = post(gateway.base_url + "/chat/completions", ask, _headers(gateway))
    error = assert_openai_error(resp, 400, "invalid_request_error")
    assert error["param"] == "model" and "1 to 24576" in error["message"]
    assert len(sim.requests()) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "wrong"}],
    ids=["missing", "bearer-unknown", "raw-unknown"],
)
def test_bad_license_is_401(gateway, headers) -> None:
    resp = post(gateway.base_url + "/chat/completions", BASIC, headers)
    err = assert_openai_error(resp, 401, "authentication_error")
    assert "wrong" not in err["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gemini-2.0-flash", "messages": []}, "messages"),
        (
            {"model": "gemini-2.0-flash", "messages": [{"role": "system", "content": "x"}]},
            "messages",
        ),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (
            {
                "model": "gemini-2.0-flash",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
        ),
        (
            {
                "model": "gemini-2.0-flash",
                "messages": [{"role": "user", "content": "x"}],
                "stop": ["a", "b", "c", "d", "e", "f"],
            },
            "stop",
        ),
    ],
    ids=["empty", "only-system", "no-model", "bad-temperature", "six-stops"],
)
def test_bad_requests_are_400_naming_the_field(gateway, body, param) -> None:
    resp = post(gateway.base_url + "/chat/completions", body, _headers(gateway))
    err = assert_openai_error(resp, 400, "invalid_request_error")
    assert err["param"] is None or param in err["param"], err


def test_invalid_json_is_400(gateway) -> None:
    resp = post(gateway.base_url + "/chat/completions", None, _headers(gateway), raw=b"{nope")
    assert_openai_error(resp, 400, "invalid_request_error")


def test_unknown_route_is_404_envelope(gateway) -> None:
    assert_openai_error(get(gateway.base_url + "/nothing-here"), 404)


def test_request_id_on_every_response(gateway) -> None:
    resp = post(
        gateway.base_url + "/chat/completions",
        {**BASIC, "stream": False},
        {**_headers(gateway), "x-request-id": "my-trace-1"},
    )
    assert resp.headers["x-request-id"] == "my-trace-1"
    resp = get(gateway.url + "/healthz")
    assert resp.headers["x-request-id"].startswith("req_")


def test_models_list(gateway) -> None:
    resp = get(gateway.base_url + "/models", _headers(gateway))
    assert resp.status == 200
    body = resp.json()
    assert_valid(body, "ListModelsResponse")
    ids = {m["id"] for m in body["data"]}
    for model in ("gemini-2.0-flash", "gemini-2.5-pro-thinking", "gemini-2.5-flash-preview-tts"):
        assert model in ids
    one = gateway.client().models.retrieve("gemini-2.5-flash")
    assert one.id == "gemini-2.5-flash"


def test_models_need_a_license(gateway) -> None:
    assert_openai_error(get(gateway.base_url + "/models"), 401)


def test_upstream_client_error_passes_through_not_retried(gateway, sim) -> None:
    sim.add_fault(
        status=400,
        body={
            "error": {"code": 400, "message": "Bad thing in request", "status": "INVALID_ARGUMENT"}
        },
        times=1,
    )
    resp = post(
        gateway.base_url + "/chat/completions", {**BASIC, "stream": False}, _headers(gateway)
    )
    err = assert_openai_error(resp, 400)
    assert "Bad thing" in err["message"]
    assert len(sim.requests()) == 1


def test_sdk_raises_typed_errors(gateway) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gemini-2.0-flash", messages=[])
    bad = openai.OpenAI(base_url=gateway.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model="gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}]
        )
