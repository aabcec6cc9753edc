"""Every section's reads in one round trip per step: psycopg's pipeline mode on PostgreSQL.

The sections of a request are plans (``plans.py``). Their first steps go out
together in one pipeline on the request's own connection, inside one
read-only transaction, and are read back after one sync; plans that need a
second step (one that depends on the first's rows) send it the same way. A
cold homepage is one round trip to PostgreSQL, a personalised one two; a
bootstrap is one, and its one transaction (REPEATABLE READ) is its
consistent snapshot, with nothing exported and no threads.

What one pipeline holds::

    BEGIN [ISOLATION LEVEL REPEATABLE READ] READ ONLY     first step only
    set_config('aggregation.budget_end', now + REQUEST_TIMEOUT)
    SAVEPOINT s3; set_config('statement_timeout', ...)      per section
        the section's queries
    ...
    COMMIT                                                 with the last steps

Deadlines: each section's ``statement_timeout`` is worked out by the server
when the section starts, as its own timeout or what is left of the request's
budget, whichever is less; so the database stops a query at its deadline, and
a section that starts after the budget is spent times out at once.

Failures: when a statement fails (its deadline, an error), the server skips
the rest of the pipeline. The failed section gets its error (its fallback is
served); the transaction goes back to that section's savepoint and the
sections after it are sent again in the next round trip. So one failed
section costs the others one round trip, and never their results.

Inside a transaction that is already open (a test's, a write's), the
pipeline runs in a savepoint that is rolled back at the end (it only read),
which also undoes its settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from caching.counts import peek_total, store_total

from . import tracing
from .errors import ErrorCode
from .plans import Aggregate, Plan, Request, SharedTotal, Started, evaluate, is_last
from .runner import SectionOutcome, classify_error, failed_outcome, succeeded_outcome
from .sections import Section, SectionContext, SectionPayload
from .shapes import compiled, derive

BUDGET = (
    "SELECT set_config('aggregation.budget_end',"
    " (clock_timestamp() + %s * interval '1 millisecond')::text, true)"
)
# The section's own timeout, or what is left of the budget (at least 1 ms: out of time).
TIMEOUT = (
    "SELECT set_config('statement_timeout', GREATEST(1, LEAST(%s, (1000 * EXTRACT(EPOCH FROM"
    " current_setting('aggregation.budget_end')::timestamptz - clock_timestamp()))::int))::text,"
    " true)"
)
OUTER = "aggregation_pipeline"
CONNECTION_LOST = ErrorCode.DB_CONNECTION_ERROR


class PlanError(Exception):
    """A plan broke its contract (it yielded again after a step marked last)."""


@dataclass
class _Section:
    """One section's plan while it runs."""

    index: int
    section: Section
    plan: Plan[SectionPayload]
    started: float
    step: Sequence[Request] = ()
    results: list[Any] = field(default_factory=list)
    outcome: SectionOutcome | None = None
    span: Any = None  # its trace span (tracing.started_section)

    @property
    def savepoint(self) -> str:
        return f"s{self.index}"


@dataclass
class _Statement:
    """One statement of a pipeline: whose it is (None: the pipeline's own), and its result."""

    sql: str
    params: Sequence[Any] | None
    owner: _Section | None = None
    read: Any = None  # turns the cursor's rows into the request's result
    prepare: bool | None = False  # None: as often-run queries are (prepare_threshold)
    cursor: Any = None
    done: bool = False


class _Run:
    """Drives every section's plan on one connection (see the module docstring)."""

    def __init__(
        self,
        sections: list[Section],
        context: SectionContext,
        *,
        using: str,
        consistent: bool,
        started: dict[str, Started],
    ) -> None:
        self.conn: BaseDatabaseWrapper = connections[using]
        self.using = using
        self.consistent = consistent
        self.query_timeout_ms = settings.QUERY_TIMEOUT
        self.nested = self.conn.in_atomic_block
        self.running: list[_Section] = []
        self.fresh_start = True  # nothing sent yet on this connection (a retry is safe)
        now = time.monotonic()
        for index, section in enumerate(sections):
            assert section.plan is not None  # noqa: S101  # callers pass planned sections only
            begun = started.pop(section.id, None)  # taken: a second run starts afresh
            plan = begun.plan if begun is not None else section.plan(context)
            state = _Section(index, section, plan, now)
            state.span = tracing.started_section(section)
            self.running.append(state)
            if begun is not None:
                state.step = begun.step
            else:
                self._advance(state, None)

    # --- plans ---------------------------------------------------------------

    def _advance(self, state: _Section, results: list[Any] | None) -> None:
        """Send ``results`` to the plan; keep its next step, or its outcome."""
        last = bool(state.step) and is_last(state.step)
        try:
            step = state.plan.send(results) if results is not None else next(state.plan)
            if last:
                raise PlanError(f"{state.section.id}: a step after one marked last")
        except StopIteration as stop:
            seconds = time.monotonic() - state.started
            state.outcome = succeeded_outcome(state.section, stop.value, seconds)
            state.step = ()
            state.span.end("success")
            return
        except Exception as exc:  # the section fails, not the request
            self._fail(state, exc)
            return
        state.step, state.results = step, []

    def _fail(self, state: _Section, error: BaseException) -> None:
        state.plan.close()
        state.outcome = failed_outcome(state.section, error)
        state.step = ()
        state.span.end(type(error).__name__, error)

    @property
    def waiting(self) -> list[_Section]:
        return [s for s in self.running if s.outcome is None]

    # --- statements ----------------------------------------------------------

    def _requests(self, state: _Section) -> list[_Statement] | None:
        """The statements of a section's step; None when none is needed (all known already)."""
        statements: list[_Statement] = []
        state.results = [None] * len(state.step)
        for position, request in enumerate(state.step):
            statement = self._statement(state, position, request)
            if statement is not None:
                statements.append(statement)
        return statements or None

    def _statement(self, state: _Section, position: int, request: Request) -> _Statement | None:
        def result(value: Any) -> None:
            state.results[position] = value

        if isinstance(request, SharedTotal):
            total, generations = peek_total(
                request.key, tags=request.tags, namespace=request.namespace
            )
            if total is not None:
                result(total)
                return None
            counted = request.aggregate()
            started = time.time()

            def share(found: dict[str, Any]) -> None:
                value = SharedTotal.value(found)
                store_total(
                    request.key,
                    value,
                    namespace=request.namespace,
                    generations=generations,
                    started=started,
                )
                result(value)

            return self._aggregate(state, counted, share)
        if isinstance(request, Aggregate):
            return self._aggregate(state, request, result)
        try:
            query = compiled(request.queryset, self.conn)
        except EmptyResultSet:
            result([])
            return None
        return _Statement(
            query.sql, query.params, state, lambda rows: result(query.read(rows)), None
        )

    def _aggregate(self, state: _Section, request: Aggregate, result: Any) -> _Statement | None:
        aggregates = request.aggregates
        values = derive(
            request.queryset,
            ("aggregate", tuple(sorted(aggregates.items()))),
            lambda queryset: (
                queryset.order_by().values(one_=_one()).annotate(**aggregates).values(*aggregates)
            ),
        )
        try:
            query = compiled(values, self.conn)
        except EmptyResultSet:
            result(evaluate(request))
            return None
        return _Statement(
            query.sql, query.params, state, lambda rows: result(query.read(rows)[0]), None
        )

    def _round(self, first: bool, rollback_to: _Section | None) -> list[_Statement]:
        """The statements of the next round trip (empty: nothing left to send)."""
        statements: list[_Statement] = []
        if first:
            if self.nested:
                statements.append(_Statement(f"SAVEPOINT {OUTER}", None))
            else:
                isolation = "ISOLATION LEVEL REPEATABLE READ " if self.consistent else ""
                statements.append(_Statement(f"BEGIN {isolation}READ ONLY", None))
            statements.append(_Statement(BUDGET, [settings.REQUEST_TIMEOUT]))
        if rollback_to is not None:
            statements.append(_Statement(f"ROLLBACK TO SAVEPOINT {rollback_to.savepoint}", None))
        for state in self.waiting:
            while state.outcome is None:
                requests = self._requests(state)
                if requests is not None:
                    timeout = state.section.timeout_ms or self.query_timeout_ms
                    statements += [
                        _Statement(f"SAVEPOINT {state.savepoint}", None, state),
                        _Statement(TIMEOUT, [timeout], state, prepare=None),
                        *requests,
                    ]
                    break
                self._advance(state, state.results)  # all known already: on to its next step
        if all(is_last(s.step) for s in self.waiting):
            statements += self._end()
        return statements

    def _end(self) -> list[_Statement]:
        if self.nested:  # it only read: rolling back undoes its settings and leaves the rest
            return [
                _Statement(f"ROLLBACK TO SAVEPOINT {OUTER}", None),
                _Statement(f"RELEASE SAVEPOINT {OUTER}", None),
            ]
        return [_Statement("COMMIT", None)]

    # --- the wire ------------------------------------------------------------

    def _send(self, statements: list[_Statement]) -> DatabaseError | None:
        """One round trip: every statement in one pipeline. The first error, if any."""
        raw = self.conn.connection
        started = time.monotonic()
        try:
            with self.conn.wrap_database_errors, raw.pipeline():
                for statement in statements:
                    statement.cursor = raw.cursor()
                    statement.cursor.execute(
                        statement.sql, statement.params, prepare=statement.prepare
                    )
        except DatabaseError as exc:
            error: DatabaseError | None = exc
            # psycopg can count a statement whose Parse the server skipped (the
            # pipeline was aborted) as prepared; forget them all (DEALLOCATE ALL
            # goes out with the next statement) rather than trust that.
            raw._prepared.clear()
        else:
            error = None
        for statement in statements:
            statement.done = statement.cursor is not None and statement.cursor.pgresult is not None
        if self.conn.queries_logged:  # as Django's debug cursor would (debug, query counts)
            seconds = (time.monotonic() - started) / len(statements)
            self.conn.queries_log.extend(
                {"sql": s.sql if s.params is None else f"{s.sql} {list(s.params)}",
                 "time": f"{seconds:.3f}"}
                for s in statements
            )  # fmt: skip
        return error

    def run(self) -> list[SectionOutcome]:
        """Every section's outcome, in order."""
        kept = self.conn.connection is not None
        try:
            self.conn.ensure_connection()
            try:
                self._rounds()
            except OperationalError as exc:
                # A connection kept from before can have died since (the database
                # restarted, an operator ended it) before this run sent anything:
                # no reason to fail the sections. Once more on a new connection.
                if not (kept and self.fresh_start and classify_error(exc) == CONNECTION_LOST):
                    raise
                self.conn.close()
                getattr(self.conn, "ensure_live_connection", self.conn.ensure_connection)()
                self._rounds()
        except DatabaseError as exc:  # the pipeline itself failed: every section waiting fails
            for state in self.waiting:
                self._fail(state, exc)
            self._abandon()
        return [s.outcome for s in self.running if s.outcome is not None]

    def _rounds(self) -> None:
        first, rollback_to = True, None
        self.fresh_start = True
        while True:
            statements = self._round(first, rollback_to)
            error = self._send(statements)
            first = False
            rollback_to, ended = self._read(statements, error)
            self.fresh_start = False
            if ended:
                return

    def _read(
        self, statements: list[_Statement], error: DatabaseError | None
    ) -> tuple[_Section | None, bool]:
        """Hand each section what came back; the section to roll back to, and whether it ended."""
        failed = next((s for s in statements if not s.done), None)
        if failed is not None and failed.owner is None:
            # BEGIN, COMMIT...: not a section's statement, so the run cannot go on
            raise error or DatabaseError("The pipeline stopped")
        aborted: set[int] = set()
        for statement in statements:
            owner = statement.owner
            if owner is None or owner.outcome is not None:
                continue
            if statement is failed:
                self._fail(owner, error or DatabaseError("Statement failed"))
                continue
            if not statement.done:
                aborted.add(owner.index)
            elif statement.read is not None:
                statement.read(statement.cursor.fetchall())
        for state in self.waiting:
            if state.index not in aborted:
                self._advance(state, state.results)
        ended = failed is None and any(s.owner is None and s.sql in _ENDS for s in statements)
        return (failed.owner if failed is not None else None), ended

    def _abandon(self) -> None:
        """Leave the connection as the pool expects it, or see that it is not reused."""
        raw = self.conn.connection
        try:
            if self.nested:
                self.conn.needs_rollback = True
            elif raw is not None and not raw.closed:
                raw.rollback()
        except Exception:  # noqa: BLE001  # a broken connection: closed at the end of the request
            self.conn.errors_occurred = True


_ENDS = {"COMMIT", f"RELEASE SAVEPOINT {OUTER}"}


def _one() -> Any:
    from django.db.models import IntegerField, Value

    return Value(1, IntegerField())


def can_pipeline(sections: list[Section], using: str) -> bool:
    """True when every section has a plan and ``using`` is PostgreSQL (psycopg 3)."""
    return connections[using].vendor == "postgresql" and all(s.plan for s in sections)


def run_pipelined(
    sections: list[Section],
    context: SectionContext,
    *,
    using: str,
    consistent: bool,
    started: dict[str, Started] | None = None,
) -> list[SectionOutcome]:
    """Run the sections' plans together on ``using``'s connection; one outcome each, in order.

    ``consistent``: one REPEATABLE READ transaction (one point in time for all).
    ``started``: plans already advanced to their first step, by section id
    (taken as they are used). Never raises for a section's failure.
    """
    started = started if started is not None else {}
    return _Run(sections, context, using=using, consistent=consistent, started=started).run()
