"""Validate a dict against a named schema of OpenAI's chat-completions OpenAPI subset.

``assert_valid(obj, "CreateChatCompletionResponse")``. The schema file is the team's shared copy,
``shared/schemas/openai-chat-completions.subset.json``, found next to the repository (any parent
folder holding ``shared/schemas``) or in the folder named by ``GEMINI_GATEWAY_SCHEMAS_DIR``.

The file is OpenAPI 3.1 (JSON Schema 2020-12) but some schemas still carry 3.0's
``nullable: true``, which 2020-12 ignores: e.g. the stream's ``finish_reason`` and ``usage``. Those
are rewritten to allow ``null`` before validating, so a chunk with ``finish_reason: null`` passes
as OpenAI means it to.
"""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_FILE = "openai-chat-completions.subset.json"
_BASE_URI = "urn:openai-chat-completions-subset"


def schema_path() -> Path:
    """Where the OpenAI subset lives: $GEMINI_GATEWAY_SCHEMAS_DIR, else shared/schemas above us."""
    folder = os.environ.get("GEMINI_GATEWAY_SCHEMAS_DIR")
    if folder:
        return Path(folder) / SCHEMA_FILE
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "schemas" / SCHEMA_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{SCHEMA_FILE} not found in any parent's shared/schemas; "
        "set GEMINI_GATEWAY_SCHEMAS_DIR to the folder holding it"
    )


def _allow_null(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable: true`` into JSON Schema 2020-12, recursively."""
    if isinstance(node, list):
        return [_allow_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allow_null(value) for key, value in node.items()}
    if not node.pop("nullable", False):
        return node
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        return node
    if isinstance(node.get("type"), list):
        if "null" not in node["type"]:
            node["type"] = [*node["type"], "null"]
        return node
    # "$ref", "oneOf", "anyOf" or "allOf" without a type: null becomes one more alternative.
    return {"anyOf": [node, {"type": "null"}]}


@lru_cache(maxsize=1)
def _registry() -> Registry:
    document = _allow_null(json.loads(schema_path().read_text(encoding="utf-8")))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(_BASE_URI, resource)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for ``components.schemas[name]``; KeyError when the file has no such schema."""
    registry = _registry()
    schemas = registry.contents(_BASE_URI)["components"]["schemas"]
    if name not in schemas:
        raise KeyError(f"{name!r} is not a schema in {SCHEMA_FILE}")
    root = {"$ref": f"{_BASE_URI}#/components/schemas/{name}"}
    return Draft202012Validator(root, registry=registry)


def errors(obj: Any, name: str) -> list[str]:
    """Every way ``obj`` breaks the schema, as readable lines (empty when valid)."""
    found = validator(name).iter_errors(obj)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]


def assert_valid(obj: Any, name: str) -> None:
    """Fail with the most relevant schema error when ``obj`` is not a valid ``name``."""
    error = best_match(validator(name).iter_errors(obj))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "<root>"
        raise AssertionError(f"not a valid {name} at {where}: {error.message}")
