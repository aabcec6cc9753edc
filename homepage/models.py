"""Storefront models. Filtered and sorted fields are real, indexed columns.

Indexes follow seed 004 appendix B; where a filter is constant (``is_active``,
``featured``) the index is partial on it, so it stays small and exact (on
MongoDB: a ``partialFilterExpression``). Tables and collections are named as
the seed's collections. On MongoDB (``STOREFRONT_DATABASE_URL``) the primary
keys are ObjectIds; the API shows every id as a string either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from caching.querysets import InvalidatingQuerySet

from .querysets import EventQuerySet, OfferQuerySet, ProductQuerySet, StoreQuerySet
from .storage import on_mongodb

_ACTIVE = Q(is_active=True)
_FEATURED_ACTIVE = Q(featured=True, is_active=True)
# Written often, shown nowhere fresh: changing them alone does not invalidate.
_COUNTERS = ("views", "updated_at")


class Store(models.Model):
    name = models.CharField(max_length=200)
    logo = models.URLField(max_length=500, blank=True)
    image = models.URLField(max_length=500, blank=True)
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=0)
    cashback = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, help_text="Cashback percentage."
    )
    category = models.CharField(max_length=100, db_index=True)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    featured = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    views = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StoreQuerySet.as_manager()

    cache_tag = "stores"
    cache_ignored_fields = _COUNTERS
    cache_total_fields = frozenset({"featured", "is_active", "latitude", "longitude"})

    class Meta:
        db_table = "stores"
        ordering = ["-rating", "-views"]
        indexes = [
            # { featured: 1, isActive: 1, rating: -1 }
            models.Index(
                fields=["-rating", "-views"],
                condition=_FEATURED_ACTIVE,
                name="store_featured_rating_idx",
            ),
            models.Index(
                fields=["latitude", "longitude"],
                condition=_FEATURED_ACTIVE,
                name="store_featured_geo_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    brand = models.CharField(max_length=100, blank=True)
    image = models.URLField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    original_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    category = models.CharField(max_length=100, db_index=True)
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=0)
    cashback = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, help_text="Cashback percentage."
    )
    stock = models.PositiveIntegerField(default=0, help_text="inventory.stock")
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    featured = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    views = models.PositiveBigIntegerField(default=0)
    recommendation_score = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    cache_tag = "products"
    cache_ignored_fields = _COUNTERS
    cache_total_fields = frozenset({"featured", "is_active", "stock"})

    class Meta:
        db_table = "products"
        ordering = ["-created_at"]
        indexes = [
            # { featured: 1, isActive: 1, views: -1 }
            models.Index(
                fields=["-views", "-created_at"],
                condition=_FEATURED_ACTIVE,
                name="product_featured_views_idx",
            ),
            # { featured: 1, isActive: 1, recommendationScore: -1 }
            models.Index(
                fields=["-recommendation_score", "-views"],
                condition=_FEATURED_ACTIVE,
                name="product_featured_reco_idx",
            ),
            # "Just for you" for a user: the top of each favourite category, and the
            # total (an index-only count), without sorting every featured product.
            models.Index(
                fields=["category", "-recommendation_score", "-views", "-created_at", "-id"],
                condition=Q(featured=True, is_active=True, stock__gt=0),
                name="product_featured_category_idx",
            ),
            # { isActive: 1, createdAt: -1 }
            models.Index(fields=["-created_at"], condition=_ACTIVE, name="product_active_new_idx"),
            # Exactly the new-arrivals filter: its page and its total (an index-only count).
            models.Index(
                fields=["-created_at"],
                condition=Q(is_active=True, stock__gt=0),
                name="product_in_stock_new_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    title = models.CharField(max_length=200)
    subtitle = models.CharField(max_length=300, blank=True)
    image = models.URLField(max_length=500, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    venue = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    starts_at = models.DateTimeField(help_text="The event's date and time.")
    category = models.CharField(max_length=100, db_index=True)
    organizer = models.CharField(max_length=200, blank=True)
    featured = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    views = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EventQuerySet.as_manager()

    cache_tag = "events"
    cache_ignored_fields = _COUNTERS
    cache_total_fields = frozenset({"featured", "is_active", "starts_at", "latitude", "longitude"})

    class Meta:
        db_table = "events"
        ordering = ["starts_at"]
        indexes = [
            # { featured: 1, isActive: 1, date: 1 }
            models.Index(
                fields=["starts_at", "-views"],
                condition=_FEATURED_ACTIVE,
                name="event_featured_date_idx",
            ),
            models.Index(
                fields=["latitude", "longitude"],
                condition=_FEATURED_ACTIVE,
                name="event_featured_geo_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Offer(models.Model):
    title = models.CharField(max_length=200)
    subtitle = models.CharField(max_length=300, blank=True)
    image = models.URLField(max_length=500, blank=True)
    original_price = models.DecimalField(max_digits=10, decimal_places=2)
    discounted_price = models.DecimalField(max_digits=10, decimal_places=2)
    cashback_percentage = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    valid_until = models.DateTimeField(help_text="validity: the offer ends at this moment.")
    category = models.CharField(max_length=100, db_index=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="offers")
    featured = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # metadata.flashSale, as columns: the flash sales section filters and sorts on them.
    flash_sale_active = models.BooleanField(default=False)
    flash_sale_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    flash_sale_ends_at = models.DateTimeField(null=True, blank=True)
    flash_sale_stock = models.PositiveIntegerField(null=True, blank=True)
    views = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OfferQuerySet.as_manager()

    cache_tag = "offers"
    cache_ignored_fields = _COUNTERS
    cache_total_fields = frozenset(
        {"featured", "is_active", "valid_until", "flash_sale_active", "flash_sale_ends_at"}
    )

    class Meta:
        db_table = "offers"
        ordering = ["-created_at"]
        indexes = [
            # { featured: 1, isActive: 1, validity: 1 }
            models.Index(
                fields=["valid_until", "-created_at"],
                condition=_FEATURED_ACTIVE,
                name="offer_featured_validity_idx",
            ),
            # The offers section's order: newest featured first, read straight off the index.
            models.Index(
                fields=["-created_at"],
                condition=_FEATURED_ACTIVE,
                name="offer_featured_new_idx",
            ),
            # { 'metadata.flashSale.isActive': 1, isActive: 1, validity: 1 }
            models.Index(
                fields=["valid_until", "flash_sale_price"],
                condition=Q(flash_sale_active=True, is_active=True),
                name="offer_flash_validity_idx",
            ),
            # ``/offers`` without featured: every valid offer, newest first, and its total.
            models.Index(fields=["-created_at"], condition=_ACTIVE, name="offer_active_new_idx"),
            models.Index(
                fields=["valid_until"], condition=_ACTIVE, name="offer_active_validity_idx"
            ),
            # The flash sales section's order: cheapest running sale first.
            models.Index(
                fields=["flash_sale_price"],
                condition=Q(flash_sale_active=True, is_active=True),
                name="offer_flash_price_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title


def sale_running(active: bool, ends_at: datetime | None, now: datetime) -> bool:
    """True while a flash sale runs: flagged, and its end not yet reached."""
    return bool(active and ends_at is not None and ends_at > now)


def flash_sale_running(offer: Offer, now: datetime) -> bool:
    """True while an offer's flash sale runs."""
    return sale_running(offer.flash_sale_active, offer.flash_sale_ends_at, now)


class CategoryAffinity(models.Model):
    """How much a user likes a category; "just for you" ranks by it."""

    # On MongoDB the user is on the other database: its id only, no constraint,
    # nothing to cascade from there (signals.py deletes a deleted user's affinities).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING if on_mongodb() else models.CASCADE,
        db_constraint=not on_mongodb(),
        related_name="category_affinities",
    )
    category = models.CharField(max_length=100)
    score = models.FloatField(default=0)

    objects = InvalidatingQuerySet.as_manager()  # bulk writes invalidate too

    cache_row_columns = ("user_id",)

    class Meta:
        db_table = "category_affinities"
        constraints = [
            models.UniqueConstraint(fields=["user", "category"], name="affinity_user_category_uniq")
        ]
        verbose_name_plural = "category affinities"

    def __str__(self) -> str:
        return f"{self.user_id}:{self.category}={self.score}"

    @classmethod
    def cache_row_tags(cls, rows: Sequence[Mapping[str, Any]] | None) -> list[str]:
        """The user's personalised sections (``user:42``); every user's cannot be named."""
        if rows is None:  # a TRUNCATE: "just for you" falls back to the global ranking
            return ["products"]
        return sorted({f"user:{row['user_id']}" for row in rows if row.get("user_id")})
