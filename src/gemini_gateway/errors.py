"""One exception hierarchy for everything the gateway can refuse or fail at.

Each class carries the HTTP status, the OpenAI error ``type`` and a default ``code``; code raises
them where a problem is found, and ``api/errors.py`` alone turns them into OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}``, plain or as a stream event.

    GatewayError                      500 server_error
    ├── InvalidRequest                400 invalid_request_error
    │   ├── UnsupportedMedia          400 invalid_request_error  code=unsupported_media_type
    │   └── UpstreamRejected          400 invalid_request_error  (upstream said the request is bad)
    ├── PayloadTooLarge               413 invalid_request_error
    ├── AuthenticationFailed          401 authentication_error   code=invalid_api_key
    ├── PermissionDenied              403 permission_error
    ├── NotFound                      404 not_found_error
    ├── RateLimited                   429 rate_limit_error       code=rate_limit_exceeded
    │   └── QuotaExceeded             429 insufficient_quota     code=insufficient_quota
    ├── UpstreamError                 502 upstream_error
    ├── UpstreamUnavailable           503 service_unavailable
    └── UpstreamTimeout               504 timeout

Messages must never contain a license, an upstream key or a media payload.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, object]:
        """The body of OpenAI's error envelope, without the outer ``error`` key."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class UnsupportedMedia(InvalidRequest):
    code = "unsupported_media_type"


class UpstreamRejected(InvalidRequest):
    """Gemini answered 4xx for a reason that is the client's: passed on, never retried."""

    def __init__(self, message: str, *, status: int = 400, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.status = status


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class RateLimited(GatewayError):
    """429. ``retry_after`` (seconds) becomes the ``Retry-After`` header."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(max(1, int(retry_after + 0.999))))


class QuotaExceeded(RateLimited):
    type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    code = "bad_gateway"


class UpstreamUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"
