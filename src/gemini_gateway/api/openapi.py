"""``GET /openapi.json``: the gateway's public HTTP surface, the admin API included.

Request and response bodies of the OpenAI-compatible endpoints are OpenAI's own (see OpenAI's API
reference); this document names them and what the gateway adds, without restating OpenAI's schemas.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gemini_gateway import __version__
from gemini_gateway.api import admin

routes = web.RouteTableDef()

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary: str, *, body: str | None = None, auth: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK"},
            "default": {
                "description": "OpenAI error envelope",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": body}}},
        }
    if auth:
        op["security"] = [{"license": []}]
    else:
        op["security"] = []
    return op


PUBLIC_PATHS: dict[str, Any] = {
    "/gemini/v1/chat/completions": {
        "post": _op(
            "OpenAI chat completion on a Gemini model, plain or streamed (SSE).",
            body="OpenAI CreateChatCompletionRequest",
        )
    },
    "/gemini/v1/models": {"get": _op("List models (OpenAI format).")},
    "/gemini/v1/models/{model}": {
        "get": {
            **_op("One model (OpenAI format)."),
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        }
    },
    "/gemini/v1/images/generations": {
        "post": _op("OpenAI Images API on Gemini and Imagen models.", body="CreateImageRequest")
    },
    "/gemini/v1/audio/speech": {
        "post": _op("OpenAI speech API on Gemini TTS models.", body="CreateSpeechRequest")
    },
    "/gemini/v1/files/{id}": {
        "get": {
            **_op("A generated image or audio file (unguessable id).", auth=False),
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        }
    },
    "/healthz": {"get": _op("Liveness.", auth=False)},
    "/readyz": {"get": _op("Readiness: an upstream key is usable.", auth=False)},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "gemini-gateway", "version": __version__},
        "paths": {**PUBLIC_PATHS, **admin.OPENAPI_PATHS},
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"]},
                            },
                        }
                    },
                },
                **admin.OPENAPI_SCHEMAS,
            },
            "securitySchemes": {
                "license": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The license, raw or as 'Bearer <license>'.",
                },
                **admin.OPENAPI_SECURITY_SCHEMES,
            },
        },
    }


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
