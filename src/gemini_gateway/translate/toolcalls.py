"""Tool calls both ways, and the thought signatures they must carry.

Gemini → OpenAI: each ``functionCall`` part becomes a ``tool_calls`` entry with a fresh id,
``type: function``, the name and ``args`` as a JSON string.

OpenAI → Gemini (history): an assistant's ``tool_calls`` become ``functionCall`` parts (arguments
parsed; bad JSON is an ``InvalidRequest``); ``tool`` messages become ``functionResponse`` parts
named after the call their ``tool_call_id`` answers. A JSON object result is sent as it is, any
other JSON value as ``{"result": value}``, other text as ``{"content": text}``.

Thought signatures (ai.google.dev/gemini-api/docs/thought-signatures): Gemini 2.5/3 put a
``thoughtSignature`` on a functionCall part (on the first of parallel calls), and Gemini 3 refuses
a history whose function calls lost it. Clients such as the openai SDK and LangChain echo back only
the standard fields, so the signature rides in the tool call id:
``call_<24 random chars>__ts_<signature as URL-safe base64, no padding>``. Such ids are long (a
signature is often hundreds of bytes); OpenAI puts no limit on tool call ids. Google's own shape,
``extra_content: {"google": {"thought_signature": …}}`` on the tool call, is emitted too and
preferred when a client sends it back. For Gemini 3, a model turn whose function calls carry no
signature at all gets Google's documented placeholder ``skip_thought_signature_validator`` on its
first call, so histories from other models or older clients still work.

Gemini's own call ids: Gemini 3 gives each ``functionCall`` an ``id`` and expects it back on that
call and on the matching ``functionResponse`` (ai.google.dev/api/caching#FunctionCall). It rides
in the tool call id too, hex-encoded so no separator can occur inside it:
``call_<24 random chars>__id_<hex of Gemini's id>__ts_<signature>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gemini_gateway.errors import InvalidRequest

# FunctionDeclaration.name: letters, digits, underscores, dots, colons and dashes, at most 64,
# starting with a letter or an underscore. OpenAI's: [A-Za-z0-9_-]{1,64}, any first character.
GEMINI_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")


def gemini_function_name(name: str) -> str:
    """The name Gemini is sent for a client's function: its own, or ``_`` + it where Gemini
    refuses the first character (a digit or a dash); ``client_function_name`` undoes it."""
    return name if GEMINI_FUNCTION_NAME.fullmatch(name) else "_" + name


def client_function_name(name: str, declared: Sequence[str]) -> str:
    """A ``functionCall`` name as the client declared it (``_2fa`` → ``2fa``, unless the client
    declared ``_2fa`` itself)."""
    if name in declared or not name.startswith("_") or name[1:] not in declared:
        return name
    return name[1:]


SIGNATURE_MARK = "__ts_"
GEMINI_ID_MARK = "__id_"
SKIP_SIGNATURE = "skip_thought_signature_validator"
_ID_ALPHABET = string.ascii_letters + string.digits


def new_tool_call_id(signature: str | None = None, gemini_id: str | None = None) -> str:
    """A unique ``call_…`` id; Gemini's call id and thought signature, if any, ride inside it."""
    base = "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))
    if gemini_id:
        base += GEMINI_ID_MARK + gemini_id.encode("utf-8").hex()
    if not signature:
        return base
    return base + SIGNATURE_MARK + _signature_to_id_text(signature)


def signature_from_tool_call_id(tool_call_id: str) -> str | None:
    """The thought signature a gateway-made tool call id carries, or None."""
    _, mark, text = tool_call_id.partition(SIGNATURE_MARK)
    if not mark or not text:
        return None
    return _id_text_to_signature(text)


def gemini_id_from_tool_call_id(tool_call_id: str) -> str | None:
    """Gemini's own ``functionCall.id`` a gateway-made tool call id carries, or None."""
    _, mark, rest = tool_call_id.partition(GEMINI_ID_MARK)
    if not mark:
        return None
    text = rest.split(SIGNATURE_MARK, 1)[0]
    try:
        return bytes.fromhex(text).decode("utf-8") or None
    except ValueError:  # not ours after all (UnicodeDecodeError is a ValueError)
        return None


def _signature_to_id_text(signature: str) -> str:
    # Gemini sends standard base64; the id holds the URL-safe alphabet without padding.
    return signature.replace("+", "-").replace("/", "_").rstrip("=")


def _id_text_to_signature(text: str) -> str:
    standard = text.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return text  # not base64 after all (a placeholder, say): pass it on as it came
    return standard


def function_call_to_tool_call(part: Mapping[str, Any], *, index: int | None = None,
                               declared: Sequence[str] = ()) -> dict[str, Any]:
    """One Gemini ``functionCall`` part → an OpenAI tool call (a stream delta with ``index``).

    The streaming shape is the same object plus ``index``: Gemini sends each call whole, so the
    first (and only) delta of a call carries id, type, name and all its arguments.
    """
    call = part.get("functionCall") or {}
    signature = part.get("thoughtSignature")
    out: dict[str, Any] = {}
    if index is not None:
        out["index"] = index
    gemini_id = call.get("id")
    out["id"] = new_tool_call_id(signature, gemini_id if isinstance(gemini_id, str) else None)
    out["type"] = "function"
    args = call.get("args")
    out["function"] = {
        "name": client_function_name(str(call.get("name", "")), declared),
        "arguments": json.dumps(args if args is not None else {}, ensure_ascii=False,
                                separators=(",", ":")),
    }
    if signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def function_calls_to_tool_calls(parts: Iterable[Mapping[str, Any]], *,
                                 single_call: bool = False, declared: Sequence[str] = ()
                                 ) -> list[dict[str, Any]]:
    """All ``functionCall`` parts of a candidate → ``message.tool_calls`` (first only if
    ``single_call``: the client set ``parallel_tool_calls: false``)."""
    calls = [function_call_to_tool_call(p, declared=declared) for p in parts if "functionCall" in p]
    return calls[:1] if single_call else calls


def tool_call_names(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Every assistant tool call id in the history → its function name."""
    names: dict[str, str] = {}
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping) and isinstance(call.get("id"), str):
                fn = call.get("function") or {}
                if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                    names[call["id"]] = fn["name"]
    return names


def tool_calls_to_parts(tool_calls: Sequence[Any], *, gemini3: bool,
                        param: str = "tool_calls") -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` → ``functionCall`` parts with their signatures."""
    parts: list[dict[str, Any]] = []
    prefix = param
    for i, call in enumerate(tool_calls):
        param = f"{prefix}[{i}]"
        if not isinstance(call, Mapping) or call.get("type", "function") != "function":
            raise InvalidRequest("Only function tool calls are supported.", param=param)
        fn = call.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise InvalidRequest("A tool call needs function.name.", param=f"{param}.function")
        part: dict[str, Any] = {
            "functionCall": {"name": gemini_function_name(fn["name"]),
                             "args": _parse_arguments(fn.get("arguments"), param)}
        }
        gemini_id = gemini_id_from_tool_call_id(call["id"]) if isinstance(call.get("id"), str) \
            else None
        if gemini_id:
            part["functionCall"]["id"] = gemini_id
        signature = _signature_of(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    if gemini3 and parts and not any("thoughtSignature" in p for p in parts):
        parts[0]["thoughtSignature"] = SKIP_SIGNATURE
    return parts


def _signature_of(call: Mapping[str, Any]) -> str | None:
    extra = call.get("extra_content")
    if isinstance(extra, Mapping):
        google = extra.get("google")
        if isinstance(google, Mapping) and isinstance(google.get("thought_signature"), str):
            return google["thought_signature"] or None
    call_id = call.get("id")
    return signature_from_tool_call_id(call_id) if isinstance(call_id, str) else None


def _parse_arguments(arguments: Any, param: str) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not isinstance(arguments, str):
        raise InvalidRequest("function.arguments must be a JSON string.",
                             param=f"{param}.function.arguments")
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        raise InvalidRequest(f"function.arguments is not valid JSON: {exc.msg}.",
                             param=f"{param}.function.arguments") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("function.arguments must encode a JSON object.",
                             param=f"{param}.function.arguments")
    return value


def tool_message_to_part(message: Mapping[str, Any], names: Mapping[str, str], *,
                         param: str = "messages") -> dict[str, Any]:
    """A ``tool`` message → a ``functionResponse`` part named after the call it answers."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise InvalidRequest(
            f"tool_call_id {call_id!r} does not match any tool call of an earlier assistant "
            "message.",
            param=f"{param}.tool_call_id",
        )
    response: dict[str, Any] = {"name": gemini_function_name(names[call_id]),
                                "response": tool_result_to_response(message.get("content"))}
    gemini_id = gemini_id_from_tool_call_id(call_id)
    if gemini_id:
        response["id"] = gemini_id
    return {"functionResponse": response}


def tool_result_to_response(content: Any) -> dict[str, Any]:
    """Tool output → ``functionResponse.response`` (which must be a JSON object)."""
    text = _content_text(content)
    try:
        value = json.loads(text)
    except ValueError:
        return {"content": text}
    if isinstance(value, dict):
        return value
    return {"result": value}


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content
                 if isinstance(p, Mapping) and p.get("type") == "text"]
        return "".join(t for t in texts if isinstance(t, str))
    raise InvalidRequest("A tool message's content must be a string or text parts.")


def tool_messages_to_content(messages: Sequence[Mapping[str, Any]], names: Mapping[str, str]
                             ) -> dict[str, Any]:
    """Consecutive ``tool`` messages → one ``user`` turn of ``functionResponse`` parts."""
    return {"role": "user", "parts": [tool_message_to_part(m, names) for m in messages]}


def message_tool_parts(message: Mapping[str, Any], names: Mapping[str, str], *, gemini3: bool,
                       param: str = "messages") -> list[dict[str, Any]]:
    """The Gemini parts for a ``tool``/``function`` message or an assistant's tool calls
    (``tool_calls``, or the deprecated ``function_call``)."""
    role = message.get("role")
    if role == "tool":
        return [tool_message_to_part(message, names, param=param)]
    if role == "function":  # deprecated: the function's name is on the message itself
        name = message.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("A function message needs a name.", param=f"{param}.name")
        return [{"functionResponse": {"name": gemini_function_name(name),
                                      "response": tool_result_to_response(message.get("content"))}}]
    calls = message.get("tool_calls")
    if not calls and isinstance(message.get("function_call"), Mapping):
        calls = [{"type": "function", "function": message["function_call"]}]
    if not isinstance(calls, list):
        raise InvalidRequest("tool_calls must be an array.", param=f"{param}.tool_calls")
    return tool_calls_to_parts(calls, gemini3=gemini3, param=f"{param}.tool_calls")
