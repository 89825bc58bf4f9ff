"""The simulator refuses what the Gemini API refuses and accepts what it accepts.

Request bodies follow the REST examples of ai.google.dev (text, thinking, function calling,
structured output) and the error texts Google is quoted with in public bug reports.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gemini_gateway.simulator.google_errors import GoogleError
from gemini_gateway.simulator.proto_walk import normalise_request
from gemini_gateway.simulator.validation import check_generate_request, make_signature


def _parse(body: dict[str, Any], version: str = "v1beta") -> dict[str, Any]:
    return normalise_request(body, "GenerateContentRequest", version, strict=True)


def _check(body: dict[str, Any], model: str = "gemini-2.5-flash") -> None:
    check_generate_request(_parse(body), model)


def _refusal(body: dict[str, Any], model: str = "gemini-2.5-flash") -> GoogleError:
    with pytest.raises(GoogleError) as info:
        _check(body, model)
    assert info.value.code == 400
    assert info.value.status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION")
    return info.value


def _user(text: str = "Explain how AI works") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


WEATHER = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}


@pytest.mark.parametrize("role", ["system", "assistant", "function", "tool"])
def test_roles_other_than_user_and_model_are_refused(role: str) -> None:
    err = _refusal({"contents": [{"role": role, "parts": [{"text": "hi"}]}]})
    assert err.message == "Please use a valid role: user, model."


def test_empty_contents_are_refused() -> None:
    for body in ({}, {"contents": []}):
        err = _refusal(body)
        assert err.message == "* GenerateContentRequest.contents: contents is not specified\n"


def test_empty_parts_and_empty_part_are_refused() -> None:
    err = _refusal({"contents": [_user(), {"role": "model", "parts": []}]})
    assert "contents[1].parts: contents.parts must not be empty." in err.message
    err = _refusal({"contents": [{"role": "user", "parts": [{}]}]})
    assert "contents[0].parts[0].data: required oneof field 'data'" in err.message


@pytest.mark.parametrize("name", ["2fa", "-dash", "has space", "x" * 65])
def test_function_names_gemini_refuses(name: str) -> None:
    declaration = {"name": name, "description": "d"}
    err = _refusal({"contents": [_user()], "tools": [{"functionDeclarations": [declaration]}]})
    assert "tools[0].function_declarations[0].name: Invalid function name" in err.message


def test_thinking_budget_zero_is_refused_on_pro_only() -> None:
    body = {"contents": [_user()], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    _check(body, "gemini-2.5-flash")
    err = _refusal(body, "gemini-2.5-pro")
    assert err.message == "Budget 0 is invalid. This model only works in thinking mode."


def test_thinking_level_needs_gemini_3_and_no_budget() -> None:
    level = {
        "contents": [_user()],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "low"}},
    }
    _check(level, "gemini-3-pro-preview")
    assert _refusal(level, "gemini-2.5-flash").message == (
        "Thinking level is not supported for this model."
    )
    both = {
        "contents": [_user()],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH", "thinkingBudget": 1024}},
    }
    _refusal(both, "gemini-3-pro-preview")


def test_newer_fields_are_checked_by_hand() -> None:
    good = {
        "contents": [_user()],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        },
    }
    _check(good, "gemini-3-pro-image-preview")
    bad = {"contents": [_user()], "generationConfig": {"imageConfig": {"imageSize": "2k"}}}
    assert "image_config.image_size" in _refusal(bad, "gemini-3-pro-image-preview").message
    level = {
        "contents": [_user()],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "max"}},
    }
    _refusal(level, "gemini-3-pro-preview")


@pytest.mark.parametrize(
    ("model", "modalities"),
    [
        pytest.param("gemini-2.5-flash", ["AUDIO"], id="audio-on-text-model"),
        pytest.param("gemini-2.5-flash-preview-tts", ["TEXT"], id="text-on-tts"),
        pytest.param("gemini-2.5-flash-preview-tts", None, id="tts-without-modalities"),
        pytest.param("gemini-2.5-flash", ["TEXT", "IMAGE"], id="image-on-text-model"),
        pytest.param("gemini-2.0-flash-preview-image-generation", ["IMAGE"], id="image-only-2.0"),
    ],
)
def test_unsupported_response_modalities_are_refused(model: str, modalities: Any) -> None:
    config = {"responseModalities": modalities} if modalities else {}
    err = _refusal({"contents": [_user()], "generationConfig": config}, model)
    assert err.message.startswith("Model does not support the requested response modalities")


def test_supported_response_modalities_pass() -> None:
    _check(
        {"contents": [_user()], "generationConfig": {"responseModalities": ["AUDIO"]}},
        "gemini-2.5-pro-preview-tts",
    )
    _check(
        {"contents": [_user()], "generationConfig": {"responseModalities": ["IMAGE", "TEXT"]}},
        "gemini-2.0-flash-preview-image-generation",
    )


def _tool_history(signature: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "functionCall": {"name": "get_current_weather", "args": {"location": "Boston"}}
    }
    if signature is not None:
        call["thoughtSignature"] = signature
    return {
        "contents": [
            _user("What is the weather like in Boston today?"),
            {"role": "model", "parts": [call]},
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_current_weather",
                            "response": {"temperature": 20},
                        }
                    }
                ],
            },
        ],
        "tools": [{"functionDeclarations": [WEATHER]}],
    }


def test_gemini_3_needs_the_signature_of_a_current_turn_function_call() -> None:
    err = _refusal(_tool_history(None), "gemini-3-pro-preview")
    assert err.message.startswith("Function call is missing a thought_signature in functionCall")
    assert "`default_api:get_current_weather` , position 2" in err.message
    _check(_tool_history(make_signature(b"abc")), "gemini-3-pro-preview")
    _check(_tool_history("skip_thought_signature_validator"), "gemini-3-pro-preview")
    _check(_tool_history(None), "gemini-2.5-flash")  # older models do not enforce it


def test_gemini_3_refuses_a_signature_it_did_not_issue() -> None:
    forged = base64.b64encode(b"not ours").decode()
    assert _refusal(_tool_history(forged), "gemini-3-pro-preview").message == (
        "Corrupted thought signature."
    )


def test_gemini_3_ignores_unsigned_calls_of_earlier_turns() -> None:
    body = _tool_history(None)
    body["contents"] += [
        {"role": "model", "parts": [{"text": "It is 20 degrees."}]},
        _user("Thanks! And tomorrow?"),
    ]
    _check(body, "gemini-3-pro-preview")
