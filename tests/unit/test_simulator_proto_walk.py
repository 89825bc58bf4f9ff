"""Request bodies are read as Google's JSON front end reads them: both name spellings, both
base64 alphabets, enum names in any case; unknown names and bad values refused in Google's words.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gemini_gateway.simulator.google_errors import GoogleError
from gemini_gateway.simulator.proto_walk import normalise_request


def _parse(body: dict[str, Any], version: str = "v1beta") -> dict[str, Any]:
    return normalise_request(body, "GenerateContentRequest", version, strict=True)


def _refusal(body: dict[str, Any]) -> GoogleError:
    with pytest.raises(GoogleError) as info:
        _parse(body)
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    return info.value


def _user(text: str = "Explain how AI works") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


WEATHER = {
    "name": "get_current_weather",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def test_snake_case_and_camel_case_give_the_same_request() -> None:
    camel = {
        "contents": [_user()],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "generationConfig": {
            "maxOutputTokens": 50,
            "stopSequences": ["x"],
            "thinkingConfig": {"includeThoughts": True},
        },
    }
    snake = {
        "contents": [_user()],
        "system_instruction": {"parts": [{"text": "Be brief"}]},
        "generation_config": {
            "max_output_tokens": 50,
            "stop_sequences": ["x"],
            "thinking_config": {"include_thoughts": True},
        },
    }
    assert _parse(snake) == _parse(camel) == camel


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(base64.b64encode(b"\xfb\xff\xfe" * 4).decode(), id="standard"),
        pytest.param(base64.urlsafe_b64encode(b"\xfb\xff\xfe" * 4).decode(), id="url-safe"),
    ],
)
def test_inline_data_accepts_both_base64_alphabets(data: str) -> None:
    assert "+" in data or "-" in data  # the alphabets differ on these bytes
    body = {"contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": data}}]}]}
    _parse(body)


def test_broken_base64_is_refused() -> None:
    body = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "A!!"}}]}]}
    assert "base64" in _refusal(body).message


def test_unknown_fields_are_refused_with_their_path() -> None:
    body = {
        "contents": [{"parts": [{"text": "hi", "foo": 1}]}],
        "generationConfig": {"reasoning_effort": "high"},
    }
    err = _refusal(body)
    assert err.message.splitlines() == [
        "Invalid JSON payload received. Unknown name \"foo\" at 'contents[0].parts[0]': "
        "Cannot find field.",
        'Invalid JSON payload received. Unknown name "reasoning_effort" at '
        "'generation_config': Cannot find field.",
    ]
    detail = err.body()["error"]["details"][0]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert [v["field"] for v in detail["fieldViolations"]] == [
        "contents[0].parts[0]",
        "generation_config",
    ]


def test_top_level_unknown_field_has_no_path() -> None:
    err = _refusal({"contents": [_user()], "google": {"thinking_config": {}}})
    assert err.message == 'Invalid JSON payload received. Unknown name "google": Cannot find field.'


def test_json_schema_keywords_in_a_gemini_schema_are_refused() -> None:
    declaration = dict(WEATHER, parameters={**WEATHER["parameters"], "additionalProperties": False})
    err = _refusal({"contents": [_user()], "tools": [{"functionDeclarations": [declaration]}]})
    assert (
        'Unknown name "additionalProperties" at '
        "'tools[0].function_declarations[0].parameters'" in err.message
    )


def test_free_form_json_schemas_are_accepted() -> None:
    declaration = {
        "name": "f",
        "parametersJsonSchema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"a": {"const": 1}},
        },
    }
    _parse(
        {
            "contents": [_user()],
            "tools": [{"functionDeclarations": [declaration]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "$defs": {}},
            },
        }
    )


def test_enum_names_are_case_insensitive_but_must_exist() -> None:
    parsed = _parse({"contents": [_user()], "generationConfig": {"responseModalities": ["text"]}})
    assert parsed["generationConfig"]["responseModalities"] == ["TEXT"]
    err = _refusal({"contents": [_user()], "generationConfig": {"responseModalities": ["PICTURE"]}})
    assert "Invalid value at 'generation_config.response_modalities[0]'" in err.message


def test_wrong_scalar_type_is_refused() -> None:
    _refusal({"contents": [_user()], "generationConfig": {"temperature": "hot"}})


def test_list_for_a_single_field_is_refused() -> None:
    err = _refusal({"contents": [_user()], "generationConfig": {"temperature": [1]}})
    assert "Proto field is not repeating, cannot start list." in err.message


def test_two_data_fields_in_one_part_are_refused() -> None:
    part = {"text": "a", "inlineData": {"mimeType": "image/png", "data": "AAAA"}}
    assert (
        "oneof field 'data' is already set" in _refusal({"contents": [{"parts": [part]}]}).message
    )


def test_v1_takes_what_v1beta_takes() -> None:
    # google-genai 3.x defaults to v1 and sends tools and systemInstruction there.
    body = {
        "contents": [_user()],
        "systemInstruction": {"parts": [{"text": "x"}]},
        "tools": [{"functionDeclarations": [WEATHER]}],
    }
    assert _parse(body, "v1") == _parse(body)
    with pytest.raises(GoogleError):
        _parse({**body, "bogus": 1}, "v1")


def test_lenient_mode_keeps_unknown_fields() -> None:
    body = {"contents": [_user()], "extra": {"a": 1}}
    assert normalise_request(body, "GenerateContentRequest", "v1beta", strict=False) == body
