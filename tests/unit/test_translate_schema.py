"""JSON Schema → Gemini, on real tool schemas; every output is checked by two Gemini oracles:
the compiled protos (google-ai-generativelanguage) and the community OpenAPI 3.1 spec."""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Any, Literal, Optional

import jsonschema
import pytest
from google.ai.generativelanguage_v1beta import types as gl
from pydantic import BaseModel, Field
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.schema import (
    json_schema_for_gemini,
    json_schema_to_gemini_schema,
    response_format_to_gemini,
    takes_json_schema,
)

SPEC_FILE = "gemini-v1beta.community-native.openapi3_1.rev20260717.json"


def _spec_path() -> Path:
    """$GEMINI_GATEWAY_SCHEMAS_DIR, else shared/schemas in a parent folder (as openai_schema.py)."""
    folder = os.environ.get("GEMINI_GATEWAY_SCHEMAS_DIR")
    if folder:
        return Path(folder) / SPEC_FILE
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "schemas" / SPEC_FILE).is_file():
            return parent / "shared" / "schemas" / SPEC_FILE
    return Path(SPEC_FILE)  # missing: the community checks are skipped


SPEC_PATH = _spec_path()
SPEC_URI = "urn:gemini-community-spec"


def community_validator(component: str) -> jsonschema.Draft202012Validator:
    spec = json.loads(SPEC_PATH.read_text())
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{component}"}, registry=registry)


def assert_gemini_schema(schema: dict[str, Any]) -> None:
    """Valid as Gemini's Schema (proto, strict) and as the community ApiSchema."""
    gl.Schema.from_json(json.dumps(schema))
    if SPEC_PATH.exists():
        community_validator("ApiSchema").validate(schema)


# --- real schemas ---------------------------------------------------------------------------

# The product page's function-calling example.
WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}

# OpenAI's function-calling guide, strict mode: nullable unit via a type list.
OPENAI_STRICT_WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
        "units": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"],
                  "description": "Units the temperature will be returned in."},
    },
    "required": ["location", "units"],
    "additionalProperties": False,
}

# MCP filesystem server (zod-to-json-schema output): read_file and edit_file.
MCP_READ_FILE = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "tail": {"type": "number", "description": "If provided, returns only the last N lines"},
        "head": {"type": "number", "description": "If provided, returns only the first N lines"},
    },
    "required": ["path"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}
MCP_EDIT_FILE = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "edits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "oldText": {"type": "string",
                                "description": "Text to search for - must match exactly"},
                    "newText": {"type": "string", "description": "Text to replace with"},
                },
                "required": ["oldText", "newText"],
                "additionalProperties": False,
            },
        },
        "dryRun": {"type": "boolean", "default": False,
                   "description": "Preview changes using git-style diff format"},
    },
    "required": ["path", "edits"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}
# GitHub MCP server: create_issue.
GITHUB_CREATE_ISSUE = {
    "type": "object",
    "properties": {
        "owner": {"type": "string", "description": "Repository owner"},
        "repo": {"type": "string", "description": "Repository name"},
        "title": {"type": "string", "description": "Issue title"},
        "body": {"type": "string", "description": "Issue body content"},
        "assignees": {"type": "array", "description": "Usernames to assign to this issue",
                      "items": {"type": "string"}},
        "labels": {"type": "array", "description": "Labels to apply to this issue",
                   "items": {"type": "string"}},
        "milestone": {"type": "number", "description": "Milestone number"},
    },
    "required": ["owner", "repo", "title"],
}


class Unit(enum.StrEnum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Address(BaseModel):
    street: str
    city: str
    zip_code: Optional[str] = Field(default=None, description="Postal code")  # noqa: UP045


class Person(BaseModel):
    name: str = Field(description="Full name")
    age: int = Field(ge=0, le=150)
    email: str = Field(json_schema_extra={"format": "email"})
    unit: Unit = Unit.celsius
    home: Address
    others: list[Address] = []
    role: Literal["admin", "user"] = "user"
    score: float | int | None = None


class TreeNode(BaseModel):
    value: int
    children: list[TreeNode] = []


REAL_SCHEMAS = [
    pytest.param(WEATHER, id="product-page-weather"),
    pytest.param(OPENAI_STRICT_WEATHER, id="openai-strict-weather"),
    pytest.param(MCP_READ_FILE, id="mcp-filesystem-read_file"),
    pytest.param(MCP_EDIT_FILE, id="mcp-filesystem-edit_file"),
    pytest.param(GITHUB_CREATE_ISSUE, id="mcp-github-create_issue"),
    pytest.param(Person.model_json_schema(), id="pydantic-nested-enum"),
    pytest.param(TreeNode.model_json_schema(), id="pydantic-recursive"),
]


@pytest.mark.parametrize("schema", REAL_SCHEMAS)
def test_real_schemas_convert_to_valid_gemini_schema(schema: dict[str, Any]) -> None:
    out = json_schema_to_gemini_schema(schema)
    assert_gemini_schema(out)
    assert out["type"] == "OBJECT"
    text = json.dumps(out)
    for dropped in ("additionalProperties", "$schema", "$ref", "$defs", "exclusiveMinimum"):
        assert dropped not in text


@pytest.mark.parametrize("schema", REAL_SCHEMAS)
def test_real_schemas_stay_valid_json_schema(schema: dict[str, Any]) -> None:
    out = json_schema_for_gemini(schema)
    jsonschema.Draft202012Validator.check_schema(out)
    assert "$schema" not in out
    gl.FunctionDeclaration.from_json(json.dumps({"name": "f", "parametersJsonSchema": out}))


def test_weather_converts_exactly() -> None:
    assert json_schema_to_gemini_schema(WEATHER) == {
        "type": "OBJECT",
        "properties": {
            "location": {"type": "STRING",
                         "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"], "format": "enum"},
        },
        "required": ["location"],
    }


def test_type_list_with_null_becomes_nullable() -> None:
    out = json_schema_to_gemini_schema(OPENAI_STRICT_WEATHER)
    assert out["properties"]["units"] == {
        "type": "STRING", "description": "Units the temperature will be returned in.",
        "enum": ["celsius", "fahrenheit"], "format": "enum", "nullable": True,
    }


def test_edit_file_keeps_nested_items_and_default() -> None:
    out = json_schema_to_gemini_schema(MCP_EDIT_FILE)
    items = out["properties"]["edits"]["items"]
    assert items["type"] == "OBJECT"
    assert items["required"] == ["oldText", "newText"]
    assert out["properties"]["dryRun"]["default"] is False


def test_pydantic_refs_are_inlined_with_their_meaning() -> None:
    out = json_schema_to_gemini_schema(Person.model_json_schema())
    props = out["properties"]
    assert props["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert props["home"]["type"] == "OBJECT"
    assert props["home"]["properties"]["zip_code"]["nullable"] is True
    assert props["home"]["properties"]["zip_code"]["description"] == "Postal code"
    assert props["others"]["items"]["properties"]["city"] == {"type": "STRING", "title": "City"}
    assert props["age"]["minimum"] == 0 and props["age"]["maximum"] == 150
    assert props["role"]["enum"] == ["admin", "user"]
    assert "format: email" in props["email"]["description"]
    assert "format" not in props["email"]
    # float | int | None: a union of two types, nullable
    assert props["score"]["nullable"] is True
    assert [b["type"] for b in props["score"]["anyOf"]] == ["NUMBER", "INTEGER"]
    assert set(out["required"]) == {"name", "age", "email", "home"}


def test_recursion_is_cut_after_one_level() -> None:
    out = json_schema_to_gemini_schema(TreeNode.model_json_schema())
    child = out["properties"]["children"]["items"]
    assert child["type"] == "OBJECT"
    assert "recursive" in child["description"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"type": ["string", "integer"]},
                     {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}, id="type-list"),
        pytest.param({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"},
                     {"type": "INTEGER", "description": "n", "nullable": True},
                     id="anyOf-with-null"),
        pytest.param({"oneOf": [{"type": "string"}, {"type": "boolean"}]},
                     {"anyOf": [{"type": "STRING"}, {"type": "BOOLEAN"}]}, id="oneOf"),
        pytest.param({"type": "integer", "enum": [1, 2, 3]},
                     {"type": "INTEGER", "description": "(allowed values: 1, 2, 3)"},
                     id="integer-enum-to-description"),
        pytest.param({"type": "string", "enum": ["a", None]},
                     {"type": "STRING", "enum": ["a"], "format": "enum", "nullable": True},
                     id="null-in-enum"),
        pytest.param({"const": "fixed"},
                     {"type": "STRING", "enum": ["fixed"], "format": "enum"}, id="const"),
        pytest.param({"type": "string", "format": "date-time"},
                     {"type": "STRING", "format": "date-time"}, id="supported-format"),
        pytest.param({"type": "array", "items": {"type": "string"}, "minItems": 1},
                     {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "1"},
                     id="array-counts"),
        pytest.param({"type": "number", "exclusiveMinimum": 0},
                     {"type": "NUMBER", "minimum": 0, "description": "(exclusiveMinimum: 0)"},
                     id="exclusive-minimum"),
        pytest.param({"properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]},
                     {"type": "OBJECT", "properties": {"a": {"type": "STRING"}},
                      "required": ["a"]}, id="untyped-object-and-unknown-required"),
        pytest.param({"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
                                {"properties": {"b": {"type": "integer"}}}]},
                     {"type": "OBJECT", "properties": {"a": {"type": "STRING"},
                                                       "b": {"type": "INTEGER"}},
                      "required": ["a"]}, id="allOf-merged"),
        pytest.param({"type": "object", "additionalProperties": {"type": "string"}},
                     {"type": "OBJECT"}, id="map-drops-additionalProperties"),
    ],
)
def test_conversion_cases(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    out = json_schema_to_gemini_schema(schema)
    assert out == expected
    assert_gemini_schema(out)


def test_any_value_becomes_text() -> None:
    out = json_schema_to_gemini_schema({"type": "object", "properties": {"x": {}}})
    assert out["properties"]["x"]["type"] == "STRING"
    assert_gemini_schema(out)


def test_unresolvable_ref_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        json_schema_to_gemini_schema({"type": "object",
                                      "properties": {"a": {"$ref": "#/$defs/Missing"}}})


def test_unknown_type_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        json_schema_to_gemini_schema({"type": "tuple"})


def test_json_schema_path_rewrites_nullable_type_lists_as_anyof() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {
            "type": ["object", "null"], "properties": {"a": {"type": "string"}}}}},
    }
    out = json_schema_for_gemini(schema)
    assert out == {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "null"}]}}},
    }
    assert schema["properties"]["rows"]["items"]["type"] == ["object", "null"]  # not mutated


def test_json_schema_path_inlines_refs_with_their_siblings() -> None:
    class Owner(BaseModel):
        pet: Address = Field(description="Where the pet lives")  # $ref with a sibling

    out = json_schema_for_gemini(Owner.model_json_schema())
    assert "$defs" not in out and "$ref" not in json.dumps(out)
    pet = out["properties"]["pet"]
    assert pet["description"] == "Where the pet lives"
    assert pet["properties"]["zip_code"]["anyOf"][1] == {"type": "null"}
    jsonschema.Draft202012Validator.check_schema(out)


def test_json_schema_path_keeps_recursive_refs() -> None:
    out = json_schema_for_gemini(TreeNode.model_json_schema())
    assert out["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    assert set(out["$defs"]) == {"TreeNode"}
    jsonschema.validate({"value": 1, "children": [{"value": 2, "children": [
        {"value": 3}]}]}, out)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"value": 1, "children": [{"value": 2, "children": [
            {"value": "x"}]}]}, out)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.0-flash", False),
        ("gemini-1.5-pro", False),
        ("gemini-2.5-flash", True),
        ("models/gemini-2.5-pro", True),
        ("gemini-2.5-flash-preview-05-20", True),
        ("gemini-3-pro-preview", True),
        ("gemini-3.1-flash", True),
        ("gemini-flash-latest", True),
        ("gemma-3-27b-it", False),
    ],
)
def test_takes_json_schema(model: str, expected: bool) -> None:
    assert takes_json_schema(model) is expected


def test_response_format_text_and_json_object() -> None:
    assert response_format_to_gemini(None, "gemini-2.5-flash") == {}
    assert response_format_to_gemini({"type": "text"}, "gemini-2.5-flash") == {}
    assert response_format_to_gemini({"type": "json_object"}, "gemini-2.0-flash") == {
        "responseMimeType": "application/json"}


def test_response_format_json_schema_on_new_and_old_models() -> None:
    fmt = {"type": "json_schema",
           "json_schema": {"name": "person", "schema": Person.model_json_schema(),
                           "strict": True}}
    new = response_format_to_gemini(fmt, "gemini-2.5-flash")
    assert new["responseMimeType"] == "application/json"
    assert new["responseJsonSchema"]["properties"]["home"]["properties"]["city"]["type"] == \
        "string"
    old = response_format_to_gemini(fmt, "gemini-2.0-flash")
    assert old["responseSchema"]["properties"]["home"]["type"] == "OBJECT"
    for config in (new, old):
        gl.GenerationConfig.from_json(json.dumps(config))
        if SPEC_PATH.exists():
            community_validator("GenerationConfig").validate(config)


@pytest.mark.parametrize(
    "fmt",
    [
        pytest.param({"type": "xml"}, id="unknown-type"),
        pytest.param({"type": "json_schema"}, id="missing-json_schema"),
        pytest.param({"type": "json_schema", "json_schema": {"name": "x", "schema": 3}},
                     id="schema-not-object"),
        pytest.param("json", id="not-an-object"),
    ],
)
def test_bad_response_format_is_invalid_request(fmt: Any) -> None:
    with pytest.raises(InvalidRequest):
        response_format_to_gemini(fmt, "gemini-2.5-flash")
