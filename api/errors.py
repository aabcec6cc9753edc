"""Typed API errors and the one JSON error envelope (the codes are ``aggregation.errors``).

Every error the API returns, including Django's own 404/500 pages and rate
limiting, is rendered here as
``{"success": false, "message": ..., "errors": [{"field"|"section", "code", "message"}]}``.
Nothing in an envelope reveals a stack trace or SQL.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from aggregation import errors as engine_errors
from aggregation.errors import ErrorCode, error_item

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5  # what a client is told to wait when the database is away


class APIError(exceptions.APIException):
    """An API error with a stable code; raise it from views, services and selectors."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = ErrorCode.VALIDATION_ERROR
    default_detail = "Invalid request."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        field: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(detail=message or self.default_detail)
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.field = field


class PayloadTooLarge(APIError):
    """The request body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = ErrorCode.PAYLOAD_TOO_LARGE
    default_detail = "The request body is too large."


class DatabaseUnavailable(APIError):
    """The database cannot be reached (down, or not answering within ``QUERY_TIMEOUT``)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = ErrorCode.DB_CONNECTION_ERROR
    default_detail = "The database is unavailable; try again shortly."
    wait = DATABASE_RETRY_AFTER_S  # sent as Retry-After


def error_envelope(message: str, errors: list[dict[str, str]]) -> dict[str, Any]:
    """The body of every error response."""
    return {"success": False, "message": message, "errors": errors}


_DRF_CODES: list[tuple[type[exceptions.APIException], ErrorCode]] = [
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.RATE_LIMITED),
    (exceptions.ParseError, ErrorCode.VALIDATION_ERROR),
    (exceptions.ValidationError, ErrorCode.VALIDATION_ERROR),
]


def _flatten_validation(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested validation detail into one entry per field and message."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""
            out += _flatten_validation(
                value, f"{prefix}.{name}" if prefix and name else prefix or name
            )
        return out
    if isinstance(detail, list):
        out = []
        for value in detail:
            out += _flatten_validation(value, prefix)
        return out
    return [error_item(ErrorCode.VALIDATION_ERROR, str(detail), field=prefix or "non_field_errors")]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every error becomes the envelope, unknown ones a 500."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, OperationalError | InterfaceError | engine_errors.DatabaseUnavailable):
        logger.warning("Database unavailable: %s", exc.__class__.__name__)
        exc = DatabaseUnavailable()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        body = error_envelope(
            "Internal server error.",
            [error_item(ErrorCode.SERVER_ERROR, "An unexpected error occurred.")],
        )
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))

    if isinstance(exc, APIError):
        body = error_envelope(
            str(exc.detail), [error_item(exc.code, str(exc.detail), field=exc.field)]
        )
    elif isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        errors = _flatten_validation(exc.detail)
        body = error_envelope("Invalid request parameters.", errors)
    else:
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), ErrorCode.SERVER_ERROR)
        body = error_envelope(str(exc.detail), [error_item(code, str(exc.detail))])
    return Response(body, status=exc.status_code, headers=headers)


def _json_error(status_code: int, code: ErrorCode, message: str) -> JsonResponse:
    return JsonResponse(error_envelope(message, [error_item(code, message)]), status=status_code)


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """``handler404``: unknown URLs answer in the envelope, not an HTML page."""
    return _json_error(404, ErrorCode.NOT_FOUND, "Not found.")


@csrf_exempt  # whatever the method: an unknown URL is a 404, not a CSRF failure
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Any unknown URL under ``/api/``: the JSON 404 even with ``DEBUG`` on."""
    return not_found_view(request)


def csrf_failure_view(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: the JSON envelope under ``/api/``, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return _json_error(403, ErrorCode.PERMISSION_DENIED, "CSRF verification failed.")
    return csrf.csrf_failure(request, reason=reason)


def server_error_view(request: HttpRequest) -> JsonResponse:
    """``handler500``: no stack trace, ever."""
    return _json_error(500, ErrorCode.SERVER_ERROR, "Internal server error.")


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """``handler400`` (Django turns a too-large body met outside DRF into one: say 413)."""
    if isinstance(exception, RequestDataTooBig):
        return _json_error(413, ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    return _json_error(400, ErrorCode.VALIDATION_ERROR, "Bad request.")


def permission_denied_view(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    """``handler403``."""
    return _json_error(403, ErrorCode.PERMISSION_DENIED, "Permission denied.")
