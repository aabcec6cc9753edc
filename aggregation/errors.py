"""The error vocabulary: stable codes and the errors the engine raises.

Codes are the specification's (seed 004 §5.3) plus the HTTP-level ones the
API's envelope uses; the engine knows no HTTP, the API (``api/errors.py``)
turns these into responses.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes, as clients see them in ``errors[].code``."""

    SECTION_FETCH_ERROR = "SECTION_FETCH_ERROR"
    TIMEOUT_ERROR = "TIMEOUT_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    DB_CONNECTION_ERROR = "DB_CONNECTION_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    CONFLICT = "CONFLICT"
    SERVER_ERROR = "SERVER_ERROR"


class DatabaseUnavailable(Exception):
    """The database cannot be reached (down, or not answering within ``QUERY_TIMEOUT``)."""

    code = ErrorCode.DB_CONNECTION_ERROR


def error_item(
    code: str, message: str, *, field: str | None = None, section: str | None = None
) -> dict[str, str]:
    """One entry of an ``errors`` list: ``{"field"|"section", "code", "message"}``."""
    item: dict[str, str] = {}
    if field is not None:
        item["field"] = field
    if section is not None:
        item["section"] = section
    item["code"] = str(code)
    item["message"] = message
    return item
