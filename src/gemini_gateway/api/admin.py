"""The admin API under /admin/v1: licenses, upstream keys and usage totals, for operators' scripts.

Off unless GEMINI_GATEWAY_ADMIN_TOKEN is set (then every admin path answers 404, as if absent:
there is no default password). Callers send ``Authorization: Bearer <token>``, compared in constant
time. Shapes follow OpenAI's admin endpoints: objects carry ``id`` and ``object``, lists are
``{"object": "list", "data": [...]}``, deletions ``{"id", "object": "….deleted", "deleted": true}``,
times are Unix seconds. A license key appears only in the answers to create and rotate; upstream
keys only ever as their id and masked form.

After a change to upstream keys, ``state.extras["upstream_keys_changed"]`` (an async callable set
by app start-up, if any) is awaited so the running key pool can pick the change up.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from gemini_gateway.api.state import get_state
from gemini_gateway.errors import AuthenticationFailed, InvalidRequest, NotFound
from gemini_gateway.store._dates import parse_moment
from gemini_gateway.store.database import Store
from gemini_gateway.store.key_state import OPERATOR_REASON, describe_keys
from gemini_gateway.store.upstream_keys import upstream_key_id

routes = web.RouteTableDef()
PREFIX = "/admin/v1"


def _store(request: web.Request) -> Store:
    """The store, once the caller has shown the admin token."""
    state = get_state(request)
    token = str(state.settings.admin_token or "")
    if not token:
        raise NotFound("No such endpoint.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise AuthenticationFailed("Invalid admin token.", code="invalid_admin_token")
    store: Store = state.store
    return store


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


def _moment(value: Any, *, param: str, future: bool) -> datetime | None:
    """Unix seconds, an ISO date/time or a duration (``30d``); null is none."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return parse_moment(value, param=param, future=future)
    raise InvalidRequest(f"{param}: Unix seconds, a date or a duration such as 30d.", param=param)


def _license_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = dict(body)
    if "expires_at" in fields:
        fields["expires_at"] = _moment(fields["expires_at"], param="expires_at", future=True)
    return fields


async def _keys_changed(request: web.Request) -> None:
    hook = get_state(request).extras.get("upstream_keys_changed")
    if hook is not None:
        await hook()


@routes.get(PREFIX + "/licenses")
async def list_licenses(request: web.Request) -> web.Response:
    found = await _store(request).licenses.list()
    return _json({"object": "list", "data": [lic.to_dict() for lic in found]})


@routes.post(PREFIX + "/licenses")
async def create_license(request: web.Request) -> web.Response:
    store = _store(request)
    fields = _license_fields(await _body(request))
    name = fields.pop("name", None)
    if not isinstance(name, str):
        raise InvalidRequest("name is required.", param="name")
    lic, plaintext = await store.licenses.create(name=name, **fields)
    return _json({**lic.to_dict(), "key": plaintext})


@routes.get(PREFIX + "/licenses/{ref}")
async def get_license(request: web.Request) -> web.Response:
    lic = await _store(request).licenses.get(request.match_info["ref"])
    return _json(lic.to_dict())


@routes.post(PREFIX + "/licenses/{ref}")
@routes.patch(PREFIX + "/licenses/{ref}")
async def update_license(request: web.Request) -> web.Response:
    store = _store(request)
    fields = _license_fields(await _body(request))
    lic = await store.licenses.update(request.match_info["ref"], **fields)
    return _json(lic.to_dict())


@routes.delete(PREFIX + "/licenses/{ref}")
async def delete_license(request: web.Request) -> web.Response:
    lic = await _store(request).licenses.delete(request.match_info["ref"])
    return _json({"id": lic.id, "object": "license.deleted", "deleted": True})


@routes.post(PREFIX + "/licenses/{ref}/rotate")
async def rotate_license(request: web.Request) -> web.Response:
    lic, plaintext = await _store(request).licenses.rotate(request.match_info["ref"])
    return _json({**lic.to_dict(), "key": plaintext})


@routes.get(PREFIX + "/upstream_keys")
async def list_upstream_keys(request: web.Request) -> web.Response:
    """Stored and environment keys, each with its live state as this gateway sees it."""
    store = _store(request)
    state = get_state(request)
    records = await store.upstream_keys.list()
    env = state.settings.upstream_key_list
    data = describe_keys(records, env, await _snapshots(request))
    return _json({"object": "list", "data": data})


async def _snapshots(request: web.Request) -> dict[str, Any]:
    """Each pooled key's state as this gateway sees it, fresh from the shared state."""
    pool = get_state(request).pool
    if pool is None:
        return {}
    await pool.refresh()  # the shared state's news, and our unflushed counters
    return {snap.id: snap for snap in pool.snapshot()}


async def _set_key_enabled(request: web.Request, enabled: bool) -> dict[str, Any]:
    """A stored key's flag (and the pool follows); any pooled key's disabled flag or cool-down."""
    store = _store(request)
    state = get_state(request)
    key_id = request.match_info["key_id"]
    env = {upstream_key_id(s): s for s in state.settings.upstream_key_list}
    stored = {r.id for r in await store.upstream_keys.list()}
    records = []
    if key_id not in env or key_id in stored:
        records = [await store.upstream_keys.set_enabled(key_id, enabled)]
    await _keys_changed(request)
    pool = state.pool
    if pool is not None and pool.get(key_id) is not None:
        if enabled:
            await pool.enable(key_id)
        else:
            await pool.disable(key_id, OPERATOR_REASON)
    env_secrets = [] if records else [env[key_id]]
    return describe_keys(records, env_secrets, await _snapshots(request))[0]


@routes.post(PREFIX + "/upstream_keys")
async def add_upstream_key(request: web.Request) -> web.Response:
    store = _store(request)
    body = await _body(request)
    secret, note = body.get("key"), body.get("note") or ""
    if not isinstance(secret, str) or not isinstance(note, str):
        raise InvalidRequest("key (a string) is required; note is optional text.", param="key")
    record = await store.upstream_keys.add(secret, note=note)
    await _keys_changed(request)
    return _json(describe_keys([record], [], await _snapshots(request))[0])


@routes.post(PREFIX + "/upstream_keys/{key_id}/disable")
async def disable_upstream_key(request: web.Request) -> web.Response:
    return _json(await _set_key_enabled(request, False))


@routes.post(PREFIX + "/upstream_keys/{key_id}/enable")
async def enable_upstream_key(request: web.Request) -> web.Response:
    return _json(await _set_key_enabled(request, True))


@routes.delete(PREFIX + "/upstream_keys/{key_id}")
async def remove_upstream_key(request: web.Request) -> web.Response:
    record = await _store(request).upstream_keys.remove(request.match_info["key_id"])
    await _keys_changed(request)
    return _json({"id": record.id, "object": "upstream_key.deleted", "deleted": True})


@routes.get(PREFIX + "/usage")
async def usage_totals(request: web.Request) -> web.Response:
    store = _store(request)
    query = request.query
    since_text = query.get("since")
    since = None
    if since_text:
        value: Any = int(since_text) if since_text.isdigit() else since_text
        since = _moment(value, param="since", future=False)
    by = query.get("by") or None
    totals = await store.ledger.totals(since=since, license=query.get("license") or None, by=by)
    return _json(
        {
            "object": "list",
            "since": int(since.timestamp()) if since else None,
            "by": by,
            "data": [t.to_dict() for t in totals],
        }
    )


# --- OpenAPI fragment, merged by the app into /openapi.json -----------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "401": {"description": "Missing or wrong admin token."},
        "404": {"description": "Not found, or the admin API is off (no admin token set)."},
    }


def _list_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref(name)}},
    }


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": ["admin"], "security": [{"AdminToken": []}],
            "responses": responses, **extra}  # fmt: skip


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": description}  # fmt: skip


_LICENSE_REF = _path_param("ref", "License id (lic_…), name or key prefix.")
_KEY_ID = _path_param("key_id", "Upstream key id (k-…).")
_DELETED = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "object": {"type": "string"},
                   "deleted": {"type": "boolean"}},
}  # fmt: skip

OPENAPI_PATHS: dict[str, Any] = {
    PREFIX + "/licenses": {
        "get": _op("List licenses", _ok(_list_of("AdminLicense"))),
        "post": _op(
            "Create a license (the answer holds its key, shown only this once)",
            _ok(_ref("AdminLicenseWithKey")),
            requestBody=_json_body(_ref("AdminLicenseCreate")),
        ),
    },
    PREFIX + "/licenses/{ref}": {
        "parameters": [_LICENSE_REF],
        "get": _op("Get a license", _ok(_ref("AdminLicense"))),
        "post": _op(
            "Update a license",
            _ok(_ref("AdminLicense")),
            requestBody=_json_body(_ref("AdminLicenseUpdate")),
        ),
        "patch": _op(
            "Update a license",
            _ok(_ref("AdminLicense")),
            requestBody=_json_body(_ref("AdminLicenseUpdate")),
        ),
        "delete": _op("Delete a license (its usage rows stay)", _ok(_DELETED)),
    },  # fmt: skip
    PREFIX + "/licenses/{ref}/rotate": {
        "parameters": [_LICENSE_REF],
        "post": _op("Issue a new key; the old one stops working", _ok(_ref("AdminLicenseWithKey"))),
    },
    PREFIX + "/upstream_keys": {
        "get": _op("List upstream keys stored in the database", _ok(_list_of("AdminUpstreamKey"))),
        "post": _op(
            "Store an upstream key",
            _ok(_ref("AdminUpstreamKey")),
            requestBody=_json_body(
                {
                    "type": "object",
                    "required": ["key"],
                    "properties": {"key": {"type": "string"}, "note": {"type": "string"}},
                }
            ),  # fmt: skip
        ),
    },
    PREFIX + "/upstream_keys/{key_id}": {
        "parameters": [_KEY_ID],
        "delete": _op("Remove an upstream key", _ok(_DELETED)),
    },
    PREFIX + "/upstream_keys/{key_id}/disable": {
        "parameters": [_KEY_ID],
        "post": _op("Stop using an upstream key", _ok(_ref("AdminUpstreamKey"))),
    },
    PREFIX + "/upstream_keys/{key_id}/enable": {
        "parameters": [_KEY_ID],
        "post": _op("Use an upstream key again", _ok(_ref("AdminUpstreamKey"))),
    },
    PREFIX + "/usage": {
        "get": _op(
            "Usage totals from the ledger",
            _ok(_list_of("AdminUsageTotals")),
            parameters=[
                {
                    "name": "license",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Only this license (id or name).",
                },
                {
                    "name": "since",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Unix seconds, a date (2026-11-01) or a duration (7d).",
                },
                {
                    "name": "by",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["model", "day", "license"]},
                },
            ],  # fmt: skip
        ),
    },
}

_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
_LICENSE_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 200},
    "expires_at": {"type": ["integer", "string", "null"],
                   "description": "Unix seconds, a date, a duration such as 30d, or null."},
    "enabled": {"type": "boolean"},
    "models": {"type": "array", "items": {"type": "string"},
               "description": "fnmatch patterns such as gemini-2.5-*; empty allows all."},
    "networks": {"type": "array", "items": {"type": "string"},
                 "description": "Client CIDRs; empty allows any."},
    "rpm": _NULLABLE_INT,
    "tpm": _NULLABLE_INT,
    "quota": _NULLABLE_INT,
    "quota_period": {"type": "string", "enum": ["total", "day", "month"]},
    "concurrency": _NULLABLE_INT,
    "note": {"type": "string"},
}  # fmt: skip
_LICENSE_OUT: dict[str, Any] = {
    **_LICENSE_FIELDS,
    "id": {"type": "string"},
    "object": {"const": "license"},
    "redacted_value": {"type": "string"},
    "created_at": {"type": "integer"},
    "updated_at": {"type": "integer"},
    "expires_at": {"type": ["integer", "null"]},
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "AdminLicense": {"type": "object", "properties": _LICENSE_OUT},
    "AdminLicenseWithKey": {
        "type": "object",
        "properties": {**_LICENSE_OUT, "key": {"type": "string", "description": "gg-…"}},
    },
    "AdminLicenseCreate": {"type": "object", "required": ["name"], "properties": _LICENSE_FIELDS},
    "AdminLicenseUpdate": {"type": "object", "properties": _LICENSE_FIELDS},
    "AdminUpstreamKey": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "upstream_key"},
            "redacted_value": {"type": "string"},
            "enabled": {"type": "boolean"},
            "created_at": {"type": ["integer", "null"]},
            "updated_at": {"type": ["integer", "null"]},
            "note": {"type": "string"},
            "source": {"type": "string", "enum": ["database", "env"]},
            "state": {"type": "string", "enum": ["healthy", "cooling", "disabled"]},
            "cooling_until": {"type": ["integer", "null"], "description": "Unix seconds."},
            "reason": {"type": ["string", "null"], "description": "Why cooling or disabled."},
            "last_error": {"type": ["string", "null"]},
            "successes": {"type": "integer"},
            "failures": {"type": "integer"},
        },
    },
    "AdminUsageTotals": {
        "type": "object",
        "properties": {
            "object": {"const": "usage.totals"},
            "group": {"type": ["string", "null"]},
            **{
                name: {"type": "integer"}
                for name in (
                    "requests",
                    "errors",
                    "prompt_tokens",
                    "completion_tokens",
                    "reasoning_tokens",
                    "cached_tokens",
                    "total_tokens",
                )
            },
        },
    },  # fmt: skip
}
OPENAPI_SECURITY_SCHEMES: dict[str, Any] = {
    "AdminToken": {"type": "http", "scheme": "bearer", "description": "GEMINI_GATEWAY_ADMIN_TOKEN"}
}
