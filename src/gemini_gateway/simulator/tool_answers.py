"""Answers for tools and structured output: function calls, code execution, search grounding, JSON.

Values come from the declared schemas (Gemini ``Schema`` with upper-case types, or plain JSON
Schema from ``parametersJsonSchema``/``responseJsonSchema``), so the arguments a client receives
conform to what it declared: required properties for function calls, every property for JSON
answers, the first ``enum`` value where one is given.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

import orjson


def function_declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]


def has_tool(body: dict[str, Any], *names: str) -> bool:
    return any(name in tool for tool in body.get("tools") or [] for name in names)


def functions_to_call(body: dict[str, Any], prompt: str) -> list[dict[str, Any]]:
    """The declarations to call, honouring ``toolConfig.functionCallingConfig`` mode and names."""
    declarations = function_declarations(body)
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or config.get("mode") == "NONE":
        return []
    allowed = config.get("allowedFunctionNames") or []
    chosen = [d for d in declarations if not allowed or d.get("name") in allowed]
    # A prompt that says PARALLEL gets two calls, so clients can test parallel tool calls.
    return chosen[: 2 if "PARALLEL" in prompt else 1]


def call_arguments(declaration: dict[str, Any]) -> dict[str, Any]:
    schema = declaration.get("parameters") or declaration.get("parametersJsonSchema") or {}
    return _object_value(schema, required_only=True)


def sample_value(
    schema: dict[str, Any], name: str = "value", *, required_only: bool = False
) -> Any:
    """A value that conforms to a simple schema; deterministic."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return sample_value(schema[key][0], name, required_only=required_only)
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "string")
    kind = str(kind).lower()
    if kind == "object" or "properties" in schema:
        return _object_value(schema, required_only=required_only)
    if kind == "array":
        return [sample_value(schema.get("items") or {}, name, required_only=required_only)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"sample {name}"


def _object_value(schema: dict[str, Any], *, required_only: bool) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    names = (schema.get("required") or []) if required_only else list(properties)
    return {n: sample_value(properties.get(n) or {}, n, required_only=required_only) for n in names}


def json_answer(config: dict[str, Any], fallback_text: str) -> str | None:
    """Text for ``responseMimeType`` JSON or enum answers; None for other types."""
    mime = config.get("responseMimeType")
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if mime == "text/x.enum" and schema and schema.get("enum"):
        return str(schema["enum"][0])
    if mime != "application/json":
        return None
    value = sample_value(schema) if schema else {"answer": fallback_text}
    return orjson.dumps(value).decode()


def code_execution_parts(prompt: str) -> list[dict[str, Any]]:
    n = 10 + len(prompt) % 40
    total = n * (n - 1) // 2
    return [
        {"text": "I will compute this with code."},
        {"executableCode": {"language": "PYTHON", "code": f"print(sum(range({n})))\n"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": f"{total}\n"}},
        {"text": f"The result is {total}."},
    ]


def grounding_metadata(prompt: str, answer: str) -> dict[str, Any]:
    """Grounding shaped like Google Search's: web chunks, supports over the answer's bytes."""
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    chunks = [
        {
            "web": {
                "uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
                f"sim{digest[i * 8 : i * 8 + 16]}",
                "title": title,
            }
        }
        for i, title in enumerate(("example.com", "wikipedia.org"))
    ]
    first = answer.split(". ")[0]
    return {
        "webSearchQueries": [prompt[:100]],
        "searchEntryPoint": {
            "renderedContent": f'<div class="sim-search"><a href="https://www.google.com/search?q='
            f'{quote(prompt[:100])}">{prompt[:100]}</a></div>'
        },
        "groundingChunks": chunks,
        "groundingSupports": [
            {
                "segment": {"startIndex": 0, "endIndex": len(first.encode()), "text": first},
                "groundingChunkIndices": [0, 1],
                "confidenceScores": [0.92, 0.81],
            }
        ],
    }
