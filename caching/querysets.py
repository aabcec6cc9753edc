"""Bulk writes that invalidate the model's tag, since they bypass ``save()`` and signals.

``update()``, ``bulk_create()`` and ``bulk_update()`` send no signals.

A model opts in with ``objects = SomeQuerySet.as_manager()`` where the queryset
derives from ``InvalidatingQuerySet``, and declares ``cache_tag`` (the tag its
rows feed: ``CacheTagged``), ``cache_ignored_fields`` (fields no cached content shows) and
``cache_total_fields`` (fields that can move a row into or out of a counted
set). Shared totals (``COUNT(*)`` of a whole set) are tagged with the model's
totals tag (``products:totals``) instead of its content tag, so a write that
cannot change any set (a rename, a new price) leaves them cached instead of
recounting a large table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django.db import models

from .tags import invalidate_on_commit


class CacheTagged(Protocol):
    """A model whose rows feed one tag: ``Product``, with ``cache_tag = "products"``.

    Functions take the class (``type[CacheTagged]``: a ``sender``, a queryset's
    ``model``). It may also declare ``cache_ignored_fields`` and
    ``cache_total_fields``, read with defaults: none ignored, and any field may
    move a row into or out of a counted set.
    """

    cache_tag: str


def changes_content(model: type[models.Model | CacheTagged], fields: Iterable[str] | None) -> bool:
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


class InvalidatingQuerySet(models.QuerySet):
    # Unparametrised: its model is any that declares ``cache_tag`` (``CacheTagged``),
    # which no ``QuerySet[SomeModel]`` can say (a type has no intersections).

    def update(self, **kwargs: Any) -> int:
        """Update rows, then invalidate the model's tag on commit."""
        count = super().update(**kwargs)
        if count:
            invalidate_on_commit(tags_for_write(self.model, kwargs), using=self.db)
        return count

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Create rows, then invalidate the model's tag on commit."""
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            invalidate_on_commit(tags_for_write(self.model, None), using=self.db)
        return created

    def bulk_update(
        self, objs: Iterable[Any], fields: Iterable[str], *args: Any, **kwargs: Any
    ) -> int:
        """Update rows, then invalidate the model's tag on commit."""
        count = super().bulk_update(objs, fields, *args, **kwargs)
        if count:
            invalidate_on_commit(tags_for_write(self.model, fields), using=self.db)
        return count
