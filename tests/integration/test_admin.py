"""The admin API over real HTTP: an aiohttp server with just the admin routes and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from gemini_gateway.api import admin
from gemini_gateway.api.state import STATE, AppState
from gemini_gateway.errors import GatewayError
from gemini_gateway.store.database import Store
from gemini_gateway.store.ledger import LedgerEntry
from tests.fixtures.store import store_settings

TOKEN = "admin-token-for-tests-0123456789"
UPSTREAM_KEY = "AIzaSyADMIN-test-key-00000000000000wxyz"


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stand-in for api/errors.py: the OpenAI envelope from our exceptions."""
    try:
        return await handler(request)
    except GatewayError as exc:
        return web.json_response({"error": exc.to_dict()}, status=exc.status)


@dataclass
class Admin:
    url: str
    session: aiohttp.ClientSession
    store: Store
    hook_calls: list[str] = field(default_factory=list)

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.session.request(
            method, self.url + path, json=body, headers=headers
        ) as response:
            text = await response.text()
            for secret in (UPSTREAM_KEY,):
                assert secret not in text
            return response.status, await response.json(content_type=None)


async def _serve(tmp_path: Path, admin_token: str) -> AsyncIterator[Admin]:
    settings = store_settings(tmp_path / "data", admin_token=admin_token)
    store = await Store.open(settings)
    app = web.Application(middlewares=[_errors])
    state = AppState(settings=settings, store=store)
    hook_calls: list[str] = []

    async def keys_changed() -> None:
        hook_calls.append("changed")

    state.extras["upstream_keys_changed"] = keys_changed
    app[STATE] = state
    app.add_routes(admin.routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        try:
            yield Admin(f"http://127.0.0.1:{port}/admin/v1", session, store, hook_calls)
        finally:
            await runner.cleanup()
            await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Admin]:
    async for admin_api in _serve(tmp_path, TOKEN):
        yield admin_api


@pytest.fixture
async def api_off(tmp_path: Path) -> AsyncIterator[Admin]:
    async for admin_api in _serve(tmp_path, ""):
        yield admin_api


def _assert_error(status: int, body: Any, expected_status: int, error_type: str) -> None:
    assert status == expected_status
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == error_type


def _assert_schema(data: Any, name: str) -> None:
    """Validate against the OpenAPI fragment, and insist it documents every field returned."""
    schema = admin.OPENAPI_SCHEMAS[name]
    jsonschema.Draft202012Validator(schema).validate(data)
    assert set(data) == set(schema["properties"])


async def test_off_without_an_admin_token(api_off: Admin) -> None:
    for token in (None, "", "anything"):
        status, body = await api_off.call("GET", "/licenses", token=token)
        _assert_error(status, body, 404, "not_found_error")


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
async def test_wrong_token_is_401(api: Admin, token: str | None) -> None:
    status, body = await api.call("GET", "/licenses", token=token)
    _assert_error(status, body, 401, "authentication_error")


async def test_license_lifecycle(api: Admin) -> None:
    status, created = await api.call(
        "POST", "/licenses",
        {"name": "alice", "rpm": 60, "models": ["gemini-2.5-*"], "expires_at": "30d",
         "quota": 1000000, "quota_period": "month", "note": "team a"},
    )  # fmt: skip
    assert status == 200
    _assert_schema(created, "AdminLicenseWithKey")
    key = created["key"]
    assert key.startswith("gg-") and created["redacted_value"] == key[:11] + "…"
    assert (await api.store.licenses.authenticate(key)) is not None

    status, listed = await api.call("GET", "/licenses")
    assert status == 200 and listed["object"] == "list"
    assert [x["id"] for x in listed["data"]] == [created["id"]]
    assert "key" not in listed["data"][0]
    _assert_schema(listed["data"][0], "AdminLicense")

    status, got = await api.call("GET", "/licenses/alice")
    assert status == 200 and got == listed["data"][0]

    changes = {"enabled": False, "expires_at": None, "tpm": 500}
    status, updated = await api.call("PATCH", f"/licenses/{created['id']}", changes)
    assert status == 200 and updated["enabled"] is False and updated["expires_at"] is None
    assert updated["tpm"] == 500 and updated["rpm"] == 60

    status, rotated = await api.call("POST", "/licenses/alice/rotate")
    assert status == 200 and rotated["key"] != key and rotated["id"] == created["id"]
    _assert_schema(rotated, "AdminLicenseWithKey")

    status, deleted = await api.call("DELETE", "/licenses/alice")
    assert (status, deleted) == (200, {"id": created["id"], "object": "license.deleted",
                                       "deleted": True})  # fmt: skip
    status, body = await api.call("GET", "/licenses/alice")
    _assert_error(status, body, 404, "not_found_error")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-name"),
        pytest.param({"name": "x", "rpm": "fast"}, id="rpm-text"),
        pytest.param({"name": "x", "networks": ["nowhere"]}, id="network"),
        pytest.param({"name": "x", "expires_at": "someday"}, id="expires"),
        pytest.param({"name": "x", "admin": True}, id="unknown-field"),
        pytest.param([1, 2], id="not-an-object"),
    ],
)
async def test_bad_license_bodies_are_400(api: Admin, body: Any) -> None:
    status, answer = await api.call("POST", "/licenses", body)
    _assert_error(status, answer, 400, "invalid_request_error")


async def test_upstream_keys(api: Admin) -> None:
    status, added = await api.call("POST", "/upstream_keys", {"key": UPSTREAM_KEY, "note": "p1"})
    assert status == 200 and added["redacted_value"] == "AIza…wxyz" and added["note"] == "p1"
    _assert_schema(added, "AdminUpstreamKey")
    key_id = added["id"]
    status, listed = await api.call("GET", "/upstream_keys")
    assert [x["id"] for x in listed["data"]] == [key_id]
    status, disabled = await api.call("POST", f"/upstream_keys/{key_id}/disable")
    assert disabled["enabled"] is False
    assert await api.store.upstream_keys.list_secrets() == []
    status, enabled = await api.call("POST", f"/upstream_keys/{key_id}/enable")
    assert enabled["enabled"] is True
    status, removed = await api.call("DELETE", f"/upstream_keys/{key_id}")
    assert status == 200 and removed["deleted"] is True
    assert api.hook_calls == ["changed"] * 4
    status, body = await api.call("DELETE", f"/upstream_keys/{key_id}")
    _assert_error(status, body, 404, "not_found_error")
    status, body = await api.call("POST", "/upstream_keys", {"note": "no key"})
    _assert_error(status, body, 400, "invalid_request_error")


async def test_usage(api: Admin) -> None:
    await api.store.ledger.record(
        LedgerEntry(request_id="r1", model_requested="gemini-2.5-flash", license_name="alice",
                    license_id="lic_a", prompt_tokens=7, completion_tokens=3)
    )  # fmt: skip
    status, body = await api.call("GET", "/usage?by=model&since=7d&license=alice")
    assert status == 200 and body["object"] == "list" and body["by"] == "model"
    (row,) = body["data"]
    _assert_schema(row, "AdminUsageTotals")
    assert (row["group"], row["requests"], row["total_tokens"]) == ("gemini-2.5-flash", 1, 10)
    status, body = await api.call("GET", "/usage?by=colour")
    _assert_error(status, body, 400, "invalid_request_error")


def test_openapi_fragment_documents_every_route() -> None:
    documented = {
        (path, method.upper())
        for path, item in admin.OPENAPI_PATHS.items()
        for method in item
        if method != "parameters"
    }
    served = {
        (route.path, route.method)  # type: ignore[attr-defined]
        for route in admin.routes
    }
    assert served == documented
    refs = {
        value.rsplit("/", 1)[-1]
        for value in _walk(admin.OPENAPI_PATHS)
        if isinstance(value, str) and value.startswith("#/components/schemas/")
    }
    assert refs <= set(admin.OPENAPI_SCHEMAS)


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    else:
        yield node
