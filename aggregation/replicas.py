"""Read replicas for the aggregation endpoints' section reads, without losing read-your-writes.

PostgreSQL streaming replicas (``DATABASE_REPLICA_URLS``) serve the sections
that run on the request thread (``SECTIONS_IN_PARALLEL=false``, the default);
every write, every read inside a write's transaction and everything else goes
to the primary (``ReplicaRouter``).

A replica lags. So that a recomputation never reads a replica older than a
write it must show:

- before a tag's generation is bumped (after the write committed), the
  primary's WAL position (``pg_current_wal_lsn()``) is recorded for the tag in
  Redis (``ZADD GT``: never lowered), beside the generation;
- before sections are recomputed (their generations already read), the
  positions of their tags are read, and a replica is used only if it has
  replayed past the largest (``pg_last_wal_replay_lsn()``); otherwise, or when
  Redis cannot say, the primary. Positions lost with Redis are covered by a
  floor recreated at the primary's current position;
- a replica that fails, or lags more than ``REPLICA_MAX_LAG_S`` seconds, is left
  alone for ``REPLICA_RETRY_AFTER_S`` seconds. Readiness and the
  ``aggregation_replica_lag_seconds`` gauge show each one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from prometheus_client import Counter, Gauge

from caching.keys import TAG_LSN_KEY
from caching.process import register_state
from caching.shared import SharedCacheUnavailable, shared_cache

logger = logging.getLogger(__name__)

T = TypeVar("T")

lag_seconds = Gauge(
    "aggregation_replica_lag_seconds", "Replay lag of each read replica (seconds).", ["replica"]
)
section_reads = Counter(
    "aggregation_section_reads_total",
    "Section computations by the database they read (default: the primary).",
    ["database"],
)

_reading: ContextVar[str | None] = ContextVar("replica_reading", default=None)
_down_until: dict[str, float] = {}
_lock = threading.Lock()

FLOOR = "*"  # no tag is named "*"
_POSITION = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
_REPLAY = (
    "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
    "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


def replica_aliases() -> list[str]:
    """The configured replicas' database aliases (``replica0``...)."""
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


class ReplicaRouter:
    """Reads go where ``reading(alias)`` says (section reads); everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        """The replica chosen for the current sections, if any."""
        alias = _reading.get()
        if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None  # the primary (and always inside a write's transaction)
        return alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        """Always the primary."""
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        """Replicas hold the same rows as the primary."""
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """Only the primary is migrated; replicas follow it."""
        return db == DEFAULT_DB_ALIAS


@contextlib.contextmanager
def reading(alias: str) -> Iterator[None]:
    """Route the ORM's reads in this block to ``alias``."""
    token = _reading.set(None if alias == DEFAULT_DB_ALIAS else alias)
    try:
        yield
    finally:
        _reading.reset(token)


def record_write_position(tags: list[str]) -> None:
    """Remember where the primary's WAL is for ``tags`` (a before-invalidation hook)."""
    if not replica_aliases():
        return
    shared_cache.zadd_max(TAG_LSN_KEY, dict.fromkeys(tags, _primary_position()))


def _primary_position() -> float:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_POSITION)
        return float(cursor.fetchone()[0])


def _required_position(tags: Iterable[str]) -> float | None:
    """The WAL position a reader of ``tags`` must see; None when it cannot be known.

    A tag never written has no position; but positions lost with Redis (a
    restart, a flush) must not read as "never written". So the set also holds
    a floor, created at the primary's current position whenever it is missing:
    after a loss every reader needs a replica that has replayed up to then.
    """
    tags = sorted(set(tags))
    try:
        floor, *scores = shared_cache.zscores(TAG_LSN_KEY, [FLOOR, *tags])
        if floor is None:
            floor = _primary_position()
            shared_cache.zadd_max(TAG_LSN_KEY, {FLOOR: floor})
    except (SharedCacheUnavailable, DatabaseError):
        return None
    return max((s for s in scores if s is not None), default=floor)


def _replay(alias: str) -> tuple[float, float]:
    with connections[alias].cursor() as cursor:
        cursor.execute(_REPLAY)
        replayed, lag = cursor.fetchone()
    return float(replayed or 0), float(lag or 0)


def _available(alias: str) -> bool:
    with _lock:
        return time.monotonic() >= _down_until.get(alias, 0.0)


def set_aside(alias: str, why: str) -> None:
    """Read the primary instead of ``alias`` for ``REPLICA_RETRY_AFTER_S`` seconds."""
    with contextlib.suppress(DatabaseError):
        connections[alias].close()  # a broken connection goes back to be discarded
    with _lock:
        _down_until[alias] = time.monotonic() + settings.REPLICA_RETRY_AFTER_S
    logger.warning("Replica %s set aside for %ss: %s", alias, settings.REPLICA_RETRY_AFTER_S, why)


def choose(tags: Iterable[str]) -> str:
    """A replica that has replayed every write ``tags`` depend on, else the primary."""
    aliases = [alias for alias in replica_aliases() if _available(alias)]
    if not aliases:
        return DEFAULT_DB_ALIAS
    required = _required_position(tags)
    if required is None:
        return DEFAULT_DB_ALIAS
    for alias in aliases:
        try:
            replayed, lag = _replay(alias)
        except DatabaseError as exc:
            set_aside(alias, f"unreachable ({exc})")
            continue
        lag_seconds.labels(alias).set(lag)
        if lag > settings.REPLICA_MAX_LAG_S:
            set_aside(alias, f"{lag:.1f} s behind")
            continue
        if replayed >= required:
            return alias
    return DEFAULT_DB_ALIAS


def read_with_failover(
    tags: Iterable[str], read: Callable[[str], T], *, failed: Callable[[T], bool]
) -> T:
    """``read(alias)`` on a replica that has replayed every write ``tags`` saw, else the primary.

    A replica that goes away mid-read (``read`` raises a connection error, or
    ``failed(result)`` says its result is one) is set aside and the read is
    repeated on the next choice; each replica is tried at most once, so it
    ends on the primary at the latest, whose errors are ``read``'s own.
    """
    tags = list(tags)
    while True:
        alias = choose(tags)
        if alias == DEFAULT_DB_ALIAS:
            return read(alias)
        try:
            result = read(alias)
        except (OperationalError, InterfaceError):
            pass  # the replica went away around the snapshot
        else:
            if not failed(result):
                return result
        set_aside(alias, "failed while reading sections")


def status() -> dict[str, str]:
    """Each replica's state for readiness: lag in seconds, or why it is set aside."""
    report = {}
    for alias in replica_aliases():
        if not _available(alias):
            report[alias] = "set aside (reads go to the primary)"
            continue
        try:
            _, lag = _replay(alias)
        except DatabaseError:
            connections[alias].close()
            report[alias] = "unreachable (reads go to the primary)"
            continue
        lag_seconds.labels(alias).set(lag)
        report[alias] = f"lag {lag:.1f} s"
    return report


def _forget_set_aside() -> None:
    with _lock:
        _down_until.clear()


register_state("replicas: set aside after failing or lagging", _forget_set_aside)
