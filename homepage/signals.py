"""Invalidation receivers: schedule tag bumps after commit, nothing else.

Changes to fields no section shows (view counters) do not invalidate. Bulk
writes are covered by the models' ``InvalidatingQuerySet``.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from caching.querysets import changes_content
from caching.tags import invalidate_on_commit

from .models import CategoryAffinity, Event, Offer, Product, Store

CATALOGUE = (Product, Store, Event, Offer)


def catalogue_saved(sender, instance, update_fields=None, **kwargs) -> None:
    """A product, store, event or offer was saved."""
    if changes_content(sender, update_fields):
        invalidate_on_commit([sender.cache_tag])


def catalogue_deleted(sender, instance, **kwargs) -> None:
    """A product, store, event or offer was deleted."""
    invalidate_on_commit([sender.cache_tag])


def affinity_changed(sender, instance, **kwargs) -> None:
    """A user's category affinities changed: their personalised sections are stale."""
    invalidate_on_commit([f"user:{instance.user_id}"])


def connect() -> None:
    """Connect the receivers (from ``HomepageConfig.ready``)."""
    for model in CATALOGUE:
        name = model.__name__.lower()
        post_save.connect(catalogue_saved, sender=model, dispatch_uid=f"homepage.{name}.saved")
        post_delete.connect(
            catalogue_deleted, sender=model, dispatch_uid=f"homepage.{name}.deleted"
        )
    post_save.connect(
        affinity_changed, sender=CategoryAffinity, dispatch_uid="homepage.affinity.saved"
    )
    post_delete.connect(
        affinity_changed, sender=CategoryAffinity, dispatch_uid="homepage.affinity.deleted"
    )
