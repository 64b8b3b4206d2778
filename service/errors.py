"""Errors of review-router, one tree with one root.

    ServiceError                 500 internal
    ├── BadRequest               400 bad_request
    ├── Unauthenticated          401 unauthenticated
    ├── Forbidden                403 forbidden
    │   └── CsrfFailed           403 csrf_failed
    ├── NotFound                 404 not_found
    ├── Conflict                 409 conflict
    ├── PayloadTooLarge          413 payload_too_large
    ├── TooManyRequests          429 too_many_requests
    ├── ValidationFailed         422 validation_failed
    └── Unavailable              503 unavailable
        └── QueueUnavailable     503 queue_unavailable

Code below the routes raises these; the app's handlers turn them (and FastAPI's own errors) into
the one envelope ``{"error": {"code", "message", "details"}}``. Foreign errors are mapped at one
boundary with ``raise OurError(...) from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError


class ServiceError(Exception):
    """Root of every error the service reports; knows its HTTP status and machine code."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def envelope(self) -> dict[str, Any]:
        """The JSON body the API answers with."""
        return error_envelope(self.code, self.message, self.details)


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class Unauthenticated(ServiceError):
    """No valid credentials: sign in, or send ``Authorization: Bearer <token or API key>``."""

    status_code = 401
    code = "unauthenticated"


class Forbidden(ServiceError):
    """Signed in, but this role or key may not do this."""

    status_code = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(ServiceError):
    status_code = 429
    code = "too_many_requests"


class ValidationFailed(ServiceError):
    status_code = 422
    code = "validation_failed"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


class QueueUnavailable(Unavailable):
    code = "queue_unavailable"


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_failed.")
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """The one shape of every 4xx and 5xx answer."""

    error: ErrorBody


#: Documented on every operation of the API, so clients (and the schema fuzzing test) know them.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Bad request: not JSON, or text or a number that cannot be stored.",
        401: "Not signed in, or a wrong password.",
        403: "Not allowed for this role or key, or a stale CSRF token.",
        404: "Not found.",
        409: "Conflicts with the current state.",
        413: "The body is too large.",
        415: "Not JSON.",
        422: "Invalid input.",
        429: "Too many tries: see Retry-After.",
        503: "The database or the queue is unavailable.",
    }.items()
}


def error_envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Build the one error envelope used for every 4xx and 5xx answer."""
    return {"error": {"code": code, "message": message, "details": details}}


def validation_details(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors without the offending input echoed back (it can be large or private)."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


def invalid(message: str, exc: ValidationError) -> ValidationFailed:
    """A 422 for a form or body pydantic refused, with its errors as the details."""
    return ValidationFailed(message, details=validation_details(exc.errors()))
