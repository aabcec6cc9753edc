"""Reusable filters for the storefront models (``Product.objects.featured_in_stock()``)."""

from __future__ import annotations

from datetime import datetime

from caching.querysets import InvalidatingQuerySet


class ProductQuerySet(InvalidatingQuerySet):
    def active(self) -> ProductQuerySet:
        """Listed products."""
        return self.filter(is_active=True)

    def in_stock(self) -> ProductQuerySet:
        """Active products with stock left."""
        return self.active().filter(stock__gt=0)

    def featured_in_stock(self) -> ProductQuerySet:
        """What "just for you" and ``/products/featured`` choose from."""
        return self.in_stock().filter(featured=True)


class StoreQuerySet(InvalidatingQuerySet):
    def featured(self) -> StoreQuerySet:
        """Active stores staff flagged as featured."""
        return self.filter(featured=True, is_active=True)


class EventQuerySet(InvalidatingQuerySet):
    def upcoming_featured(self, now: datetime) -> EventQuerySet:
        """Active featured events that have not started yet."""
        return self.filter(featured=True, is_active=True, starts_at__gte=now)


class OfferQuerySet(InvalidatingQuerySet):
    def valid(self, now: datetime) -> OfferQuerySet:
        """Active offers whose validity has not ended."""
        return self.filter(is_active=True, valid_until__gte=now)

    def featured_valid(self, now: datetime) -> OfferQuerySet:
        """What the offers section and ``/offers?featured=true`` choose from."""
        return self.valid(now).filter(featured=True)

    def flash_sales(self, now: datetime) -> OfferQuerySet:
        """Valid offers with a running flash sale."""
        return self.valid(now).filter(flash_sale_active=True, flash_sale_ends_at__gt=now)
