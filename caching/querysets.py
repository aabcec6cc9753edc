"""What a write invalidates, and bulk writes that invalidate (they bypass ``save()`` and signals).

``update()``, ``bulk_create()`` and ``bulk_update()`` send no signals. A model
opts in with ``objects = SomeQuerySet.as_manager()`` where the queryset derives
from ``InvalidatingQuerySet``, and says which tags its rows feed in one of two ways:

- table-level (``CacheTagged``): ``cache_tag`` (``products``), with
  ``cache_ignored_fields`` (fields no cached content shows) and
  ``cache_total_fields`` (fields that can move a row into or out of a counted
  set). Shared totals (``COUNT(*)`` of a whole set) are tagged with the model's
  totals tag (``products:totals``) instead of its content tag, so a write that
  cannot change any set (a rename, a new price) leaves them cached;
- row-level (``RowTagged``): ``cache_row_columns`` and ``cache_row_tags(rows)``,
  the tags a row names (a session: its trainer's and its student's), with
  ``cache_ignored_fields`` as above.

The same declarations serve the signal receivers, these querysets and the
change listener (``listener.py``, every other writer), so all three agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from django.db import connections, models, transaction

from .tags import invalidate_on_commit

# One row as the tag functions see it: column -> value (text when read from the WAL).
RowValues = Mapping[str, Any]


class CacheTagged(Protocol):
    """A model whose rows feed one tag: ``Product``, with ``cache_tag = "products"``.

    Functions take the class (``type[CacheTagged]``: a ``sender``, a queryset's
    ``model``). It may also declare ``cache_ignored_fields`` and
    ``cache_total_fields``, read with defaults: none ignored, and any field may
    move a row into or out of a counted set.
    """

    cache_tag: str


class RowTagged(Protocol):
    """A model whose rows name their tags: a ``Session`` is shown to its trainer and student.

    ``cache_row_tags(rows)`` gets each row's ``cache_row_columns`` (column names:
    ``trainer_id``), as ints from the ORM or as text from the WAL, and may query
    (a trainer's profile is shown to their students). ``rows=None`` means every
    row of the table (a ``TRUNCATE``).
    """

    cache_row_columns: tuple[str, ...]

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> Iterable[str]:
        """The tags of these rows (of every row when None)."""
        ...


def is_row_tagged(model: type[Any]) -> bool:
    """True when ``model`` declares row-level tags (``RowTagged``)."""
    return hasattr(model, "cache_row_tags")


def is_tagged(model: type[Any]) -> bool:
    """True when ``model`` feeds cached content (table- or row-level)."""
    return is_row_tagged(model) or hasattr(model, "cache_tag")


def changes_content(model: type[Any], fields: Iterable[str] | None) -> bool:
    """False only when every written field is one no cached content depends on."""
    if fields is None:
        return True
    return not set(fields) <= set(getattr(model, "cache_ignored_fields", ()))


def totals_tag(model: type[CacheTagged]) -> str:
    """The tag of the model's shared totals: ``products:totals``."""
    return f"{model.cache_tag}:totals"


def tags_for_write(model: type[CacheTagged], fields: Iterable[str] | None) -> list[str]:
    """What a write of ``fields`` (None: any, or rows added or removed) invalidates."""
    if not changes_content(model, fields):
        return []
    tags = [model.cache_tag]
    counted = getattr(model, "cache_total_fields", None)
    if fields is None or counted is None or set(fields) & set(counted):
        tags.append(totals_tag(model))
    return tags


def tags_for_rows(
    model: type[Any], rows: Sequence[RowValues] | None, fields: Iterable[str] | None
) -> list[str]:
    """What writing ``fields`` (None: any) of ``rows`` (None: every row) invalidates.

    Row-level models name the rows' tags; table-level ones their table's.
    """
    if fields is not None:
        fields = list(fields)
    if not changes_content(model, fields):
        return []
    if is_row_tagged(model):
        return sorted(set(model.cache_row_tags(rows)))
    return tags_for_write(model, fields)


def row_of(instance: models.Model) -> dict[str, Any]:
    """The ``cache_row_columns`` of a model instance, as ``cache_row_tags`` reads them."""
    by_column = {f.column: f.attname for f in instance._meta.concrete_fields}
    return {column: getattr(instance, by_column[column]) for column in instance.cache_row_columns}  # type: ignore[attr-defined]


def tags_for_instance(
    model: type[Any], instance: models.Model, fields: Iterable[str] | None
) -> list[str]:
    """What saving ``fields`` (None: any) of ``instance``, or deleting it, invalidates."""
    rows = [row_of(instance)] if is_row_tagged(model) else None
    return tags_for_rows(model, rows, fields)


def invalidate_saved(
    sender: type[Any],
    instance: models.Model,
    created: bool = False,
    update_fields: frozenset[str] | None = None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """A ``post_save`` receiver: the row's tags, after commit, when it changed shown content."""
    tags = tags_for_instance(sender, instance, None if created else update_fields)
    if tags:
        invalidate_on_commit(tags, using=using)


def invalidate_deleted(
    sender: type[Any], instance: models.Model, using: str | None = None, **kwargs: Any
) -> None:
    """A ``post_delete`` receiver: the row's tags, after commit."""
    invalidate_on_commit(tags_for_instance(sender, instance, None), using=using)


def _columns(model: type[Any], names: Iterable[str]) -> set[str]:
    return {model._meta.get_field(name).column for name in names}


class InvalidatingQuerySet(models.QuerySet):
    # Unparametrised: its model is any that declares its tags (``CacheTagged`` or
    # ``RowTagged``), which no ``QuerySet[SomeModel]`` can say (no intersections).

    def _one_transaction(self) -> contextlib.AbstractContextManager[Any]:
        """The write and its announcement in one transaction, on PostgreSQL (see ``changes``)."""
        if connections[self.db].vendor != "postgresql":
            return contextlib.nullcontext()
        return transaction.atomic(using=self.db, savepoint=False)

    def _rows(self, pks: Iterable[Any]) -> list[dict[str, Any]]:
        columns = self.model.cache_row_columns
        return list(self.model._base_manager.using(self.db).filter(pk__in=pks).values(*columns))

    def update(self, **kwargs: Any) -> int:
        """Update rows, then invalidate their tags on commit."""
        model = self.model
        with self._one_transaction():
            before: list[dict[str, Any]] = []
            if is_row_tagged(model) and changes_content(model, kwargs):
                before = list(self.values("pk", *model.cache_row_columns))
            count = super().update(**kwargs)
            if count:
                rows = before
                if before and _columns(model, kwargs) & set(model.cache_row_columns):
                    rows = before + self._rows(r["pk"] for r in before)  # moved rows: both sides
                invalidate_on_commit(tags_for_rows(model, rows, kwargs), using=self.db)
        return count

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Create rows, then invalidate their tags on commit."""
        with self._one_transaction():
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                rows = [row_of(o) for o in created] if is_row_tagged(self.model) else None
                invalidate_on_commit(tags_for_rows(self.model, rows, None), using=self.db)
        return created

    def bulk_update(
        self, objs: Iterable[Any], fields: Iterable[str], *args: Any, **kwargs: Any
    ) -> int:
        """Update rows, then invalidate their tags on commit."""
        objs, fields, model = list(objs), list(fields), self.model
        with self._one_transaction():
            rows = None
            if is_row_tagged(model):
                rows = [row_of(o) for o in objs]
                if _columns(model, fields) & set(model.cache_row_columns):
                    rows += self._rows(o.pk for o in objs)  # their values before the update
            count = super().bulk_update(objs, fields, *args, **kwargs)
            if count:
                invalidate_on_commit(tags_for_rows(model, rows, fields), using=self.db)
        return count
