"""One database snapshot shared by sections that run in parallel.

"All data from the same point in time" and "in parallel" together. On
PostgreSQL the leader opens a read-only REPEATABLE READ transaction and exports
its snapshot (``pg_export_snapshot()``); each worker thread imports it
(``SET TRANSACTION SNAPSHOT``) as the first statement of its own read-only
REPEATABLE READ transaction. The leader's transaction stays open until every
worker has finished, as an exported snapshot lives only as long as it.
When the sections run on the request thread (``SECTIONS_IN_PARALLEL`` off),
one read-only REPEATABLE READ transaction is the snapshot. On SQLite (or when
already inside a transaction, where the isolation level can no longer be set)
the sections run one after another in one transaction on one connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.utils import CursorWrapper


@dataclass(frozen=True)
class Snapshot:
    """How a set of sections shared one point in time."""

    mode: str  # "exported" (parallel, PostgreSQL) or "single-transaction" (sequential)
    id: str | None = None

    def as_metadata(self) -> dict[str, str | None]:
        """What ``metadata.snapshot`` reports."""
        return {"mode": self.mode, "id": self.id}


SNAPSHOT_ID = re.compile(r"[0-9A-F]{1,16}(-[0-9A-F]{1,16}){1,3}")


def _begin_repeatable_read(cursor: CursorWrapper) -> None:
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def import_snapshot(snapshot_id: str) -> None:
    """Make the current (new) transaction see the exported snapshot ``snapshot_id``.

    Must be the first thing the transaction does. ``SET`` takes no bound
    parameters (prepared statements bind server-side), so the id is written
    into the statement as a literal, after checking it has the form
    ``pg_export_snapshot()`` gives (hex groups and dashes, nothing to escape).
    """
    if not SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError(f"Not a snapshot id: {snapshot_id!r}")
    with connection.cursor() as cursor:
        _begin_repeatable_read(cursor)
        cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")


@contextmanager
def shared_snapshot(*, export: bool = True, using: str = DEFAULT_DB_ALIAS) -> Iterator[Snapshot]:
    """Hold one snapshot open on the database ``using`` for the duration of the block.

    ``export=False`` (sections run on this thread): one read-only REPEATABLE
    READ transaction is the snapshot, with nothing to export.
    """
    conn = connections[using]
    if conn.vendor != "postgresql" or conn.in_atomic_block:
        with transaction.atomic(using=using):
            yield Snapshot("single-transaction")
        return
    if not export:
        with transaction.atomic(using=using):
            with conn.cursor() as cursor:
                _begin_repeatable_read(cursor)
            yield Snapshot("single-transaction")
        return
    with transaction.atomic(using=using):
        with conn.cursor() as cursor:
            _begin_repeatable_read(cursor)
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = cursor.fetchone()[0]
        yield Snapshot("exported", snapshot_id)
