"""JSON Schema (what OpenAI clients send) → what Gemini accepts, and ``response_format``.

Gemini takes a schema two ways:

- ``parametersJsonSchema`` / ``responseJsonSchema``: plain JSON Schema (Gemini 2.5 and later).
  ``json_schema_for_gemini`` only cleans it: drops the meta keys (``$schema``, ``$id``,
  ``$comment``), inlines local ``$ref``s (to ``$defs`` or any JSON pointer) except recursive
  ones (Gemini allows no keys beside a ``$ref``, where pydantic puts ``description``), and
  rewrites ``type`` lists with ``"null"`` as ``anyOf``, which Gemini mishandles inside ``items``
  (reported against gemini-cli and copilot-cli). Meaning is unchanged.
- ``parameters`` / ``responseSchema``: Gemini's ``Schema`` object, an OpenAPI 3.0 subset (see
  ``Schema`` in shared/schemas/gemini-v1beta.google-openapi3_0.rev20250701.json).
  ``json_schema_to_gemini_schema`` inlines ``$ref``/``$defs`` (recursion is cut after one
  level), turns nullable unions (``anyOf`` with ``{"type": "null"}``, ``type: [T, "null"]``,
  ``null`` in ``enum``) into ``nullable``, other ``type`` lists into ``anyOf``, merges
  ``allOf``, reads ``oneOf`` as ``anyOf``, ``const`` as a one-value ``enum``, and drops keys the
  ``Schema`` object lacks (``additionalProperties``, ``$schema``, ``exclusiveMinimum``…).
  What Gemini cannot enforce but the model should know (non-string enums, string formats other
  than ``enum``/``date-time``) moves into ``description`` so no meaning is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gemini_gateway.errors import InvalidRequest

JsonSchema = dict[str, Any]

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
# Formats the Schema object documents per type; others go into the description.
_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"},
            "INTEGER": {"int32", "int64"}}
# Keys copied as they are (after their values are converted where they hold schemas).
_PLAIN_KEYS = ("title", "description", "minimum", "maximum", "pattern", "default",
               "propertyOrdering")
_COUNT_KEYS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties",
               "maxProperties")
_META_KEYS = ("$schema", "$id", "$comment")
_MAX_REF_DEPTH = 1  # how often one $ref may be expanded inside itself before it is cut


def takes_json_schema(model: str) -> bool:
    """Whether the model takes ``parametersJsonSchema``/``responseJsonSchema`` (Gemini 2.5+)."""
    name = model.removeprefix("models/")
    if re.match(r"gemini-(flash|pro|flash-lite)-latest$", name):
        return True
    match = re.match(r"gemini-(\d+)(?:\.(\d+))?", name)
    if not match:
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (2, 5)


def json_schema_for_gemini(schema: Mapping[str, Any]) -> JsonSchema:
    """A copy of ``schema`` Gemini's JSON Schema fields accept, with the same meaning."""
    if not isinstance(schema, Mapping):
        raise InvalidRequest("A JSON schema must be an object.")
    defs: dict[str, Any] = {f"#/{key}/{name}": s for key in ("$defs", "definitions")
                            if isinstance(schema.get(key), Mapping)
                            for name, s in schema[key].items()}
    defs.update(_pointer_targets(schema, defs))
    kept: set[str] = set()
    inlined = _inline_refs(schema, defs, (), kept)
    for key in ("$defs", "definitions"):
        inlined.pop(key, None)
        names = {ref.rsplit("/", 1)[1] for ref in kept if ref.startswith(f"#/{key}/")}
        if names:
            inlined[key] = {n: _inline_refs(schema[key][n], defs, (f"#/{key}/{n}",), set())
                            for n in sorted(names)}
    cleaned = _clean_json_schema(inlined)
    if not isinstance(cleaned, dict):
        raise InvalidRequest("A JSON schema must be an object.")
    return cleaned


def _pointer_targets(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Other local refs (``#/properties/headers``, as zod-to-json-schema writes for reuse), each
    resolved in ``schema``; unresolvable ones are left for Gemini to report."""
    found: dict[str, Any] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/") and ref not in defs \
                    and ref not in found:
                target = _resolve_pointer(schema, ref)
                if target is not None:
                    found[ref] = target
            for key, value in node.items():
                if key not in ("enum", "const", "default", "examples"):
                    visit(value)

    visit(schema)
    return found


def _resolve_pointer(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    node: Any = root
    for step in ref[2:].split("/"):
        step = step.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, Mapping) and step in node:
            node = node[step]
        else:
            return None
    return node if isinstance(node, Mapping) else None


def _inline_refs(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...], kept: set[str]
                 ) -> Any:
    """Replace local ``$ref``s by their definitions, except recursive ones. Gemini allows no
    sibling keys next to ``$ref`` (pydantic puts ``description`` there), and inlined schemas
    need no lookup at all."""
    if isinstance(node, list):
        return [_inline_refs(item, defs, seen, kept) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in defs:
        if ref in seen:
            kept.add(ref)
            return {"$ref": ref}  # recursion: Gemini unrolls it "to a limited degree"
        target = _inline_refs(defs[ref], defs, (*seen, ref), kept)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_inline_refs(siblings, defs, seen, kept)} \
            if isinstance(target, Mapping) else target
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("enum", "const", "default", "examples", "required"):
            out[key] = value
        elif key in ("properties", "patternProperties") and isinstance(value, Mapping):
            out[key] = {k: _inline_refs(v, defs, seen, kept) for k, v in value.items()}
        else:
            out[key] = _inline_refs(value, defs, seen, kept)
    return out


def _clean_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean_json_schema(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _META_KEYS:
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = (
                {k: _clean_json_schema(v) for k, v in value.items()}
                if isinstance(value, Mapping) else value
            )
        elif key in ("enum", "const", "default", "examples", "required"):
            out[key] = value  # values, not schemas
        else:
            out[key] = _clean_json_schema(value)
    types = out.get("type")
    if isinstance(types, list) and "null" in types and len(types) > 1:
        rest = [t for t in types if t != "null"]
        body = {**out, "type": rest[0] if len(rest) == 1 else rest}
        out = {"anyOf": [body, {"type": "null"}]}
        for key in ("title", "description"):
            if key in body:
                out[key] = body.pop(key)
    return out


def json_schema_to_gemini_schema(schema: Mapping[str, Any]) -> JsonSchema:
    """Convert JSON Schema into Gemini's ``Schema`` object (REST JSON, upper-case types)."""
    if not isinstance(schema, Mapping):
        raise InvalidRequest("A JSON schema must be an object.")
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), Mapping):
            defs.update({f"#/{key}/{name}": s for name, s in schema[key].items()})
    return _SchemaConverter(schema, defs).convert(schema, ())


class _SchemaConverter:
    def __init__(self, root: Mapping[str, Any], defs: dict[str, Any]) -> None:
        self.root = root
        self.defs = defs

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if ref == "#":
            return self.root
        if ref in self.defs:
            return self.defs[ref]
        if ref.startswith("#/"):
            node: Any = self.root
            for step in ref[2:].split("/"):
                step = step.replace("~1", "/").replace("~0", "~")
                if not isinstance(node, Mapping) or step not in node:
                    break
                node = node[step]
            else:
                if isinstance(node, Mapping):
                    return node
        raise InvalidRequest(f"JSON schema reference {ref!r} cannot be resolved.")

    def convert(self, node: Any, seen: tuple[str, ...]) -> JsonSchema:
        if node is True or node == {}:
            return _any_value()
        if not isinstance(node, Mapping):
            raise InvalidRequest("A JSON schema node must be an object.")
        node = dict(node)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            if seen.count(ref) >= _MAX_REF_DEPTH:
                # Gemini's Schema cannot express recursion: stop at an open object.
                out = {"type": "OBJECT", "description": f"(recursive {ref.rsplit('/', 1)[-1]})"}
                return _with_siblings(out, node)
            target = dict(self.resolve(ref))
            # Siblings of $ref (description, default, ...) refine the referenced schema.
            merged = {**target, **{k: v for k, v in node.items() if k not in _META_KEYS}}
            return self.convert(merged, (*seen, ref))
        if isinstance(node.get("allOf"), list):
            parts = []
            for part in node.pop("allOf"):
                resolved, followed = self.deref(part, seen)
                parts.append(resolved)
                seen = (*seen, *followed)
            node = _merge_all_of(node, parts)
        union = node.pop("anyOf", None) or node.pop("oneOf", None)
        if isinstance(union, list):
            return self.convert_union(node, union, seen)
        types = node.get("type")
        if isinstance(types, list):
            return self.convert_type_list(node, types, seen)
        return self.convert_single(node, seen)

    def deref(self, node: Any, seen: tuple[str, ...]
              ) -> tuple[Mapping[str, Any], tuple[str, ...]]:
        """Follow a ``$ref`` chain for ``allOf`` merging; also return the refs followed."""
        followed: tuple[str, ...] = ()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if (*seen, *followed).count(ref) >= _MAX_REF_DEPTH:
                return rest, followed
            node = {**self.resolve(ref), **rest}
            followed = (*followed, ref)
        return (node if isinstance(node, Mapping) else {}), followed

    def convert_union(self, node: dict[str, Any], union: list[Any], seen: tuple[str, ...]
                      ) -> JsonSchema:
        branches = [b for b in union if not _is_null_schema(b)]
        nullable = len(branches) < len(union)
        if not branches:
            out = {"type": "NULL"}
        elif len(branches) == 1:
            # {"anyOf": [X, {"type": "null"}]}: X, nullable; outer keys (description) win.
            out = self.convert(branches[0], seen)
            for key in ("title", "description", "default"):
                if key in node:
                    out[key] = node[key]
        else:
            out = {"anyOf": [self.convert(b, seen) for b in branches]}
            _copy_plain(node, out)
        if nullable:
            out["nullable"] = True
        return out

    def convert_type_list(self, node: dict[str, Any], types: list[Any], seen: tuple[str, ...]
                          ) -> JsonSchema:
        rest = [t for t in types if t != "null"]
        nullable = len(rest) < len(types)
        if len(rest) == 1:
            out = self.convert_single({**node, "type": rest[0]}, seen)
        elif not rest:
            out = {"type": "NULL"}
        else:
            # Each branch keeps only what applies to its own type.
            out = {"anyOf": [self.convert_single(_for_type(node, t), seen) for t in rest]}
            _copy_plain(node, out)
        if nullable:
            out["nullable"] = True
        return out

    def convert_single(self, node: dict[str, Any], seen: tuple[str, ...]) -> JsonSchema:
        json_type = node.get("type")
        if json_type is None:
            json_type = _infer_type(node)
        if json_type is None:
            out = _any_value()
            _copy_plain(node, out)
            return out
        if json_type not in _TYPES:
            raise InvalidRequest(f"JSON schema type {json_type!r} is not supported.")
        gemini_type = _TYPES[json_type]
        out: JsonSchema = {"type": gemini_type}
        _copy_plain(node, out)
        notes: list[str] = []
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if isinstance(values, list):
            if None in values:
                out["nullable"] = True
                values = [v for v in values if v is not None]
            if gemini_type == "STRING" and all(isinstance(v, str) for v in values):
                out["enum"] = values
                if "format" not in node:
                    out["format"] = "enum"
            else:
                # Gemini's enum holds strings only: keep the allowed values as a hint.
                notes.append("allowed values: " + ", ".join(_show(v) for v in values))
        fmt = node.get("format")
        if isinstance(fmt, str):
            if fmt in _FORMATS.get(gemini_type, set()):
                out["format"] = fmt
            else:
                notes.append(f"format: {fmt}")
        for key in _COUNT_KEYS:
            if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
                out[key] = str(node[key])  # int64 fields travel as strings in REST JSON
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                notes.append(f"{key}: {_show(value)}")
                out.setdefault(bound, value)
        if "examples" in node and isinstance(node["examples"], list) and node["examples"]:
            out["example"] = node["examples"][0]
        elif "example" in node:
            out["example"] = node["example"]
        if gemini_type == "OBJECT":
            props = node.get("properties")
            if isinstance(props, Mapping) and props:
                out["properties"] = {k: self.convert(v, seen) for k, v in props.items()}
                required = [r for r in node.get("required") or [] if r in props]
                if required:
                    out["required"] = required
        elif gemini_type == "ARRAY":
            items = node.get("items")
            if isinstance(items, list):  # tuple form: items is a list of schemas
                items = {"anyOf": items} if len(items) > 1 else (items[0] if items else {})
            elif items is None and isinstance(node.get("prefixItems"), list):
                prefix = node["prefixItems"]
                items = {"anyOf": prefix} if len(prefix) > 1 else prefix[0]
            out["items"] = self.convert(items if items is not None else {}, seen)
        if notes:
            text = "; ".join(notes)
            out["description"] = f"{out['description']} ({text})" if "description" in out \
                else f"({text})"
        return out


def _any_value() -> JsonSchema:
    # Gemini's Schema has no "any" type; a string is the value the model can always produce.
    return {"type": "STRING", "description": "(any JSON value, written as text)"}


def _is_null_schema(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("type") == "null" and len(node) <= 2 and \
        set(node) <= {"type", "description"}


def _infer_type(node: Mapping[str, Any]) -> str | None:
    if "properties" in node or "additionalProperties" in node or "required" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if isinstance(values, list) and values:
        kinds = {type(v) for v in values if v is not None}
        if kinds == {str}:
            return "string"
        if kinds == {int}:
            return "integer"
        if kinds <= {int, float}:
            return "number"
        if kinds == {bool}:
            return "boolean"
        return "string"
    if "pattern" in node or "minLength" in node or "maxLength" in node:
        return "string"
    if "minimum" in node or "maximum" in node:
        return "number"
    return None


_TYPE_KEYS = {
    "object": {"properties", "required", "minProperties", "maxProperties",
               "additionalProperties"},
    "array": {"items", "prefixItems", "minItems", "maxItems"},
    "string": {"pattern", "minLength", "maxLength", "format", "enum"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format", "enum"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format", "enum"},
}


def _for_type(node: Mapping[str, Any], json_type: str) -> dict[str, Any]:
    specific = set().union(*_TYPE_KEYS.values())
    keep = _TYPE_KEYS.get(json_type, set())
    out = {k: v for k, v in node.items()
           if (k not in specific or k in keep) and k not in ("title", "description")}
    out["type"] = json_type
    return out


def _copy_plain(node: Mapping[str, Any], out: JsonSchema) -> None:
    for key in _PLAIN_KEYS:
        if key in node and key not in out:
            value = node[key]
            if key in ("title", "description", "pattern") and not isinstance(value, str):
                continue
            if key in ("minimum", "maximum") and (
                not isinstance(value, int | float) or isinstance(value, bool)
            ):
                continue
            if key == "propertyOrdering" and not isinstance(value, list):
                continue
            out[key] = value


def _merge_all_of(node: dict[str, Any], parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``allOf``: the union of every part's properties and required names."""
    merged: dict[str, Any] = {}
    props: dict[str, Any] = {}
    required: list[str] = []
    for part in [*parts, node]:
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                props.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(r for r in value if r not in required)
            elif part is node or key not in merged:
                merged[key] = value
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


def _with_siblings(out: JsonSchema, node: Mapping[str, Any]) -> JsonSchema:
    if isinstance(node.get("description"), str):
        out["description"] = f"{node['description']} {out['description']}"
    return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def response_format_to_gemini(response_format: Mapping[str, Any] | None, model: str
                              ) -> dict[str, Any]:
    """``response_format`` → ``generationConfig`` fields to merge (empty for text)."""
    if response_format is None:
        return {}
    if not isinstance(response_format, Mapping):
        raise InvalidRequest("response_format must be an object.", param="response_format")
    kind = response_format.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping):
            raise InvalidRequest("response_format.json_schema must be an object.",
                                 param="response_format.json_schema")
        schema = spec.get("schema")
        if schema is None:
            return {"responseMimeType": "application/json"}
        if not isinstance(schema, Mapping):
            raise InvalidRequest("response_format.json_schema.schema must be an object.",
                                 param="response_format.json_schema.schema")
        if takes_json_schema(model):
            return {"responseMimeType": "application/json",
                    "responseJsonSchema": json_schema_for_gemini(schema)}
        return {"responseMimeType": "application/json",
                "responseSchema": json_schema_to_gemini_schema(schema)}
    raise InvalidRequest(f"response_format type {kind!r} is not supported.",
                         param="response_format.type")
