"""Run sections concurrently in a bounded, process-wide thread pool.

Each section gets its own deadline (``QUERY_TIMEOUT`` or its own, never beyond
the request's ``REQUEST_TIMEOUT`` budget). The waiter stops waiting at the
deadline, and the database stops the query too: ``statement_timeout`` on
PostgreSQL, a progress handler on SQLite. So a timed-out query does not keep a
worker and a connection busy for minutes after its response was sent.

Worker threads own their Django connections and keep them from one section to
the next, with ``statement_timeout`` set once; a connection that saw an error
is given back to the pool and a new one taken. ``SECTIONS_IN_PARALLEL=false``
runs the sections on the request thread instead (``run_sections_inline``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db import connection as db_connection

from . import metrics, mongodb
from .errors import ErrorCode
from .sections import Section, SectionContext, SectionPayload
from .snapshot import import_snapshot

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


class SectionTimeout(Exception):
    """A section did not finish before its deadline."""


@dataclass
class SectionOutcome:
    """The result of running one section: a payload, or an error code and message."""

    section: Section
    payload: SectionPayload | None
    error_code: ErrorCode | None = None
    error_message: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the section produced a payload."""
        return self.error_code is None


def get_executor() -> ThreadPoolExecutor:
    """The process-wide pool, created on first use (after a fork, in each worker)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=settings.AGGREGATION_MAX_WORKERS,
                    thread_name_prefix="section",
                )
                metrics.section_queue_depth.set_function(_executor._work_queue.qsize)
    return _executor


def _limit_query_time(deadline: float, *, local: bool = False, conn: Any = None) -> None:
    """Make the database itself give up on this thread's queries at ``deadline``.

    ``local``: for the current transaction only (inside a snapshot transaction).
    ``conn``: the connection (this thread's default one when None).
    """
    conn = conn or db_connection
    remaining_ms = int((deadline - time.monotonic()) * 1000)
    if remaining_ms <= 0:
        raise SectionTimeout
    conn.ensure_connection()
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, %s)", [str(remaining_ms), local]
            )
    elif conn.vendor == "sqlite":
        conn.connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def _clear_query_limit(conn: Any = None) -> None:
    """Undo ``_limit_query_time``: pooled connections go on to serve other code."""
    conn = conn or db_connection
    if conn.connection is None:
        return
    if conn.vendor == "sqlite":
        conn.connection.set_progress_handler(None, 0)
    elif conn.vendor == "postgresql" and not conn.in_atomic_block:
        try:
            with conn.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
        except DatabaseError:
            pass  # a broken connection is discarded by close_old_connections()


def close_worker_connections(timeout: float = 10.0) -> None:
    """Give back the connection every worker thread keeps (test teardown, shutdown).

    One task per worker thread, held at a barrier until all have started, so
    each thread closes its own connection.
    """
    if _executor is None:
        return
    workers = _executor._max_workers
    barrier = threading.Barrier(workers)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout)

    for future in [_executor.submit(close) for _ in range(workers)]:
        future.result(timeout)


def _worker_connection(query_timeout_ms: int) -> None:
    """Ready this worker thread's own connection, kept from one section to the next.

    A worker thread runs nothing but sections, so it keeps its connection (no
    pool checkout per section) with ``statement_timeout`` set once, at the
    session level, to ``QUERY_TIMEOUT``: no set-and-reset round trips per
    section. A connection that saw an error is reset and given back first.
    """
    if db_connection.connection is not None and db_connection.errors_occurred:
        with contextlib.suppress(DatabaseError):
            _clear_query_limit()
        db_connection.close()
    db_connection.ensure_connection()
    raw = db_connection.connection
    if getattr(db_connection, "section_timeout", None) == (id(raw), query_timeout_ms):
        return
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)", [str(query_timeout_ms)]
            )
    db_connection.section_timeout = (id(raw), query_timeout_ms)  # type: ignore[attr-defined]


def _run_in_worker(
    section: Section,
    context: SectionContext,
    deadline: float,
    snapshot_id: str | None,
    timeout_ms: int,
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[SectionPayload, float]:
    """Runs in a pool thread: fetch one section on this thread's own connection.

    With ``snapshot_id`` the fetch runs in a read-only REPEATABLE READ
    transaction that imports the leader's exported snapshot, so every section
    sees the database as of one moment. The waiter gives up at ``deadline``;
    the database stops any statement at ``timeout_ms``.
    """
    if time.monotonic() >= deadline:
        raise SectionTimeout
    started = time.monotonic()
    kept = db_connection.connection is not None
    try:
        payload = _fetch_on_worker_connection(
            section, context, deadline, snapshot_id, timeout_ms, using
        )
    except (OperationalError, InterfaceError) as exc:
        # A connection kept from an earlier section can have died since (the
        # database restarted, an operator ended it): that is no reason to fail
        # this section, so it runs once more on a new connection. (A database
        # that is really down fails the second attempt too, and then the
        # thread holds no connection, so it is tried once per thread.)
        if not kept or classify_error(exc) != ErrorCode.DB_CONNECTION_ERROR:
            raise
        if time.monotonic() >= deadline:
            raise
        db_connection.close()
        payload = _fetch_on_worker_connection(
            section, context, deadline, snapshot_id, timeout_ms, using
        )
    return payload, (time.monotonic() - started) * 1000


def _fetch_on_worker_connection(
    section: Section,
    context: SectionContext,
    deadline: float,
    snapshot_id: str | None,
    timeout_ms: int,
    using: str = DEFAULT_DB_ALIAS,
) -> SectionPayload:
    if connections[using].vendor != "mongodb":  # (MongoDB's limit is mongodb.deadline)
        _worker_connection(timeout_ms)
        if db_connection.vendor == "sqlite":
            db_connection.connection.set_progress_handler(
                lambda: int(time.monotonic() > deadline), 10_000
            )
    try:
        with mongodb.deadline(deadline, using):
            if snapshot_id is None:
                return section.fetch(context)
            with transaction.atomic():
                import_snapshot(snapshot_id)
                return section.fetch(context)
    except Exception as exc:
        mongodb.observe(exc)
        raise


def _is_query_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ == "QueryCanceled":
        return True  # psycopg: statement_timeout fired
    return "interrupted" in str(exc).lower()  # sqlite: progress handler fired


def classify_error(exc: BaseException) -> ErrorCode:
    """Map an exception raised by a section to a stable error code."""
    on_mongodb = mongodb.classify(exc)
    if on_mongodb is not None:
        return on_mongodb
    if isinstance(exc, SectionTimeout | FutureTimeout):
        return ErrorCode.TIMEOUT_ERROR
    if isinstance(exc, OperationalError) and _is_query_timeout(exc):
        return ErrorCode.TIMEOUT_ERROR
    if isinstance(exc, OperationalError | InterfaceError):
        return ErrorCode.DB_CONNECTION_ERROR
    if isinstance(exc, DatabaseError):
        return ErrorCode.SECTION_FETCH_ERROR
    return ErrorCode.SECTION_FETCH_ERROR


_MESSAGES = {
    ErrorCode.TIMEOUT_ERROR: "Timed out fetching {title}",
    ErrorCode.DB_CONNECTION_ERROR: "Database unavailable while fetching {title}",
    ErrorCode.SECTION_FETCH_ERROR: "Failed to fetch {title}",
}


def run_sections(
    sections: list[Section],
    context: SectionContext,
    *,
    query_timeout_ms: int | None = None,
    request_timeout_ms: int | None = None,
    snapshot_id: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[SectionOutcome]:
    """Run ``sections`` concurrently and return one outcome each, in order.

    Never raises for a section's failure: a failed or timed-out section becomes
    an outcome with an error code. Returns by the request budget at the latest.
    ``snapshot_id``: a PostgreSQL snapshot every worker imports (see snapshot.py).
    ``using``: a MongoDB alias when the sections read one (the workers then
    need no relational connection); otherwise they read the primary.
    """
    query_timeout_ms = query_timeout_ms or settings.QUERY_TIMEOUT
    request_timeout_ms = request_timeout_ms or settings.REQUEST_TIMEOUT
    start = time.monotonic()
    budget_end = start + request_timeout_ms / 1000
    executor = get_executor()

    submitted: list[tuple[Section, Future, float]] = []
    for section in sections:
        timeout_ms = section.timeout_ms or query_timeout_ms
        deadline = min(start + timeout_ms / 1000, budget_end)
        future = executor.submit(
            _run_in_worker, section, context, deadline, snapshot_id, timeout_ms, using
        )
        submitted.append((section, future, deadline))

    return _collect(submitted, start)


def run_sections_inline(
    sections: list[Section],
    context: SectionContext,
    *,
    query_timeout_ms: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[SectionOutcome]:
    """Run ``sections`` one after another on the calling thread's connection.

    The database bounds every statement at ``QUERY_TIMEOUT`` (set once for all
    the sections: ``SET LOCAL`` inside a transaction, else set and reset
    around them; a progress handler on SQLite), and a section that would start
    after the request budget is a timeout without running. Inside a
    transaction (a shared snapshot) each section runs in a savepoint, so one
    failed statement does not abort the sections after it.
    """
    query_timeout_ms = query_timeout_ms or settings.QUERY_TIMEOUT
    start = time.monotonic()
    budget_end = start + settings.REQUEST_TIMEOUT / 1000
    conn = connections[using]
    in_transaction = conn.in_atomic_block
    submitted = []
    try:
        _limit_query_time(start + query_timeout_ms / 1000, local=in_transaction, conn=conn)
        for section in sections:
            deadline = min(
                time.monotonic() + (section.timeout_ms or query_timeout_ms) / 1000, budget_end
            )
            future: Future = Future()
            section_start = time.monotonic()
            try:
                if section_start >= budget_end:
                    raise SectionTimeout
                with mongodb.deadline(deadline, using):
                    if in_transaction:
                        with transaction.atomic(using=using):
                            payload = section.fetch(context)
                    else:
                        payload = section.fetch(context)
                future.set_result((payload, (time.monotonic() - section_start) * 1000))
            except Exception as exc:  # becomes the section's error outcome
                mongodb.observe(exc)
                future.set_exception(exc)
            submitted.append((section, future, deadline))
    except SectionTimeout:
        pass  # no budget left at all: every section is reported as timed out below
    except DatabaseError as exc:  # could not even set the limit: the database is away
        for section in sections[len(submitted) :]:
            failed: Future = Future()
            failed.set_exception(exc)
            submitted.append((section, failed, start))
    finally:
        if not in_transaction:
            _clear_query_limit(conn)
    for section in sections[len(submitted) :]:
        timed_out: Future = Future()
        timed_out.set_exception(SectionTimeout())
        submitted.append((section, timed_out, start))
    return _collect(submitted, start)


def run_sections_here_or_in_pool(
    sections: list[Section],
    context: SectionContext,
    *,
    snapshot_id: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[SectionOutcome]:
    """Sections in the pool (``SECTIONS_IN_PARALLEL``, or a snapshot to import), else inline.

    ``using``: the database of inline sections (a replica, or MongoDB); the pool
    reads the primary, or MongoDB.
    """
    if snapshot_id is not None or (settings.SECTIONS_IN_PARALLEL and len(sections) > 1):
        pool_using = using if connections[using].vendor == "mongodb" else DEFAULT_DB_ALIAS
        return run_sections(sections, context, snapshot_id=snapshot_id, using=pool_using)
    return run_sections_inline(sections, context, using=using)


def _collect(submitted: list[tuple[Section, Future, float]], start: float) -> list[SectionOutcome]:
    outcomes = []
    for section, future, deadline in submitted:
        try:
            payload, duration = future.result(timeout=max(0.0, deadline - time.monotonic()))
            outcomes.append(SectionOutcome(section, payload, duration_ms=duration))
            metrics.section_duration.labels(section.id).observe(duration / 1000)
            continue
        except FutureTimeout as exc:
            future.cancel()  # still queued: never start it
            error: BaseException = exc
        except Exception as exc:  # a section's failure must not fail the request
            error = exc
        code = classify_error(error)
        metrics.section_failures.labels(section.id, code).inc()
        if code == ErrorCode.TIMEOUT_ERROR:
            logger.warning("Section %s timed out", section.id)
        else:
            logger.error("Section %s failed", section.id, exc_info=error)
        outcomes.append(
            SectionOutcome(
                section,
                None,
                error_code=code,
                error_message=_MESSAGES[code].format(title=section.title.lower()),
                duration_ms=(time.monotonic() - start) * 1000,
            )
        )
    return outcomes
