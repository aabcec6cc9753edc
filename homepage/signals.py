"""Invalidation receivers: schedule tag bumps after commit, nothing else.

Changes to fields no section shows (view counters) do not invalidate. Bulk
writes are covered by the models' ``InvalidatingQuerySet``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from caching.querysets import CacheTagged, tags_for_write
from caching.tags import invalidate_on_commit

from .models import CategoryAffinity, Event, Offer, Product, Store
from .storage import on_mongodb

CATALOGUE = (Product, Store, Event, Offer)


def catalogue_saved(
    sender: type[CacheTagged],
    instance: Model,
    created: bool = False,
    update_fields: frozenset[str] | None = None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """A product, store, event or offer was saved (totals too when it may join or leave a set)."""
    tags = tags_for_write(sender, None if created else update_fields)
    if tags:
        invalidate_on_commit(tags, using=using)


def catalogue_deleted(
    sender: type[CacheTagged], instance: Model, using: str | None = None, **kwargs: Any
) -> None:
    """A product, store, event or offer was deleted: its content and totals."""
    invalidate_on_commit(tags_for_write(sender, None), using=using)


def affinity_changed(
    sender: type[CategoryAffinity],
    instance: CategoryAffinity,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    """A user's category affinities changed: their personalised sections are stale."""
    invalidate_on_commit([f"user:{instance.user_id}"], using=using)


def user_deleted(sender: type[AbstractBaseUser], instance: AbstractBaseUser, **kwargs: Any) -> None:
    """With the storefront in another database, nothing cascades to a user's affinities."""
    CategoryAffinity.objects.filter(user_id=instance.pk).delete()


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
    if on_mongodb():
        post_delete.connect(
            user_deleted, sender=settings.AUTH_USER_MODEL, dispatch_uid="homepage.user.deleted"
        )
