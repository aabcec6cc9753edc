"""The change listener: every committed write to a watched table, from any writer, bumps tags.

It follows PostgreSQL's logical replication stream (``wal_level=logical``) from a
replication slot of its own, decoded by the built-in ``pgoutput`` plugin through
a publication of the watched tables (``capture.watched_models``); both are
created on its first start. For each committed transaction it bumps the tags
its changes invalidate (``capture.TableChanges``), minus those the app
announced it bumps itself, through ``tags.bump``: the same generations, edge
purges and re-warms as an ORM write. Only then does it confirm the
transaction's end position to the slot, so a listener that stops (or crashes)
finds every later change still kept by the slot when it starts again, and a
change is never confirmed before its bumps reached Redis: nothing is lost. The
position reaches the slot at once when the listener has caught up, and every
10 s while it works through a backlog, so a crash bumps again at most what it
applied in those 10 s (a bump is idempotent in effect: one more recomputation).

The driver is psycopg2's ``LogicalReplicationConnection`` (psycopg 3 has no
replication protocol): a stream gives changes as they commit, so a raw ``UPDATE``
is invalidated in milliseconds, without polling.

Its state (heartbeat, lag in seconds and bytes, changes applied, the last
error) is kept in Redis for readiness and ``/metrics`` (``status``), which
report it from every web process, including when the listener is down.

The traps: a slot nobody reads keeps WAL forever (PostgreSQL 13+ bounds it with
``max_slot_wal_keep_size``): drop it with ``manage.py cache listen --drop`` when
the listener is retired. A slot dropped under a running deployment loses the
changes since; the listener refuses to start silently on a new one
(``--reset`` does, bumping every watched table).
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from . import capture
from .keys import LISTENER_STATUS_KEY
from .pgoutput import Begin, Commit, Message, Relation, RowChange, Truncate, decode
from .shared import SharedCacheUnavailable, shared_cache
from .tags import bump, local_generations, replay_local_bumps

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # how often the state in Redis is refreshed
WAIT_S = 0.2  # longest wait for the next message (the stream wakes it at once)
BATCH_ROWS = 1_000  # rows of one table kept before their tags are worked out
RETRY_MAX_S = 10.0  # longest pause before reconnecting after a lost connection

transactions_total = Counter(
    "aggregation_listener_transactions_total",
    "Committed transactions the change listener handled, by outcome: bumped, "
    "announced (every tag bumped by the app already), unwatched (no watched table).",
    ["outcome"],
)
changes_total = Counter(
    "aggregation_listener_changes_total", "Row changes to watched tables the listener applied."
)
delay_seconds = Histogram(
    "aggregation_listener_delay_seconds",
    "From a transaction's commit to its bumps done, in the listener.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class ListenerError(Exception):
    """The listener cannot run as configured; the message is one line for the operator."""


class ConnectError(ListenerError):
    """PostgreSQL could not be reached (retried once the listener is running)."""


@dataclass
class _Transaction:
    begin: Begin
    tables: dict[str, capture.TableChanges] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)  # worked out from batches already
    changes: int = 0

    def add(self, model: type[Any], change: RowChange) -> None:
        table = self.tables.setdefault(model._meta.db_table, capture.TableChanges(model, [], set()))
        table.add(change)
        self.changes += 1
        if len(table.rows) >= BATCH_ROWS:  # a large transaction: its tags as it goes
            self.tags.update(table.tags())
            table.rows.clear()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def dsn(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The listened database: ``CACHE_LISTENER_DATABASE_URL``, else the ``alias`` database's."""
    from psycopg2.extensions import make_dsn

    if settings.CACHE_LISTENER_DATABASE_URL:
        return str(settings.CACHE_LISTENER_DATABASE_URL)
    db = settings.DATABASES[alias]
    if connections[alias].vendor != "postgresql":
        raise ListenerError(f"The cache listener needs PostgreSQL; database {alias!r} is not.")
    parts = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
             "host": db.get("HOST"), "port": db.get("PORT")}  # fmt: skip
    return make_dsn(**{k: str(v) for k, v in parts.items() if v})


class ChangeListener:
    """Follows one slot of one database; ``run()`` until ``stop`` is set."""

    def __init__(self, *, alias: str = DEFAULT_DB_ALIAS, slot: str | None = None) -> None:
        self.alias = alias
        self.slot = slot or settings.CACHE_LISTENER_SLOT
        self.publication = self.slot
        self.dsn = dsn(alias)
        self.watched = capture.watched_models(alias)
        self.relations: dict[int, Relation] = {}
        self.transaction: _Transaction | None = None
        self.confirmed = 0  # the end of the last transaction bumped (or skipped)
        self._told = 0  # the position last sent to the slot at once (``_tell``)
        self.wal_end = 0
        self.lag_s = 0.0
        self._beat = 0.0
        self._counts: dict[str, int] = {}

    # --- set-up ---------------------------------------------------------------

    @contextlib.contextmanager
    def _sql(self) -> Iterator[Any]:
        import psycopg2

        try:
            connection = psycopg2.connect(self.dsn, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise ConnectError(f"Cannot connect to PostgreSQL: {_first_line(exc)}") from exc
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    def check(self) -> tuple[bool, bool]:
        """Whether the server can feed this listener; (slot exists, publication exists).

        Raises ``ListenerError`` for: ``wal_level`` not ``logical``, a role
        without replication rights, a slot of another plugin or database.
        """
        with self._sql() as cursor:
            cursor.execute("SHOW wal_level")
            level = cursor.fetchone()[0]
            if level != "logical":
                raise ListenerError(
                    f"PostgreSQL runs with wal_level={level}; the cache listener needs "
                    "wal_level=logical (set it in postgresql.conf and restart PostgreSQL)."
                )
            cursor.execute(
                "SELECT current_user, rolreplication OR rolsuper FROM pg_roles "
                "WHERE rolname = current_user"
            )
            user, may = cursor.fetchone()
            if not may:
                raise ListenerError(
                    f"Role {user} may not use replication; the cache listener needs it "
                    f"(ALTER ROLE {user} REPLICATION, or a CACHE_LISTENER_DATABASE_URL "
                    "with a role that may)."
                )
            cursor.execute(
                "SELECT plugin, database = current_database() FROM pg_replication_slots "
                "WHERE slot_name = %s",
                [self.slot],
            )
            slot = cursor.fetchone()
            if slot is not None and (slot[0] != "pgoutput" or not slot[1]):
                raise ListenerError(
                    f"Replication slot {self.slot} exists for another database or plugin; "
                    "set CACHE_LISTENER_SLOT to a name of this listener's own."
                )
            cursor.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [self.publication])
            return slot is not None, cursor.fetchone() is not None

    def prepare(self, *, reset: bool = False) -> None:
        """Check the server; create the publication and the slot on the first start.

        A slot or publication missing while the other exists means changes went
        unseen (the slot was dropped): a ``ListenerError`` unless ``reset``,
        which starts a new slot and bumps every watched table.
        """
        has_slot, has_publication = self.check()
        if has_slot != has_publication and not reset:
            missing = "replication slot" if not has_slot else "publication"
            raise ListenerError(
                f"The {missing} {self.slot} was dropped: changes since then were not seen. "
                "Run `manage.py cache listen --reset` to start a new slot (it invalidates "
                "every watched table)."
            )
        if reset:
            self.drop()
        with self._sql() as cursor:  # the publication first: the slot decodes through it
            tables = ", ".join(f'"{name}"' for name in sorted(self.watched))
            if not has_publication or reset:
                cursor.execute(f'CREATE PUBLICATION "{self.publication}" FOR TABLE {tables}')
            else:
                cursor.execute(f'ALTER PUBLICATION "{self.publication}" SET TABLE {tables}')
        if not has_slot or reset:
            with self._replication() as cursor:
                cursor.create_replication_slot(self.slot, output_plugin="pgoutput")
            logger.info("Created replication slot %s", self.slot)
        if reset:
            self._bump_everything()

    def drop(self) -> None:
        """Drop the slot and the publication (the listener must be stopped)."""
        with self._sql() as cursor:
            cursor.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                [self.slot],
            )
            cursor.execute(f'DROP PUBLICATION IF EXISTS "{self.publication}"')

    def _bump_everything(self) -> None:
        tags = capture.tags_of(
            capture.TableChanges(model, [], None, truncated=True) for model in self.watched.values()
        )
        self._bump(tags)
        logger.warning("Invalidated every watched table (%d tags) for a new slot", len(tags))

    @contextlib.contextmanager
    def _replication(self) -> Iterator[Any]:
        import psycopg2
        from psycopg2.extras import LogicalReplicationConnection

        try:
            connection = psycopg2.connect(
                self.dsn, connection_factory=LogicalReplicationConnection, connect_timeout=5
            )
        except psycopg2.OperationalError as exc:
            raise ConnectError(
                f"PostgreSQL refused a replication connection: {_first_line(exc)}"
            ) from exc
        try:
            yield connection.cursor()
        finally:
            connection.close()

    # --- streaming ------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, *, reset: bool = False) -> None:
        """Prepare, then follow the stream until ``stop``; reconnect after a lost connection.

        Raises ``ListenerError`` (also kept in Redis for readiness) when it
        cannot go on: the slot was dropped, the server cannot feed it.
        """
        import psycopg2

        stop = stop or threading.Event()
        pause = 0.5
        try:
            self.prepare(reset=reset)
            while not stop.is_set():
                try:
                    self.stream(stop)
                    pause = 0.5
                except psycopg2.errors.UndefinedObject as exc:
                    raise self._dropped() from exc
                except (psycopg2.OperationalError, psycopg2.InterfaceError, ConnectError) as exc:
                    self.transaction = None  # resent from the last confirmed position
                    if not isinstance(exc, psycopg2.errors.ObjectInUse):  # else: a standby
                        self._state("reconnecting", _first_line(exc))
                    logger.warning("Change stream lost (%s); reconnecting", _first_line(exc))
                    stop.wait(pause)
                    pause = min(pause * 2, RETRY_MAX_S)
                    self._recheck()
        except ListenerError as exc:
            self._state("failed", str(exc))
            raise
        self._state("stopped", "")

    def _dropped(self) -> ListenerError:
        return ListenerError(
            f"The replication slot {self.slot} was dropped while listening: changes since then "
            "were not seen. Run `manage.py cache listen --reset` to start a new slot."
        )

    def _recheck(self) -> None:
        """After a lost connection: a server that can no longer feed it ends the run."""
        with contextlib.suppress(ConnectError):  # still away: try again later
            has_slot, _ = self.check()
            if not has_slot:
                raise self._dropped()

    def stream(self, stop: threading.Event) -> None:
        """One replication connection: messages until ``stop`` or an error."""
        with self._replication() as cursor:
            cursor.start_replication(
                slot_name=self.slot,
                decode=False,
                options={"proto_version": "1", "publication_names": self.publication,
                         "messages": "true"},
            )  # fmt: skip
            self.relations.clear()
            self._told = 0
            self._state("streaming", "")
            logger.info("Following replication slot %s", self.slot)
            while not stop.is_set():
                message = cursor.read_message()
                if message is None:
                    self._idle(cursor)
                    select.select([cursor], [], [], WAIT_S)
                    continue
                self.wal_end = max(self.wal_end, message.wal_end)
                self._handle(cursor, decode(message.payload, self.relations))
            self._tell(cursor)  # stopping: the next run resumes after the last bump done

    def _handle(self, cursor: Any, message: Any) -> None:
        if isinstance(message, Begin):
            self.transaction = _Transaction(message)
        elif isinstance(message, Relation):
            self.relations[message.relid] = message
        elif isinstance(message, Commit):
            self._commit(cursor, message)
        elif self.transaction is not None:
            self._change(self.transaction, message)

    def _change(self, transaction: _Transaction, message: Any) -> None:
        if isinstance(message, RowChange):
            model = self.watched.get(self.relations[message.relid].table)
            if model is not None:
                transaction.add(model, message)
        elif isinstance(message, Truncate):
            for relid in message.relids:
                model = self.watched.get(self.relations[relid].table)
                if model is not None:
                    transaction.tables[model._meta.db_table] = capture.TableChanges(
                        model, [], None, truncated=True
                    )
        elif isinstance(message, Message) and message.prefix == capture.PREFIX:
            transaction.announced |= capture.announced_tags(message.content)

    def _commit(self, cursor: Any, commit: Commit) -> None:
        transaction, self.transaction = self.transaction, None
        outcome = "unwatched"
        if transaction is not None and transaction.tables:
            close_old_connections()  # the tag functions may query: a live connection
            tags = transaction.tags | capture.tags_of(transaction.tables.values())
            missing = tags - transaction.announced
            outcome = "bumped" if missing else "announced"
            self._bump(missing)
            changes_total.inc(transaction.changes)
            self._count(changes=transaction.changes)
        transactions_total.labels(outcome).inc()
        self._count(**{outcome: 1})
        cursor.send_feedback(flush_lsn=commit.end_lsn)  # sent at the next status interval
        self.confirmed = commit.end_lsn
        if outcome != "unwatched":
            delay = max((datetime.now(UTC) - commit.committed_at).total_seconds(), 0.0)
            delay_seconds.observe(delay)
            self.lag_s = delay
        self._heartbeat()

    def _bump(self, tags: set[str]) -> None:
        """Bump ``tags``; return only once Redis has them (never confirm a bump kept locally)."""
        if not tags:
            return
        bump(tags)
        while any(local_generations(tags).values()):
            time.sleep(1.0)
            with contextlib.suppress(SharedCacheUnavailable):
                shared_cache.reset_breaker()
                replay_local_bumps()

    def _idle(self, cursor: Any) -> None:
        """Nothing to read: confirm the server's position when no transaction is open."""
        if self.transaction is None and cursor.wal_end > self.confirmed:
            self.confirmed = self.wal_end = cursor.wal_end
        if self.transaction is None:
            self.lag_s = 0.0
        self._tell(cursor)
        self._heartbeat()

    def _tell(self, cursor: Any) -> None:
        """Send the confirmed position to the slot now.

        psycopg2 sends feedback only every ``status_interval`` (10 s) unless
        forced: fine while working through a backlog (one message per 10 s, not
        one per transaction), but once caught up the slot should say so at once
        (``pg_replication_slots.confirmed_flush_lsn``, and what a restart
        resends).
        """
        if self.confirmed > self._told:
            cursor.send_feedback(flush_lsn=self.confirmed, force=True)
            self._told = self.confirmed

    # --- state ----------------------------------------------------------------

    def _count(self, **counts: int) -> None:
        for name, n in counts.items():
            self._counts[name] = self._counts.get(name, 0) + n

    def _heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._beat < HEARTBEAT_S:
            return
        self._beat = now
        fields: dict[str, str | float] = {
            "heartbeat": now, "lag_s": round(self.lag_s, 3),
            "lag_bytes": max(self.wal_end - self.confirmed, 0), "slot": self.slot,
        }  # fmt: skip
        counts, self._counts = self._counts, {}
        try:
            shared_cache.hset_many(LISTENER_STATUS_KEY, fields)
            if counts:
                shared_cache.hincrby_many(f"{LISTENER_STATUS_KEY}:counts", counts)
        except SharedCacheUnavailable:
            self._count(**counts)  # kept for the next heartbeat

    def _state(self, state: str, error: str) -> None:
        with contextlib.suppress(SharedCacheUnavailable):
            shared_cache.hset_many(
                LISTENER_STATUS_KEY,
                {"state": state, "error": error[:300], "since": time.time(), "slot": self.slot},
            )
        self._heartbeat(force=True)


def status() -> dict[str, Any]:
    """The listener's last reported state, from Redis: {} when it never reported.

    ``state`` (streaming, reconnecting, failed, stopped), ``error``, the age of
    its last heartbeat in seconds, lag in seconds and bytes, and counts
    (``changes``, ``bumped``, ``announced``, ``unwatched``).
    """
    try:
        raw = shared_cache.hgetall_raw(LISTENER_STATUS_KEY)
        counts = shared_cache.hgetall(f"{LISTENER_STATUS_KEY}:counts")
    except SharedCacheUnavailable:
        return {}
    if not raw:
        return {}
    return {
        "state": raw.get("state", "unknown"),
        "error": raw.get("error", ""),
        "heartbeat_age_s": time.time() - float(raw.get("heartbeat", 0)),
        "lag_s": float(raw.get("lag_s", 0)),
        "lag_bytes": int(float(raw.get("lag_bytes", 0))),
        "counts": {k: int(v) for k, v in counts.items()},
    }


def report() -> str | None:
    """One line for readiness: None when no listener is expected (``ENABLE_CACHE_LISTENER``).

    Reported, never failing readiness: without the listener the app's own writes
    still invalidate; other writers' changes wait for it (the slot keeps them).
    """
    if not capture.listening():
        return None
    state = status()
    if not state:
        return "down: it has never reported (start `manage.py cache listen`)"
    if state["state"] == "failed":
        return f"failed: {state['error']}"
    if state["state"] == "stopped" or state["heartbeat_age_s"] > settings.CACHE_LISTENER_MAX_LAG_S:
        return (
            f"down: no heartbeat for {state['heartbeat_age_s']:.0f} s (the slot keeps the changes)"
        )
    if state["state"] == "reconnecting":
        return f"reconnecting: {state['error']}"
    if state["lag_s"] > settings.CACHE_LISTENER_MAX_LAG_S:
        return f"lagging: {state['lag_s']:.1f} s, {state['lag_bytes']} bytes behind"
    return "OK"


def metrics_text() -> bytes:
    """The listener's state as Prometheus text, for any process's ``/metrics``.

    The listener is a process of its own; what it reports to Redis is exported
    by the web processes, so a listener that is down still shows (as
    ``aggregation_listener_up 0`` with a growing heartbeat age). Empty when no
    listener is expected.
    """
    if not capture.listening():
        return b""
    state = status()
    registry = CollectorRegistry()
    slot = settings.CACHE_LISTENER_SLOT
    up = Gauge("aggregation_listener_up", "1 while the change listener streams and reports.",
               ["slot"], registry=registry)  # fmt: skip
    fresh = bool(state) and state["heartbeat_age_s"] <= settings.CACHE_LISTENER_MAX_LAG_S
    up.labels(slot).set(1 if fresh and state["state"] == "streaming" else 0)
    if state:
        gauges = {
            "heartbeat_age_seconds": ("Seconds since the listener last reported.",
                                      state["heartbeat_age_s"]),
            "lag_seconds": ("From commit to bumps done, latest transaction (0 when idle).",
                            state["lag_s"]),
            "lag_bytes": ("WAL the listener has received but not yet confirmed.",
                          state["lag_bytes"]),
        }  # fmt: skip
        for name, (text, value) in gauges.items():
            gauge = Gauge(f"aggregation_listener_{name}", text, ["slot"], registry=registry)
            gauge.labels(slot).set(value)
        applied = Gauge("aggregation_listener_applied", "Counts since Redis last lost them: "
                        "changes applied, transactions bumped, announced, unwatched.",
                        ["slot", "kind"], registry=registry)  # fmt: skip
        for kind, n in state["counts"].items():
            applied.labels(slot, kind).set(n)
    return generate_latest(registry)
