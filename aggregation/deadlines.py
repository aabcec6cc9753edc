"""How each database backend stops a section's queries at its deadline.

The waiter stops waiting at a section's deadline; the database must stop the
query too, or a timed-out query keeps a connection busy for minutes after its
response was sent. Each backend does it its own way, and this module is the
one place that knows which (``deadline_for(connection)``):

- PostgreSQL: ``statement_timeout`` (``SET LOCAL`` inside a transaction; on a
  pool thread's own connection, once per connection at the session level);
- SQLite: a progress handler that interrupts the statement past the deadline;
- MongoDB: ``maxTimeMS``, which pymongo's client-side operation timeout sets
  on every operation from the time left (``pymongo.timeout``). An unreachable
  server costs a server selection timeout (``STOREFRONT_SELECTION_TIMEOUT_MS``),
  so for ``REPLICA_RETRY_AFTER_S`` seconds after a process saw one (the same
  back-off as a failing replica) each section first pings the server with
  ``UNREACHABLE_PROBE_S`` to answer: still away, it fails at once; back, the
  window closes and the section runs with its whole deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from caching.process import register_state

from .errors import ErrorCode

SQLITE_PROGRESS_STEPS = 10_000  # virtual-machine steps between two deadline checks on SQLite
UNREACHABLE_PROBE_S = 0.05  # what a section waits for a MongoDB server known to be away
MIN_OPERATION_TIMEOUT_S = 0.001  # pymongo.timeout(0) would mean no limit at all


class SectionTimeout(Exception):
    """A section did not finish before its deadline."""


def remaining_ms(deadline: float) -> int:
    """Milliseconds until ``deadline`` (a monotonic moment); ``SectionTimeout`` if none."""
    remaining = int((deadline - time.monotonic()) * 1000)
    if remaining <= 0:
        raise SectionTimeout
    return remaining


class QueryDeadline:
    """A backend's way of bounding queries; this base bounds nothing (an unknown backend)."""

    per_thread_connection = True  # each thread holds a connection of its own (DB-API)

    def limit(self, conn: BaseDatabaseWrapper, deadline: float, *, local: bool) -> None:
        """Stop ``conn``'s queries at ``deadline`` from now on (``local``: this transaction)."""

    def clear(self, conn: BaseDatabaseWrapper) -> None:
        """Undo ``limit``: pooled connections go on to serve other code."""

    def ready_worker(self, conn: BaseDatabaseWrapper, *, timeout_ms: int, deadline: float) -> None:
        """Ready a pool thread's own connection for one section (kept between sections)."""

    @contextlib.contextmanager
    def section(self, conn: BaseDatabaseWrapper, deadline: float) -> Iterator[None]:
        """Around one section's fetch on ``conn``."""
        yield

    def classify(self, exc: BaseException) -> ErrorCode | None:
        """The error code this backend reads in a failure (None: not one it knows)."""
        return None

    def observe(self, exc: BaseException) -> None:
        """A section on this backend failed with ``exc``."""


class PostgreSQLDeadline(QueryDeadline):
    def limit(self, conn: BaseDatabaseWrapper, deadline: float, *, local: bool) -> None:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, %s)",
                [str(remaining_ms(deadline)), local],
            )

    def clear(self, conn: BaseDatabaseWrapper) -> None:
        if conn.connection is None or conn.in_atomic_block:
            return  # SET LOCAL ends with its transaction
        try:
            with conn.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
        except DatabaseError:
            pass  # a broken connection is discarded by close_old_connections()

    def ready_worker(self, conn: BaseDatabaseWrapper, *, timeout_ms: int, deadline: float) -> None:
        """``statement_timeout`` set once per connection, at the session level, to ``timeout_ms``.

        A worker thread runs nothing but sections, so no set-and-reset round
        trips per section.
        """
        raw = conn.connection
        if getattr(conn, "section_timeout", None) == (id(raw), timeout_ms):
            return
        with conn.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [str(timeout_ms)])
        conn.section_timeout = (id(raw), timeout_ms)  # type: ignore[attr-defined]

    def classify(self, exc: BaseException) -> ErrorCode | None:
        cause = exc.__cause__
        if isinstance(exc, OperationalError) and type(cause).__name__ == "QueryCanceled":
            return ErrorCode.TIMEOUT_ERROR  # statement_timeout fired
        return None


class SQLiteDeadline(QueryDeadline):
    def limit(self, conn: BaseDatabaseWrapper, deadline: float, *, local: bool) -> None:
        remaining_ms(deadline)
        conn.connection.set_progress_handler(
            lambda: int(time.monotonic() > deadline), SQLITE_PROGRESS_STEPS
        )

    def clear(self, conn: BaseDatabaseWrapper) -> None:
        if conn.connection is not None:
            conn.connection.set_progress_handler(None, 0)

    def ready_worker(self, conn: BaseDatabaseWrapper, *, timeout_ms: int, deadline: float) -> None:
        self.limit(conn, deadline, local=False)

    def classify(self, exc: BaseException) -> ErrorCode | None:
        if isinstance(exc, OperationalError) and "interrupted" in str(exc).lower():
            return ErrorCode.TIMEOUT_ERROR  # the progress handler fired
        return None


class Unreachable(DatabaseError):
    """The server did not answer the probe of a section run while it was known to be away."""


class MongoDBDeadline(QueryDeadline):
    per_thread_connection = False  # one pymongo client, shared by every thread

    def __init__(self) -> None:
        self.unreachable_until = 0.0

    @contextlib.contextmanager
    def section(self, conn: BaseDatabaseWrapper, deadline: float) -> Iterator[None]:
        import pymongo

        if time.monotonic() < self.unreachable_until:
            self._probe(conn)
        with pymongo.timeout(max(deadline - time.monotonic(), MIN_OPERATION_TIMEOUT_S)):
            yield

    def _probe(self, conn: Any) -> None:
        """Raise ``Unreachable`` unless the server answers a ping in ``UNREACHABLE_PROBE_S``."""
        import pymongo
        from pymongo.errors import PyMongoError

        try:
            with pymongo.timeout(UNREACHABLE_PROBE_S):
                conn.database.command("ping")
        except PyMongoError as exc:
            raise Unreachable("MongoDB is still unreachable") from exc
        self.reachable_again()

    def classify(self, exc: BaseException) -> ErrorCode | None:
        """Unreachable (no server in time, a refused or reset connection) or out of time.

        A query that ran out of time (``maxTimeMS`` on the server, or the
        deadline while waiting for a reply) is a timeout.
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

    def observe(self, exc: BaseException) -> None:
        """If the server is unreachable, probe it briefly for a while."""
        if self.classify(exc) == ErrorCode.DB_CONNECTION_ERROR:
            self.unreachable_until = time.monotonic() + settings.REPLICA_RETRY_AFTER_S

    def reachable_again(self) -> None:
        """Forget an unreachable server (a probe answered; tests)."""
        self.unreachable_until = 0.0


def _pymongo_error(exc: BaseException) -> BaseException | None:
    """The pymongo error behind ``exc`` (django-mongodb-backend wraps them), if any."""
    try:
        from pymongo.errors import PyMongoError
    except ImportError:
        return None
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, PyMongoError):
            return candidate
    return None


mongodb = MongoDBDeadline()
_BY_VENDOR: dict[str, QueryDeadline] = {
    "mongodb": mongodb,  # first: django-mongodb-backend wraps pymongo's errors in Django's
    "postgresql": PostgreSQLDeadline(),
    "sqlite": SQLiteDeadline(),
}
_UNBOUNDED = QueryDeadline()

register_state("deadlines: MongoDB known to be unreachable", mongodb.reachable_again)


def deadline_for(conn: BaseDatabaseWrapper) -> QueryDeadline:
    """How ``conn``'s backend bounds its queries."""
    return _BY_VENDOR.get(conn.vendor, _UNBOUNDED)


def classify_by_backend(exc: BaseException) -> ErrorCode | None:
    """A backend's reading of ``exc`` (a query stopped at its deadline, a server away)."""
    for backend in _BY_VENDOR.values():
        code = backend.classify(exc)
        if code is not None:
            return code
    return None
