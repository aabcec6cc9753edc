"""Query shapes: a queryset built and compiled once, its values bound on each use.

Building a queryset and compiling it to SQL is most of a cold section's
Python time, and for a given section it yields the same SQL every time: only
the values differ (the moment ``now``, a user's id). A ``Shape`` is a
function that builds the queryset, with the names of the arguments that are
*bound* (values in the SQL's parameters) rather than *structural* (the rest,
which may change the SQL: a limit, the columns)::

    NEW_OFFERS = Shape(
        lambda now, limit: Offer.objects.valid(now).order_by("-created_at")[:limit],
        binds=("now",),
    )
    read = Rows(NEW_OFFERS(now=now, limit=21))

On PostgreSQL the pipeline asks a bound shape for its SQL (``compiled``):
the first use of each structure builds the queryset twice with stand-in
values of the arguments' types, compiles both, and keeps the SQL and where
each value lands in the parameters, if the two agree (the same SQL, every
stand-in found where the other's is); every later use copies the parameters
and puts the values in. Rows are read with the ORM's converters, into what
the queryset would yield. A structure whose SQL depends on a bound value in
a way the stand-ins cannot show (a value transformed before it reaches the
SQL, a type without stand-ins, instances rather than ``values()`` rows) is
built and compiled on each use, as a plain queryset is: slower, never wrong.

A shape's build must not branch on a bound value. ``QUERY_SHAPES_VERIFY``
(on in the tests) checks every use against a fresh build and compile.

Elsewhere (SQLite, MongoDB, ``run_plan``) a bound shape is just its
queryset, built on use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.db.models.query import FlatValuesListIterable, ValuesIterable, ValuesListIterable
from psycopg.types.numeric import Int2

logger = structlog.get_logger(__name__)

Reader = Callable[[list[tuple[Any, ...]]], list[Any]]


class ShapeMismatch(AssertionError):
    """A bound shape's SQL or parameters differ from its queryset's (``QUERY_SHAPES_VERIFY``)."""


@dataclass(frozen=True)
class Compiled:
    """A query ready to send: its SQL, its parameters, and how to read its rows."""

    sql: str
    params: Sequence[Any]
    read: Reader


class Shape:
    """A queryset builder whose SQL depends only on its structural arguments (see module)."""

    def __init__(self, build: Callable[..., QuerySet], *, binds: Iterable[str] = ()) -> None:
        self.build = build
        self.binds = frozenset(binds)
        unknown = self.binds - set(inspect.signature(build).parameters)
        if unknown:
            raise TypeError(f"binds names no argument of the build: {sorted(unknown)}")
        self._templates: dict[Hashable, _Template | None] = {}
        self._derived: dict[Hashable, Shape] = {}

    def __call__(self, **arguments: Any) -> Bound:
        structure = tuple(sorted((k, v) for k, v in arguments.items() if k not in self.binds))
        values = tuple(sorted((k, v) for k, v in arguments.items() if k in self.binds))
        return Bound(self, structure, values)

    def derived(self, key: Hashable, step: Callable[[QuerySet], QuerySet]) -> Shape:
        """The shape of this one's queryset with ``step`` applied, one per ``key``.

        ``key`` must name everything ``step`` depends on: the first ``step``
        given a key is the one kept.
        """
        shape = self._derived.get(key)
        if shape is None:
            build = self.build

            def derived_build(**arguments: Any) -> QuerySet:
                return step(build(**arguments))

            derived_build.__signature__ = inspect.signature(build)  # type: ignore[attr-defined]
            shape = self._derived.setdefault(key, Shape(derived_build, binds=self.binds))
        return shape


@dataclass(frozen=True)
class Bound:
    """A shape with its arguments: a queryset not yet built."""

    shape: Shape
    structure: tuple[tuple[str, Any], ...]
    values: tuple[tuple[str, Any], ...]

    def queryset(self) -> QuerySet:
        """The queryset itself, built now."""
        return self.shape.build(**dict(self.structure), **dict(self.values))

    def then(self, key: Hashable, step: Callable[[QuerySet], QuerySet]) -> Bound:
        """The queryset with ``step`` applied, still bound (``Shape.derived``)."""
        return Bound(self.shape.derived(key, step), self.structure, self.values)


Query = QuerySet | Bound


def queryset_of(query: Query) -> QuerySet:
    """The queryset ``query`` is (built now, if it is a bound shape)."""
    return query.queryset() if isinstance(query, Bound) else query


def derive(query: Query, key: Hashable, step: Callable[[QuerySet], QuerySet]) -> Query:
    """``step`` applied to ``query``: at once to a queryset, as a derived shape to a bound one."""
    return query.then(key, step) if isinstance(query, Bound) else step(query)


def compiled(query: Query, connection: BaseDatabaseWrapper) -> Compiled:
    """``query``'s SQL, parameters and reader on ``connection``.

    Raises ``EmptyResultSet`` when the query needs no round trip (no rows).
    """
    if isinstance(query, Bound):
        template = _template(query, connection)
        found = template.bind(dict(query.values), connection) if template is not None else None
        if found is not None:
            if settings.QUERY_SHAPES_VERIFY:
                _verify(query, found, connection)
            return found
        query = query.queryset()
    return _compile_queryset(query, connection)


# --- plain querysets --------------------------------------------------------


def _compile_queryset(queryset: QuerySet, connection: BaseDatabaseWrapper) -> Compiled:
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()

    def read(rows: list[tuple[Any, ...]]) -> list[Any]:
        # Django's own iterable, handed the rows instead of running the SQL, so
        # converters, names and select_related instances are built as the ORM builds them.
        compiler.execute_sql = lambda *args, **kwargs: iter([rows])
        queryset.query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
        return list(cast(Iterable[Any], queryset._iterable_class(queryset)))

    return Compiled(sql, params, read)


# --- templates --------------------------------------------------------------

# A parameter's position, its bound name, the index in a sequence value, and
# the type the driver was handed (Django gives PostgreSQL ``Int4(n)`` for an
# integer column's ``n``), or None if the value goes as it is.
_Slot = tuple[int, str, int | None, type | None]
_INT_MAX = 2**31 - 1  # within every integer column's range but a small one's
_INT_LIMITS: dict[type | None, int] = {Int2: 2**15 - 1}


@dataclass
class _Template:
    sql: str
    params: list[Any]
    slots: list[_Slot]
    names: list[str] | None  # dict keys (values()); None: tuples
    flat: bool
    converters: list[tuple[int, tuple[list[Any], Any]]] = field(default_factory=list)

    def bind(self, values: dict[str, Any], connection: BaseDatabaseWrapper) -> Compiled | None:
        """The query with ``values`` in; None when one is outside what the template holds."""
        params = list(self.params)
        for position, name, index, wrap in self.slots:
            value = values[name] if index is None else values[name][index]
            if isinstance(value, int) and not 0 <= value <= _INT_LIMITS.get(wrap, _INT_MAX):
                # Django's SQL changes for an integer out of its column's range
                # (no query, or no condition): compiled for this use alone.
                return None
            params[position] = value if wrap is None else wrap(value)
        return Compiled(self.sql, params, lambda rows: self.read(rows, connection))

    def read(self, rows: list[tuple[Any, ...]], connection: BaseDatabaseWrapper) -> list[Any]:
        converted = self._converted(rows, connection) if self.converters else rows
        if self.flat:
            return [row[0] for row in converted]
        if self.names is None:
            return [tuple(row) for row in converted]
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in converted]

    def _converted(
        self, rows: list[tuple[Any, ...]], connection: BaseDatabaseWrapper
    ) -> Iterator[list[Any]]:
        for fetched in rows:
            row = list(fetched)
            for position, (converters, expression) in self.converters:
                value = row[position]
                for converter in converters:
                    value = converter(value, expression, connection)
                row[position] = value
            yield row


def _template(bound: Bound, connection: BaseDatabaseWrapper) -> _Template | None:
    key = (connection.alias, connection.vendor, bound.structure, _signature(bound.values))
    templates = bound.shape._templates
    try:
        if key in templates:
            return templates[key]
    except TypeError:  # an unhashable structure: nothing to key a template by
        return None
    try:
        template = _make_template(bound, connection)
    except Exception as exc:  # noqa: BLE001  # a stand-in the build refuses: compiled per use
        template = _not_a_template(bound, f"a stand-in was refused: {type(exc).__name__}")
    templates[key] = template
    return template


def _signature(values: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """The types of the bound values (a sequence's, element by element)."""
    return tuple(
        (name, tuple(map(_kind, value)) if isinstance(value, list | tuple) else _kind(value))
        for name, value in values
    )


def _kind(value: Any) -> Any:
    if isinstance(value, datetime):
        return (datetime, value.tzinfo)
    return type(value)


def _stand_in(value: Any, serial: int) -> Any:
    """A value of ``value``'s type that no query holds by chance (None: no such value)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return datetime(1999, 12, 31, 23, 58, tzinfo=value.tzinfo) + timedelta(microseconds=serial)
    if isinstance(value, int):
        return 1_987_000_000 + serial
    if isinstance(value, float):
        return -1_987_000_000.25 - serial
    if isinstance(value, str):
        return f"\x00shape-stand-in-{serial}\x00"
    return None


def _stand_ins(
    values: tuple[tuple[str, Any], ...], first: int
) -> tuple[dict[str, Any], dict[Any, tuple[str, int | None]]] | None:
    """Stand-ins for every bound value, and where each leaf stand-in belongs."""
    arguments: dict[str, Any] = {}
    leaves: dict[Any, tuple[str, int | None]] = {}
    serial = first
    for name, value in values:
        sequence = isinstance(value, list | tuple)
        stand_ins = []
        for index, item in enumerate(value if sequence else [value]):
            stand_in = _stand_in(item, serial)
            if stand_in is None:
                return None
            serial += 1
            stand_ins.append(stand_in)
            leaves[(_base(type(stand_in)), stand_in)] = (name, index if sequence else None)
        arguments[name] = type(value)(stand_ins) if sequence else stand_ins[0]
    return arguments, leaves


def _compile_with(
    bound: Bound, connection: BaseDatabaseWrapper, first: int
) -> tuple[str, list[Any], list[_Slot], Any, QuerySet] | None:
    found = _stand_ins(bound.values, first)
    if found is None:
        return None
    arguments, leaves = found
    queryset = bound.shape.build(**dict(bound.structure), **arguments)
    compiler = queryset.query.get_compiler(connection=connection)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    slots: list[_Slot] = []
    for position, param in enumerate(params):
        leaf = leaves.get((_base(type(param)), param)) if _hashable(param) else None
        if leaf is not None:
            wrap = type(param) if type(param) is not _base(type(param)) else None
            slots.append((position, *leaf, wrap))
    return sql, list(params), slots, compiler, queryset


def _base(kind: type) -> type:
    """The plain type a stand-in is of (``Int4`` is an ``int``; a ``bool`` is not)."""
    if kind is bool:
        return bool
    for base in (datetime, int, float, str):
        if issubclass(kind, base):
            return base
    return kind


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _make_template(bound: Bound, connection: BaseDatabaseWrapper) -> _Template | None:
    """The template of ``bound``'s structure, or None when it cannot be one (see module)."""
    one = _compile_with(bound, connection, 1)
    other = _compile_with(bound, connection, 1001)
    if one is None or other is None:
        return _not_a_template(bound, "a value without stand-ins, or no query")
    sql, params, slots, compiler, queryset = one
    sql_2, params_2, slots_2, _, _ = other
    if (
        sql != sql_2
        or slots != slots_2
        or {(name, index) for _, name, index, _ in slots} != _leaves(bound.values)
        or any(params[i] != params_2[i] for i in range(len(params)) if i not in _positions(slots))
    ):
        return _not_a_template(bound, "its SQL depends on a bound value")
    iterable = queryset._iterable_class
    if iterable is ValuesIterable:
        query = queryset.query
        names = list(query.selected) if query.selected else [
            *query.extra_select, *query.values_select, *query.annotation_select
        ]  # fmt: skip
    elif iterable in (ValuesListIterable, FlatValuesListIterable):
        names = None
    else:
        return _not_a_template(bound, "it yields instances, not values() rows")
    fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
    if compiler.has_composite_fields(fields):
        return _not_a_template(bound, "a composite field")
    converters = compiler.get_converters(fields)
    return _Template(
        sql,
        params,
        slots,
        names,
        iterable is FlatValuesListIterable,
        sorted(converters.items()),
    )


def _leaves(values: tuple[tuple[str, Any], ...]) -> set[tuple[str, int | None]]:
    leaves: set[tuple[str, int | None]] = set()
    for name, value in values:
        if isinstance(value, list | tuple):
            leaves |= {(name, index) for index in range(len(value))}
        else:
            leaves.add((name, None))
    return leaves


def _positions(slots: list[_Slot]) -> set[int]:
    return {slot[0] for slot in slots}


def _not_a_template(bound: Bound, reason: str) -> _Template | None:
    """None, logged: ``bound``'s structure is built and compiled on each use."""
    logger.info("query_shape_compiled_per_use", build=bound.shape.build.__qualname__, reason=reason)
    return None


def _verify(bound: Bound, found: Compiled, connection: BaseDatabaseWrapper) -> None:
    expected = _compile_queryset(bound.queryset(), connection)
    if (expected.sql, list(expected.params)) != (found.sql, list(found.params)):
        raise ShapeMismatch(
            f"{bound.shape.build.__qualname__}: a bound shape's query differs from its queryset's:"
            f"\n{found.sql} {list(found.params)}\n{expected.sql} {list(expected.params)}"
        )


def is_template(query: Query, connection: BaseDatabaseWrapper) -> bool:
    """True when ``query`` is a bound shape compiled once for its structure (tests, docs)."""
    return isinstance(query, Bound) and _template(query, connection) is not None
