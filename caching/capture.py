"""Change capture: watched tables, what a change invalidates, what the app bumps itself.

Which tables the cache depends on, what a change to one invalidates, and how
the app tells the change listener which tags it bumps itself.

The tables are those of the models that declare their tags (``CacheTagged`` or
``RowTagged``, see ``querysets.py``) and are written to the listened database;
the engine knows no domain, the models say it all.

**Announcements.** A write made through the app is still bumped by the app on
commit (read-your-writes needs the bump before the response). So that the
listener does not bump it a second time, the first time a transaction names
tags it will bump, the app writes them into that same transaction as a
transactional logical decoding message (``pg_logical_emit_message(true,
'aggregation-cache', 'trainer:7 student:9')``): the listener reads it between
the transaction's changes and bumps only what the changes invalidate beyond
it. The message commits or rolls back with the transaction, so it can neither
be lost nor outlive its writes. Cost: one round trip per write transaction
(more only when later writes in it name new tags), and about 60 bytes of WAL.

The traps: an announcement is only possible inside a transaction. A write
committed on its own (``obj.save()`` in autocommit, as in a shell) has
committed before its ``post_save`` runs: it is bumped twice (harmless: one more
recomputation). ``InvalidatingQuerySet`` therefore runs its bulk writes in a
transaction of their own. And the app crashing between its commit and its bump
loses that bump (as it did before the listener).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, migrations, router, transaction

from .pgoutput import UNCHANGED, Row, RowChange
from .querysets import is_row_tagged, is_tagged, tags_for_rows
from .tags import _flush_pending

PREFIX = "aggregation-cache"  # the logical decoding message prefix of announcements


def announce(tags: list[str], using: str | None) -> None:
    """Write ``tags`` into the current transaction for the listener (``on_transaction_tags``).

    Only tags not yet announced in this transaction; nothing on another backend
    than PostgreSQL. A transaction's announcements are known by the bump it has
    scheduled: none scheduled yet (``_flush_pending`` not among its on-commit
    callbacks: a new transaction, or a savepoint rolled back with its
    announcement) starts the list again.
    """
    connection = transaction.get_connection(using)
    if connection.vendor != "postgresql":
        return
    scheduled = any(callback is _flush_pending for _, callback, *_ in connection.run_on_commit)
    said: set[str] = getattr(connection, "_cache_announced", set()) if scheduled else set()
    new = sorted(set(tags) - said)
    if not new:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_logical_emit_message(true, %s, %s)", [PREFIX, " ".join(new)])
    connection._cache_announced = said | set(new)


def announced_tags(content: bytes) -> set[str]:
    """The tags an announcement's content names."""
    return set(content.decode().split())


def watched_models(alias: str = DEFAULT_DB_ALIAS) -> dict[str, type[Any]]:
    """Table name -> model, for every model that declares its tags and is written to ``alias``."""
    return {
        model._meta.db_table: model
        for model in apps.get_models()
        if is_tagged(model) and router.db_for_write(model) == alias
    }


def listening() -> bool:
    """True when this deployment runs the change listener (``ENABLE_CACHE_LISTENER``)."""
    return bool(settings.ENABLE_CACHE_LISTENER)


@dataclass
class TableChanges:
    """One transaction's changes to one table, reduced to what tags need."""

    model: type[Any]
    rows: list[Row]
    fields: set[str] | None  # fields written; None: any (rows added or removed, or unknown)
    truncated: bool = False

    def add(self, change: RowChange) -> None:
        """Keep the rows' values and the fields this change wrote."""
        if change.kind != "update" or change.old is None or self.fields is None:
            self.fields = None
        else:
            self.fields |= _changed_fields(self.model, change.old, change.new or {})
        if is_row_tagged(self.model):
            self.rows.extend(row for row in (change.old, change.new) if row is not None)

    def tags(self) -> list[str]:
        """What these changes invalidate (every row's tags after a ``TRUNCATE``)."""
        if self.truncated:
            return tags_for_rows(self.model, None, None)
        columns = getattr(self.model, "cache_row_columns", ())
        rows = [
            {c: row.get(c) for c in columns if row.get(c) is not UNCHANGED} for row in self.rows
        ]
        return tags_for_rows(self.model, rows, self.fields)


def _changed_fields(model: type[Any], old: Row, new: Row) -> set[str]:
    """Fields whose column differs between the old row (``REPLICA IDENTITY FULL``) and the new."""
    by_column = {f.column: f.name for f in model._meta.concrete_fields}
    return {
        by_column.get(column, column)
        for column, value in new.items()
        if value is not UNCHANGED and old.get(column, UNCHANGED) != value
    }


def tags_of(changes: Iterable[TableChanges]) -> set[str]:
    """Every tag a transaction's changes invalidate."""
    tags: set[str] = set()
    for table in changes:
        tags.update(table.tags())
    return tags


def full_row_images(app_label: str, model_names: list[str]) -> migrations.RunPython:
    """A migration step: ``REPLICA IDENTITY FULL`` on these models' tables (PostgreSQL only).

    So that the WAL of an update or delete carries the old row: the listener
    then knows whom a deleted row was shown to, and which fields an update
    changed (a view counter alone invalidates nothing). Cost: updates and
    deletes of these tables log the old row too. A catalog change, instant on
    any table size (it takes a brief ``ACCESS EXCLUSIVE`` lock).
    """

    def identity(setting: str) -> Callable[[Any, Any], None]:
        def run(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor != "postgresql":
                return
            for name in model_names:
                table = schema_editor.quote_name(apps.get_model(app_label, name)._meta.db_table)
                schema_editor.execute(f"ALTER TABLE {table} REPLICA IDENTITY {setting}")

        return run

    return migrations.RunPython(identity("FULL"), identity("DEFAULT"))
