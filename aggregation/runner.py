"""Run sections: one after another on the request thread, or in the process-wide pool.

Each section gets its own deadline (``QUERY_TIMEOUT`` or its own, never beyond
the request's ``REQUEST_TIMEOUT`` budget). The waiter stops waiting at the
deadline, and the database stops the query too, each backend its own way
(``deadlines.py``). So a timed-out query does not keep a worker and a
connection busy for minutes after its response was sent.

Worker threads own their Django connections and keep them from one section to
the next; a connection that saw an error is given back to the pool and a new
one taken. ``SECTIONS_IN_PARALLEL=false`` runs the sections on the request
thread instead (``run_sections_inline``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper

from caching.process import section_pool

from . import metrics, tracing
from .deadlines import (
    QueryDeadline,
    SectionTimeout,
    classify_by_backend,
    deadline_for,
    remaining_ms,
)
from .errors import ErrorCode
from .sections import Section, SectionContext, SectionPayload
from .snapshot import import_snapshot

__all__ = ["SectionOutcome", "SectionTimeout", "classify_error", "run_sections"]

logger = logging.getLogger(__name__)

CLOSE_WORKERS_TIMEOUT_S = 10.0

metrics.section_queue_depth.set_function(
    lambda: section_pool.started._work_queue.qsize() if section_pool.started else 0
)


@dataclass
class SectionOutcome:
    """The result of running one section: a payload, or an error code and message."""

    section: Section
    payload: SectionPayload | None
    error_code: ErrorCode | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the section produced a payload."""
        return self.error_code is None


def close_worker_connections(timeout: float = CLOSE_WORKERS_TIMEOUT_S) -> None:
    """Give back the connection every worker thread keeps (test teardown, shutdown).

    One task per worker thread, held at a barrier until all have started, so
    each thread closes its own connection.
    """
    pool = section_pool.started
    if pool is None:
        return
    workers = pool._max_workers
    barrier = threading.Barrier(workers)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout)

    for future in [pool.submit(close) for _ in range(workers)]:
        future.result(timeout)


def _ready_worker_connection(using: str, timeout_ms: int, deadline: float) -> None:
    """Ready this worker thread's own connection, kept from one section to the next.

    A worker thread runs nothing but sections, so it keeps its connection (no
    pool checkout per section); one that saw an error is reset and given back
    first.
    """
    conn = connections[using]
    backend = deadline_for(conn)
    if not backend.per_thread_connection:
        return  # a client shared by every thread: nothing of this thread's to ready
    if conn.connection is not None and conn.errors_occurred:
        with contextlib.suppress(DatabaseError):
            backend.clear(conn)
        conn.close()
    conn.ensure_connection()
    backend.ready_worker(conn, timeout_ms=timeout_ms, deadline=deadline)


@dataclass(frozen=True)
class _WorkerTask:
    """One section for a pool thread: its limits, and the snapshot and database it reads."""

    section: Section
    context: SectionContext
    deadline: float  # the waiter gives up here
    timeout_ms: int  # the database stops any statement after this long
    snapshot_id: str | None = None
    using: str = DEFAULT_DB_ALIAS


def _run_in_worker(task: _WorkerTask) -> tuple[SectionPayload, float]:
    """Runs in a pool thread: one section on this thread's own connection, and its seconds.

    With ``snapshot_id`` the fetch runs in a read-only REPEATABLE READ
    transaction that imports the leader's exported snapshot, so every section
    sees the database as of one moment.
    """
    if time.monotonic() >= task.deadline:
        raise SectionTimeout
    started = time.monotonic()
    kept = connections[task.using].connection is not None
    try:
        payload = _fetch_on_worker_connection(task)
    except (OperationalError, InterfaceError) as exc:
        # A connection kept from an earlier section can have died since (the
        # database restarted, an operator ended it): that is no reason to fail
        # this section, so it runs once more on a new connection. (A database
        # that is really down fails the second attempt too, and then the
        # thread holds no connection, so it is tried once per thread.)
        if not kept or classify_error(exc) != ErrorCode.DB_CONNECTION_ERROR:
            raise
        if time.monotonic() >= task.deadline:
            raise
        conn = connections[task.using]
        conn.close()
        getattr(conn, "ensure_live_connection", conn.ensure_connection)()
        payload = _fetch_on_worker_connection(task)
    return payload, time.monotonic() - started


def _fetch_on_worker_connection(task: _WorkerTask) -> SectionPayload:
    _ready_worker_connection(task.using, task.timeout_ms, task.deadline)
    conn = connections[task.using]
    backend = deadline_for(conn)
    try:
        with backend.section(conn, task.deadline), tracing.section_span(task.section):
            if task.snapshot_id is None:
                return task.section.fetch(task.context)
            with transaction.atomic(using=task.using):
                import_snapshot(task.snapshot_id)
                return task.section.fetch(task.context)
    except Exception as exc:
        backend.observe(exc)
        raise


def classify_error(exc: BaseException) -> ErrorCode:
    """Map an exception raised by a section to a stable error code."""
    if isinstance(exc, SectionTimeout | FutureTimeout):
        return ErrorCode.TIMEOUT_ERROR
    by_backend = classify_by_backend(exc)
    if by_backend is not None:
        return by_backend
    if isinstance(exc, OperationalError | InterfaceError):
        return ErrorCode.DB_CONNECTION_ERROR
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
    executor = section_pool.get()

    submitted: list[tuple[Section, Future, float]] = []
    for section in sections:
        timeout_ms = section.timeout_ms or query_timeout_ms
        deadline = min(start + timeout_ms / 1000, budget_end)
        task = _WorkerTask(section, context, deadline, timeout_ms, snapshot_id, using)
        future = executor.submit(tracing.carried(_run_in_worker), task)
        submitted.append((section, future, deadline))
    return _collect(submitted)


@dataclass(frozen=True)
class _Inline:
    """What every section run on this thread shares."""

    conn: BaseDatabaseWrapper
    backend: QueryDeadline
    context: SectionContext
    in_transaction: bool
    budget_end: float

    def run(self, section: Section, deadline: float) -> Future:
        """One section on this thread, its outcome as a completed future."""
        future: Future = Future()
        started = time.monotonic()
        try:
            if started >= self.budget_end:
                raise SectionTimeout
            with self.backend.section(self.conn, deadline), tracing.section_span(section):
                if self.in_transaction:  # a savepoint: a failed statement spares the rest
                    with transaction.atomic(using=self.conn.alias):
                        payload = section.fetch(self.context)
                else:
                    payload = section.fetch(self.context)
            future.set_result((payload, time.monotonic() - started))
        except Exception as exc:  # becomes the section's error outcome
            self.backend.observe(exc)
            future.set_exception(exc)
        return future


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
    conn = connections[using]
    inline = _Inline(
        conn=conn,
        backend=deadline_for(conn),
        context=context,
        in_transaction=conn.in_atomic_block,
        budget_end=start + settings.REQUEST_TIMEOUT / 1000,
    )
    submitted: list[tuple[Section, Future, float]] = []
    try:
        remaining_ms(start + query_timeout_ms / 1000)
        conn.ensure_connection()
        inline.backend.limit(conn, start + query_timeout_ms / 1000, local=inline.in_transaction)
        for section in sections:
            timeout_s = (section.timeout_ms or query_timeout_ms) / 1000
            deadline = min(time.monotonic() + timeout_s, inline.budget_end)
            submitted.append((section, inline.run(section, deadline), deadline))
    except SectionTimeout:
        pass  # no budget left at all: every section is reported as timed out below
    except DatabaseError as exc:  # could not even set the limit: the database is away
        submitted += [(section, _failed(exc), start) for section in sections[len(submitted) :]]
    finally:
        if not inline.in_transaction:
            inline.backend.clear(conn)
    submitted += [(s, _failed(SectionTimeout()), start) for s in sections[len(submitted) :]]
    return _collect(submitted)


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


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
        shared_client = not deadline_for(connections[using]).per_thread_connection
        pool_using = using if shared_client else DEFAULT_DB_ALIAS
        return run_sections(sections, context, snapshot_id=snapshot_id, using=pool_using)
    return run_sections_inline(sections, context, using=using)


def _collect(submitted: list[tuple[Section, Future, float]]) -> list[SectionOutcome]:
    outcomes = []
    for section, future, deadline in submitted:
        try:
            payload, seconds = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout as exc:
            future.cancel()  # still queued: never start it
            outcomes.append(failed_outcome(section, exc))
        except Exception as exc:  # a section's failure must not fail the request
            outcomes.append(failed_outcome(section, exc))
        else:
            outcomes.append(succeeded_outcome(section, payload, seconds))
    return outcomes


def succeeded_outcome(section: Section, payload: SectionPayload, seconds: float) -> SectionOutcome:
    """A section's payload as its outcome, its duration recorded."""
    metrics.section_duration.labels(section.id).observe(seconds)
    return SectionOutcome(section, payload)


def failed_outcome(section: Section, error: BaseException) -> SectionOutcome:
    """A section's failure as its outcome (a stable code and message), counted and logged."""
    code = classify_error(error)
    metrics.section_failures.labels(section.id, code).inc()
    if code == ErrorCode.TIMEOUT_ERROR:
        logger.warning("Section %s timed out", section.id)
    else:
        logger.error("Section %s failed", section.id, exc_info=error)
    return SectionOutcome(
        section,
        None,
        error_code=code,
        error_message=_MESSAGES[code].format(title=section.title.lower()),
    )
