"""Small helpers for driving the gateway over raw HTTP, as curl would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def sse_events(self) -> list[str]:
        """The ``data:`` payloads of an SSE body, in order."""
        events = []
        for block in self.body.decode().split("\n\n"):
            for line in block.splitlines():
                if line.startswith("data: "):
                    events.append(line[len("data: ") :])
        return events

    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.sse_events() if e != "[DONE]"]


_pool = urllib3.PoolManager()


def post(
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30,
) -> RawResponse:
    data = raw if raw is not None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    resp = _pool.request(
        "POST",
        url,
        body=data,
        headers=all_headers,
        timeout=timeout,
        retries=False,
        preload_content=True,
    )
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)


def get(url: str, headers: dict[str, str] | None = None) -> RawResponse:
    resp = _pool.request("GET", url, headers=headers or {}, retries=False, timeout=30)
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)


def assert_openai_error(resp: RawResponse, status: int, type_: str | None = None) -> dict[str, Any]:
    """Every error path returns OpenAI's envelope with the right status."""
    assert resp.status == status, (resp.status, resp.body[:500])
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"], err
    assert "type" in err and "code" in err, err
    if type_ is not None:
        assert err["type"] == type_, err
    return err
