"""Google's error envelope, as the Gemini API writes it.

Every refusal is ``{"error": {"code", "message", "status", "details"?}}`` with the HTTP status in
``code`` and the canonical gRPC status name in ``status``. The detail objects follow
``google.rpc`` (``ErrorInfo``, ``BadRequest``, ``RetryInfo``, ``QuotaFailure``) with an ``@type``
URL, as seen in real answers quoted in public bug reports.
"""

from __future__ import annotations

from typing import Any

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

_TYPE = "type.googleapis.com/google.rpc."
UNREGISTERED_CALLER = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


class GoogleError(Exception):
    """A refusal the simulator answers with, already in Google's words."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")
        self.details = details
        self.raw = raw  # a body to send exactly as given (a test's fault)

    def body(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


def retry_info(seconds: float) -> dict[str, Any]:
    text = f"{seconds:g}s"
    return {"@type": _TYPE + "RetryInfo", "retryDelay": text}


def default_error(code: int, *, model: str = "", retry_delay: float = 1.0) -> GoogleError:
    """The body Google sends for a bare status: 429 carries QuotaFailure and RetryInfo."""
    message = _DEFAULT_MESSAGES.get(code, "Unknown error.")
    if code == 429:
        return quota_exhausted(model=model, retry_delay=retry_delay)
    return GoogleError(code, message)


def quota_exhausted(*, model: str = "", retry_delay: float = 1.0) -> GoogleError:
    dims = {"location": "global", "model": model or "gemini-2.5-flash"}
    return GoogleError(
        429,
        _DEFAULT_MESSAGES[429],
        details=[
            {
                "@type": _TYPE + "QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": dims,
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": _TYPE + "Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            retry_info(retry_delay),
        ],
    )


def api_key_invalid() -> GoogleError:
    message = "API key not valid. Please pass a valid API key."
    return GoogleError(
        400,
        message,
        details=[
            {
                "@type": _TYPE + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": message},
        ],
    )


def consumer_suspended(key: str) -> GoogleError:
    # Google names the key in this message; the gateway must not pass it on.
    return GoogleError(
        403,
        f"Permission denied: Consumer 'api_key:{key}' has been suspended.",
        details=[
            {
                "@type": _TYPE + "ErrorInfo",
                "reason": "CONSUMER_SUSPENDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "generativelanguage.googleapis.com",
                    "consumer": "projects/000000000000",
                },
            }
        ],
    )


def invalid_json(violations: list[tuple[str, str]]) -> GoogleError:
    """Unknown or malformed fields: one message line and one BadRequest violation each."""
    descriptions = [f"Invalid JSON payload received. {text}" for _, text in violations]
    field_violations = []
    for (field, _), description in zip(violations, descriptions, strict=True):
        violation = {"description": description}
        if field:
            violation = {"field": field, "description": description}
        field_violations.append(violation)
    return GoogleError(
        400,
        "\n".join(descriptions),
        details=[{"@type": _TYPE + "BadRequest", "fieldViolations": field_violations}],
    )


def model_not_found(model: str, method: str, version: str = "v1beta") -> GoogleError:
    return GoogleError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )
