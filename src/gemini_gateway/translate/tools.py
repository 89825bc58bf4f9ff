"""OpenAI ``tools``/``tool_choice``/``parallel_tool_calls``/``web_search_options`` → Gemini.

- Each ``{"type": "function"}`` tool (and the legacy ``functions`` list) becomes one
  ``functionDeclarations`` entry. Its JSON Schema goes as ``parametersJsonSchema`` where the
  model takes it (Gemini 2.5 and later), else converted to ``parameters`` (see ``schema.py``).
  A function without parameters gets no parameters key.
- Built-in tools, by the product page's convention: a function tool named ``codeExecution``,
  ``googleSearch`` or ``urlContext`` turns on that Gemini tool instead of declaring a function
  (``code_execution``, ``google_search``, ``url_context`` are accepted too). OpenAI's
  ``web_search_options`` turns on ``googleSearch``.
- Gemini before 3 cannot mix built-in tools with function declarations in one request: that is
  an ``InvalidRequest`` rather than a tool silently dropped. Gemini 3 can, with
  ``toolConfig.includeServerSideToolInvocations`` (ai.google.dev/gemini-api/docs/tool-combination).
- ``tool_choice``: ``none``/``auto``/``required`` → ``functionCallingConfig.mode``
  ``NONE``/``AUTO``/``ANY``; a named function → ``ANY`` with ``allowedFunctionNames``;
  ``allowed_tools`` → ``ANY`` with those names (``required``) or only those functions
  declared (``auto``, since Gemini takes ``allowedFunctionNames`` with ``ANY`` only).
- ``parallel_tool_calls: false``: Gemini has no switch for it, so the plan records it and the
  response side keeps only the first function call of a turn (``ToolPlan.single_call``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.models import is_gemini3
from gemini_gateway.translate.schema import (
    json_schema_for_gemini,
    json_schema_to_gemini_schema,
    takes_json_schema,
)
from gemini_gateway.translate.toolcalls import GEMINI_FUNCTION_NAME, gemini_function_name

# OpenAI-side names of built-in tools → the Gemini Tool field they turn on.
BUILTIN_TOOLS = {
    "codeExecution": "codeExecution",
    "code_execution": "codeExecution",
    "googleSearch": "googleSearch",
    "google_search": "googleSearch",
    "urlContext": "urlContext",
    "url_context": "urlContext",
}
# OpenAI's function names; those Gemini refuses only for their first character are sent as
# ``_`` + the name and mapped back (toolcalls.gemini_function_name / client_function_name).
_OPENAI_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")
_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}


@dataclass(frozen=True)
class ToolPlan:
    """The tool part of a Gemini request, plus what the response side must honour."""

    tools: list[dict[str, Any]] = field(default_factory=list)  # Gemini `tools`
    tool_config: dict[str, Any] | None = None  # Gemini `toolConfig`
    function_names: tuple[str, ...] = ()  # declared functions, in the client's order
    builtins: tuple[str, ...] = ()  # Gemini built-in tool fields turned on
    single_call: bool = False  # parallel_tool_calls: false

    def apply(self, body: dict[str, Any]) -> None:
        """Set ``tools`` and ``toolConfig`` on a GenerateContentRequest body."""
        if self.tools:
            body["tools"] = self.tools
        if self.tool_config:
            body["toolConfig"] = self.tool_config


def tools_to_gemini(request: Mapping[str, Any], model: str) -> ToolPlan:
    """Read every tool-related field of a chat request into a ``ToolPlan``."""
    functions, builtins = _split_tools(request)
    if request.get("web_search_options") is not None and "googleSearch" not in builtins:
        builtins.append("googleSearch")
    choice = request.get("tool_choice", request.get("function_call"))
    declared = [f["name"] for f in functions]
    mode, allowed = _tool_choice(choice, declared)
    if mode == "AUTO" and allowed is not None:
        functions = [f for f in functions if f["name"] in allowed]
        allowed = None
    if mode == "NONE" and not functions:
        mode = None
    if builtins and functions and not is_gemini3(model):
        raise InvalidRequest(
            f"{model} cannot combine built-in tools ({', '.join(builtins)}) with function "
            "tools in one request; Gemini 3 models can.",
            param="tools",
        )
    tools: list[dict[str, Any]] = []
    if functions:
        json_schema = takes_json_schema(model)
        tools.append({"functionDeclarations": [_declaration(f, json_schema) for f in functions]})
    for name in builtins:
        tools.append({name: {}})
    tool_config: dict[str, Any] = {}
    if mode is not None and functions:
        calling: dict[str, Any] = {"mode": mode}
        if allowed:
            calling["allowedFunctionNames"] = [gemini_function_name(n) for n in allowed]
        tool_config["functionCallingConfig"] = calling
    if builtins and functions:
        tool_config["includeServerSideToolInvocations"] = True
    return ToolPlan(
        tools=tools,
        tool_config=tool_config or None,
        function_names=tuple(declared),
        builtins=tuple(builtins),
        single_call=request.get("parallel_tool_calls") is False,
    )


def _split_tools(request: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Function definitions (OpenAI shape) and built-in Gemini tool fields, in request order."""
    raw_tools = request.get("tools")
    entries: list[Any] = []
    if raw_tools is not None:
        if not isinstance(raw_tools, list):
            raise InvalidRequest("tools must be an array.", param="tools")
        for i, tool in enumerate(raw_tools):
            if not isinstance(tool, Mapping):
                raise InvalidRequest("Each tool must be an object.", param=f"tools[{i}]")
            if tool.get("type", "function") != "function":
                raise InvalidRequest(
                    f"Tool type {tool.get('type')!r} is not supported; use function tools.",
                    param=f"tools[{i}].type",
                )
            entries.append((f"tools[{i}].function", tool.get("function")))
    legacy = request.get("functions")
    if isinstance(legacy, list):
        entries.extend((f"functions[{i}]", f) for i, f in enumerate(legacy))
    functions: list[dict[str, Any]] = []
    builtins: list[str] = []
    seen: set[str] = set()
    all_names = {fn["name"] for _, fn in entries if isinstance(fn, Mapping) and
                 isinstance(fn.get("name"), str)}
    for param, fn in entries:
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise InvalidRequest("A function tool needs a name.", param=f"{param}.name")
        name = fn["name"]
        if name in BUILTIN_TOOLS:
            if BUILTIN_TOOLS[name] not in builtins:
                builtins.append(BUILTIN_TOOLS[name])
            continue
        if not GEMINI_FUNCTION_NAME.fullmatch(name) and not _OPENAI_FUNCTION_NAME.fullmatch(name):
            raise InvalidRequest(
                f"Function name {name!r} is not valid: use at most 64 letters, digits, '_', '.', "
                "':' or '-', starting with a letter or an underscore (or up to 63 letters, "
                "digits, '_' or '-' starting otherwise).",
                param=f"{param}.name",
            )
        if name in seen:
            raise InvalidRequest(f"Function {name!r} is declared twice.", param=f"{param}.name")
        alias = gemini_function_name(name)
        if alias != name and alias in all_names:
            raise InvalidRequest(
                f"Functions {name!r} and {alias!r} would both reach Gemini as {alias!r} (Gemini "
                "refuses a name that starts with a digit or a dash); rename one.",
                param=f"{param}.name",
            )
        seen.add(name)
        functions.append(dict(fn))
    return functions, builtins


def _declaration(fn: Mapping[str, Any], json_schema: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": gemini_function_name(fn["name"])}
    if isinstance(fn.get("description"), str) and fn["description"]:
        out["description"] = fn["description"]
    params = fn.get("parameters")
    if params is None or _is_empty_object(params):
        return out  # Gemini: "For function with no parameters, this can be left unset."
    if not isinstance(params, Mapping):
        raise InvalidRequest(f"Parameters of {fn['name']!r} must be a JSON schema object.")
    if json_schema:
        schema = json_schema_for_gemini(params)
        schema.setdefault("type", "object")  # must describe an object (parametersJsonSchema)
        out["parametersJsonSchema"] = schema
    else:
        out["parameters"] = json_schema_to_gemini_schema(params)
    return out


def _is_empty_object(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    rest = {k for k in schema if k not in ("type", "$schema", "additionalProperties", "title",
                                            "required", "properties", "description")}
    return schema.get("type", "object") == "object" and not schema.get("properties") \
        and not rest and not schema.get("required")


def _tool_choice(choice: Any, declared: Sequence[str]) -> tuple[str | None, list[str] | None]:
    """(functionCallingConfig.mode, allowed names) for a ``tool_choice`` value."""
    if choice is None:
        return None, None
    if isinstance(choice, str):
        if choice not in _MODES:
            raise InvalidRequest(f"tool_choice {choice!r} is not one of none, auto, required.",
                                 param="tool_choice")
        if choice == "required" and not declared:
            raise InvalidRequest("tool_choice 'required' needs at least one function tool.",
                                 param="tool_choice")
        return _MODES[choice], None
    if not isinstance(choice, Mapping):
        raise InvalidRequest("tool_choice must be a string or an object.", param="tool_choice")
    kind = choice.get("type", "function")
    if kind == "function":
        # {"type": "function", "function": {"name": ...}}; legacy function_call: {"name": ...}
        fn = choice.get("function", choice)
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if name in BUILTIN_TOOLS:
            return None, None  # a built-in tool is on whenever it is listed
        _check_declared([name], declared)
        return "ANY", [name]
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools")
        if not isinstance(spec, Mapping):
            raise InvalidRequest("tool_choice.allowed_tools must be an object.",
                                 param="tool_choice.allowed_tools")
        names = [
            t["function"].get("name") for t in spec.get("tools") or []
            if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
            and t["function"].get("name") not in BUILTIN_TOOLS
        ]
        _check_declared(names, declared)
        mode = spec.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest("tool_choice.allowed_tools.mode must be auto or required.",
                                 param="tool_choice.allowed_tools.mode")
        return ("ANY" if mode == "required" else "AUTO"), names
    raise InvalidRequest(f"tool_choice type {kind!r} is not supported.", param="tool_choice")


def _check_declared(names: Sequence[Any], declared: Sequence[str]) -> None:
    for name in names:
        if not isinstance(name, str) or name not in declared:
            raise InvalidRequest(f"tool_choice names function {name!r}, which is not in tools.",
                                 param="tool_choice")


def check_tools_with_json_output(plan: ToolPlan, generation: Mapping[str, Any], model: str
                                 ) -> None:
    """Gemini before 3 refuses tools together with JSON output ("Tool use with a response mime
    type: 'application/json' is unsupported"): say so in OpenAI's terms instead."""
    if plan.tools and generation.get("responseMimeType") == "application/json" \
            and not is_gemini3(model):
        raise InvalidRequest(
            f"{model} cannot use tools and a JSON response_format in one request; "
            "Gemini 3 models can.",
            param="response_format",
        )
