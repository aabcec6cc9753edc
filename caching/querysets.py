"""Bulk writes that invalidate the model's tag, since they bypass ``save()`` and signals.

``update()``, ``bulk_create()`` and ``bulk_update()`` send no signals.

A model opts in with ``objects = SomeQuerySet.as_manager()`` where the queryset
derives from ``InvalidatingQuerySet``, and declares ``cache_tag`` (the tag its
rows feed) and ``cache_ignored_fields`` (fields no cached content shows).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from .tags import invalidate_on_commit


def changes_content(model: type[models.Model], fields: Iterable[str] | None) -> bool:
    """False only when every written field is one no cached content depends on."""
    if fields is None:
        return True
    return not set(fields) <= set(getattr(model, "cache_ignored_fields", ()))


class InvalidatingQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        """Update rows, then invalidate the model's tag on commit."""
        count = super().update(**kwargs)
        if count and changes_content(self.model, kwargs):
            invalidate_on_commit([self.model.cache_tag])
        return count

    def bulk_create(self, objs, *args, **kwargs):
        """Create rows, then invalidate the model's tag on commit."""
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            invalidate_on_commit([self.model.cache_tag])
        return created

    def bulk_update(self, objs, fields, *args, **kwargs) -> int:
        """Update rows, then invalidate the model's tag on commit."""
        count = super().bulk_update(objs, fields, *args, **kwargs)
        if count and changes_content(self.model, fields):
            invalidate_on_commit([self.model.cache_tag])
        return count
