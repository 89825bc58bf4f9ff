"""Read a request body the way Google's JSON front end does, refusing what it refuses.

The base is Google's own protobuf descriptors, compiled in ``google-ai-generativelanguage``
(``v1beta``, for both API versions): we walk the JSON body along them, accepting camelCase and
snake_case names and enum names in any case (as Google's JSON front end does) and reporting
unknown names as Google does (``Unknown name "x" at 'generation_config': Cannot find field.``).
Fields newer than that package (``thinkingLevel``, ``imageSize``, part ``mediaResolution``, ...)
are checked by hand against the community OpenAPI rev20260717 and what the google-genai SDK sends
to the Developer API; the rest of the scalar checking (numbers, base64 in either alphabet) is left
to protobuf's ``ParseDict``. The rules that need the model are in ``validation``.

The walk returns the body with every name in camelCase, so the answer side reads one spelling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from google.ai.generativelanguage_v1beta import types as v1beta_types
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gemini_gateway.simulator.google_errors import invalid_json

_PASS_THROUGH = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Duration",
        "google.protobuf.Timestamp",
    }
)
_PACKAGE_PREFIX = "google.ai.generativelanguage.v1beta."

Check = Callable[[Any], "tuple[Any, bool]"]


def _bool(value: Any) -> tuple[Any, bool]:
    return value, isinstance(value, bool)


def _string(value: Any) -> tuple[Any, bool]:
    return value, isinstance(value, str)


def _object(value: Any) -> tuple[Any, bool]:
    return value, isinstance(value, dict)


def _objects(value: Any) -> tuple[Any, bool]:
    return value, isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _enum(*names: str) -> Check:
    allowed = frozenset(names)

    def check(value: Any) -> tuple[Any, bool]:
        if isinstance(value, str) and value.upper() in allowed:
            return value.upper(), True
        return value, False

    return check


def _choice(*values: str) -> Check:
    allowed = frozenset(values)

    def check(value: Any) -> tuple[Any, bool]:
        return value, value in allowed

    return check


# Fields the Developer API takes that the compiled descriptors lack, by message (package-relative).
NEWER_FIELDS: dict[str, dict[str, Check]] = {
    "GenerateContentRequest": {"store": _bool, "serviceTier": _string, "labels": _object},
    "GenerationConfig": {"audioTranscriptionConfig": _object},
    "ThinkingConfig": {
        "thinkingLevel": _enum("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH")
    },
    "ImageConfig": {"imageSize": _choice("512", "1K", "2K", "4K")},
    "Part": {
        "mediaResolution": _object,
        "toolCall": _object,
        "toolResponse": _object,
        "audioTranscription": _object,
    },
    "ToolConfig": {"includeServerSideToolInvocations": _bool},
    "Tool": {"mcpServers": _objects},
    "Tool.GoogleSearch": {"searchTypes": _object},
    "GoogleMaps": {"authConfig": _object},
    "FunctionResponsePart": {"fileData": _object},
}


def _relative(desc: Descriptor) -> str:
    return desc.full_name.removeprefix(_PACKAGE_PREFIX)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@functools.cache
def _fields(desc: Descriptor) -> dict[str, FieldDescriptor]:
    """Both spellings of every field name (descriptors are immutable, so caching is safe)."""
    table: dict[str, FieldDescriptor] = {}
    for field in desc.fields:
        table[field.name] = field
        table[field.json_name] = field
    return table


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 80 else text[:77] + "..."


class _Walker:
    """One walk over a request body; collects Google-style violations instead of stopping."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.violations: list[tuple[str, str]] = []

    def fail(self, field: str, text: str) -> None:
        self.violations.append((field, text))

    def message(self, value: Any, desc: Descriptor, path: str) -> Any:
        if desc.full_name in _PASS_THROUGH:
            return value
        if not isinstance(value, dict):
            self.fail(
                path,
                f"Invalid value at '{path}' (type.googleapis.com/{desc.full_name}), "
                f"{_short(value)}",
            )
            return value
        fields = _fields(desc)
        newer = NEWER_FIELDS.get(_relative(desc), {})
        out: dict[str, Any] = {}
        oneofs: dict[str, str] = {}
        for key, item in value.items():
            if item is None:
                continue
            field = fields.get(key)
            if field is None:
                self._unknown(out, newer, key, item, path)
                continue
            sub = f"{path}.{field.name}" if path else field.name
            oneof = field.containing_oneof
            if oneof is not None and not oneof.name.startswith("_"):
                if oneof.name in oneofs and self.strict:
                    self.fail(
                        sub,
                        f"Invalid value at '{sub}': oneof field '{oneof.name}' is "
                        f"already set. Cannot set '{field.json_name}'",
                    )
                oneofs[oneof.name] = field.name
            out[field.json_name] = self.field(item, field, sub, key, path)
        return out

    def _unknown(
        self, out: dict[str, Any], newer: dict[str, Check], key: str, item: Any, path: str
    ) -> None:
        name = _camel(key)
        check = newer.get(name)
        if check is not None:
            normalised, ok = check(item)
            if not ok and self.strict:
                snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
                sub = f"{path}.{snake}" if path else snake
                self.fail(sub, f"Invalid value at '{sub}', {_short(item)}")
            out[name] = normalised
            return
        if self.strict:
            where = f" at '{path}'" if path else ""
            self.fail(path, f'Unknown name "{key}"{where}: Cannot find field.')
        else:
            out[key] = item

    def field(self, item: Any, field: FieldDescriptor, sub: str, key: str, path: str) -> Any:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.is_repeated and not is_map:
            if not isinstance(item, list):
                self.fail(sub, f"Invalid value at '{sub}', {_short(item)}")
                return item
            return [self.single(v, field, f"{sub}[{i}]") for i, v in enumerate(item)]
        takes_list = (
            field.message_type is not None and field.message_type.full_name in _PASS_THROUGH
        )
        if isinstance(item, list) and not takes_list:
            where = f" at '{path}'" if path else ""
            self.fail(
                path,
                f'Unknown name "{key}"{where}: Proto field is not repeating, cannot start list.',
            )
            return item
        if is_map:
            if not isinstance(item, dict):
                self.fail(sub, f"Invalid value at '{sub}', {_short(item)}")
                return item
            value_field = field.message_type.fields_by_name["value"]
            return {
                k: self.single(v, value_field, f"{sub}[{i}].value")
                for i, (k, v) in enumerate(item.items())
            }
        return self.single(item, field, sub)

    def single(self, item: Any, field: FieldDescriptor, sub: str) -> Any:
        if field.message_type is not None:
            return self.message(item, field.message_type, sub)
        if field.enum_type is not None:
            return self.enum(item, field, sub)
        return item

    def enum(self, item: Any, field: FieldDescriptor, sub: str) -> Any:
        enum = field.enum_type
        if isinstance(item, str) and enum.values_by_name.get(item.upper()) is not None:
            return item.upper()
        if isinstance(item, int) and not isinstance(item, bool) and item in enum.values_by_number:
            return enum.values_by_number[item].name
        if self.strict:
            self.fail(
                sub,
                f"Invalid value at '{sub}' (type.googleapis.com/{enum.full_name}), {_short(item)}",
            )
        return item


def _root(kind: str, version: str) -> Any:
    # v1 is read with the v1beta descriptors: the compiled v1 ones lack tools, systemInstruction
    # and more, yet google-genai (3.x) defaults to v1 and sends all of them, so v1 takes them now.
    del version
    return getattr(v1beta_types, kind)


def normalise_request(body: Any, kind: str, version: str, *, strict: bool) -> dict[str, Any]:
    """Walk ``body`` as a ``kind`` message; strict: refuse unknown names and bad values."""
    if not isinstance(body, dict):
        raise invalid_json([("", f"Invalid value (Object), {_short(body)}")])
    root = _root(kind, version)
    walker = _Walker(strict)
    out = walker.message(body, root.meta.pb.DESCRIPTOR, "")
    if walker.violations:
        raise invalid_json(walker.violations)
    if strict:
        try:
            # Newer fields already passed their own checks above, so the rest may be skipped.
            json_format.ParseDict(out, root.pb()(), ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise invalid_json([("", str(exc).split(" at ")[0])]) from exc
    return out
