"""Section time limits and failures on MongoDB (a database on django-mongodb-backend).

PostgreSQL stops a section's query with ``statement_timeout``; MongoDB with
``maxTimeMS``, which pymongo's client-side operation timeout sets on every
operation from the time left (``pymongo.timeout``): a section's queries get
what remains of its deadline, and a server that stops answering is given up
on at the deadline too.

An unreachable server costs a server selection timeout
(``STOREFRONT_SELECTION_TIMEOUT_MS``). So that one request with six sections does
not wait six of them, for ``REPLICA_RETRY_AFTER_S`` seconds after a process saw
one (the same back-off as a failing replica) each section first pings the
server with ``UNREACHABLE_PROBE`` seconds to answer: still away, the section
fails at once; back, the window closes and the section runs with its whole
deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from .errors import ErrorCode

UNREACHABLE_PROBE = 0.05  # seconds a section waits for a server known to be away
_unreachable_until = 0.0


class Unreachable(DatabaseError):
    """The server did not answer the probe of a section run while it was known to be away."""


@contextlib.contextmanager
def deadline(at: float, using: str) -> Iterator[None]:
    """MongoDB operations on ``using`` in this block end by ``at`` (a monotonic moment).

    Not MongoDB: nothing to do (PostgreSQL and SQLite have their own limits).
    """
    conn = connections[using]
    if conn.vendor != "mongodb":
        yield
        return
    import pymongo

    if time.monotonic() < _unreachable_until:
        _probe(conn)
    with pymongo.timeout(max(at - time.monotonic(), 0.001)):
        yield


def _probe(conn: Any) -> None:
    """Raise ``Unreachable`` unless the server answers a ping in ``UNREACHABLE_PROBE`` s."""
    import pymongo
    from pymongo.errors import PyMongoError

    try:
        with pymongo.timeout(UNREACHABLE_PROBE):
            conn.database.command("ping")
    except PyMongoError as exc:
        raise Unreachable("MongoDB is still unreachable") from exc
    reachable_again()


def _pymongo_error(exc: BaseException) -> BaseException | None:
    """The pymongo error behind ``exc`` (django-mongodb-backend wraps them), if any."""
    from pymongo.errors import PyMongoError

    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, PyMongoError):
            return candidate
    return None


def classify(exc: BaseException) -> ErrorCode | None:
    """A MongoDB failure's error code (None: not a MongoDB failure).

    Unreachable (no server found in time, a refused or reset connection) is a
    connection error; a query that ran out of time (``maxTimeMS`` on the
    server, or the deadline while waiting for a reply) a timeout.
    """
    if isinstance(exc, Unreachable):
        return ErrorCode.DB_CONNECTION_ERROR
    error = _pymongo_error(exc)
    if error is None:
        return None
    from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

    if isinstance(error, ServerSelectionTimeoutError) or (
        isinstance(error, ConnectionFailure) and not getattr(error, "timeout", False)
    ):
        return ErrorCode.DB_CONNECTION_ERROR
    if getattr(error, "timeout", False):
        return ErrorCode.TIMEOUT_ERROR
    return ErrorCode.SECTION_FETCH_ERROR


def observe(exc: BaseException) -> None:
    """A section failed with ``exc``: if the server is unreachable, probe it briefly for a while."""
    global _unreachable_until
    if classify(exc) == ErrorCode.DB_CONNECTION_ERROR:
        _unreachable_until = time.monotonic() + settings.REPLICA_RETRY_AFTER_S


def reachable_again() -> None:
    """Forget an unreachable server (tests; a process that knows it is back)."""
    global _unreachable_until
    _unreachable_until = 0.0
