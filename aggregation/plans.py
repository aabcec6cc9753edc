"""Query plans: a section's reads as steps, so many sections' reads can share round trips.

A plan is a generator. Each ``yield`` hands the driver one *step*: a tuple of
requests that do not depend on each other (``Rows`` of a queryset, an
``Aggregate``, a ``SharedTotal``); the driver sends back their results, in
order, and the plan either yields its next step (one that needed those
results) or returns its value::

    def overview(*, trainer_id: int) -> Plan[dict]:
        row, documents = yield (Rows(profile_qs), Rows(documents_qs))
        return {...}

Who drives decides how the reads travel. ``run_plan`` (and calling a
``@planned`` function) evaluates each request with the ORM as it comes, on
any backend. ``aggregation/pipeline.py`` drives the plans of every section of
a request together on PostgreSQL: each step of every plan goes out in one
psycopg pipeline, so a cold response costs one round trip per step, not one
per query.

A step is the last one unless it is marked ``more(...)``: the pipeline sends
``COMMIT`` with the last steps, so a plan that marks a step last and then
yields again fails (as a section error), and one that marks a step ``more``
and then returns costs one extra round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any, Generic, ParamSpec, TypeVar

from django.db.models import Count, Min

from caching.counts import cached_total

from .shapes import Query, derive, queryset_of

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Rows:
    """Every row ``queryset`` yields when iterated (dicts, tuples, values or instances)."""

    queryset: Query


@dataclass(frozen=True)
class Aggregate:
    """``queryset.aggregate(**aggregates)``: one dict."""

    queryset: Query
    aggregates: dict[str, Any]


@dataclass(frozen=True)
class SharedTotal:
    """A ``COUNT(*)`` shared through the cache (``caching.counts``): ``(total, leaves_at)``.

    ``exit`` is an expression: the moment a row leaves the counted set (None:
    never by time); ``leaves_at`` is its minimum, in epoch seconds, or None.
    The driver takes it from the cache when it is there, and counts otherwise.
    """

    key: str
    tags: tuple[str, ...]
    namespace: str
    queryset: Query
    exit: Any = None

    def aggregate(self) -> Aggregate:
        """The query that counts it (``COUNT(*)``: answerable from a partial index alone)."""
        aggregates: dict[str, Any] = {"n": Count("*")}
        if self.exit is not None:
            aggregates["leaves"] = Min(self.exit)
        unordered = derive(self.queryset, "unordered", lambda queryset: queryset.order_by())
        return Aggregate(unordered, aggregates)

    @staticmethod
    def value(found: dict[str, Any]) -> tuple[int, float | None]:
        """``(total, leaves_at)`` from what its ``aggregate()`` returned."""
        leaves = found.get("leaves")
        return found["n"], leaves.timestamp() if leaves is not None else None


Request = Rows | Aggregate | SharedTotal


class Step(tuple):  # a tuple of requests, marked as not the last
    """A step after which the plan yields again (``more(...)``)."""


def more(*requests: Request) -> Step:
    """A step that is not the plan's last: the pipeline keeps its transaction open after it."""
    return Step(requests)


def is_last(step: Sequence[Request]) -> bool:
    """True unless the step was marked ``more(...)``."""
    return not isinstance(step, Step)


# A plan yields steps (tuples of requests), is sent their results, and returns its value.
Plan = Generator[Sequence[Request], list[Any], T]


@dataclass
class Started:
    """A plan already advanced to its first step (``start``), kept to be driven on."""

    plan: Plan[Any]
    step: Sequence[Request]


def start(plan: Plan[Any]) -> Started | None:
    """``plan`` advanced to its first step; None if it returned or failed without one.

    (A plan builds querysets, and touches no database, before its first ``yield``.)
    """
    try:
        return Started(plan, next(plan))
    except Exception:  # noqa: BLE001  # it fails again when it runs, and is reported then
        plan.close()
        return None


def shared_totals(
    sections: Iterable[Any], context: Any, started: dict[str, Started]
) -> list[SharedTotal]:
    """The shared totals the sections' plans ask for in their first steps.

    Known before anything runs, so they can be read from the cache in the
    round trip that takes the lock. The plans started to learn them are kept
    in ``started`` (by section id), for the driver to go on with.
    """
    totals = []
    for section in sections:
        if section.plan is None:
            continue
        begun = start(section.plan(context))
        if begun is not None:
            started[section.id] = begun
            totals += [r for r in begun.step if isinstance(r, SharedTotal)]
    return totals


def evaluate(request: Request) -> Any:
    """One request, run at once with the ORM (any backend)."""
    if isinstance(request, Rows):
        return list(queryset_of(request.queryset))
    if isinstance(request, Aggregate):
        return queryset_of(request.queryset).order_by().aggregate(**request.aggregates)

    def count() -> tuple[int, float | None]:
        return SharedTotal.value(evaluate(request.aggregate()))

    return cached_total(request.key, count, tags=request.tags, namespace=request.namespace)


def run_plan(plan: Plan[T]) -> T:
    """Drive ``plan`` to its value, one query after another."""
    results: list[Any] | None = None
    while True:
        try:
            step = plan.send(results) if results is not None else next(plan)
        except StopIteration as stop:
            return stop.value
        results = [evaluate(request) for request in step]


class Planned(Generic[P, T]):
    """A plan function that can also be called as a plain one (``@planned``).

    ``f(...)`` runs the plan at once (``run_plan``); ``f.plan(...)`` is the plan
    itself, for a driver that batches it with others.
    """

    def __init__(self, plan: Callable[P, Plan[T]]) -> None:
        self.plan = plan
        update_wrapper(self, plan)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_plan(self.plan(*args, **kwargs))


def planned(plan: Callable[P, Plan[T]]) -> Planned[P, T]:
    """Make a plan function callable as a plain function as well (see ``Planned``)."""
    return Planned(plan)
