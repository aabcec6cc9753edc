"""The homepage's sections, declared once for the batch endpoint and the legacy ones.

Each fetch runs in a worker thread (its own connection) and returns serialized
items, the total, and the moment its content stops being valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from rest_framework import serializers

from aggregation.batch import SectionResult
from aggregation.sections import Section, SectionContext, SectionPayload, SectionRegistry

from . import selectors
from .keys import homepage_section_cache_key
from .models import offer_content_end
from .serializers import (
    EventItemSerializer,
    OfferItemSerializer,
    ProductItemSerializer,
    StoreItemSerializer,
)


def _payload(
    serializer: type[serializers.Serializer],
    result: tuple[list, int],
    expiry: Callable[[Any], datetime | None] | None = None,
    now: datetime | None = None,
) -> SectionPayload:
    rows, total = result
    expires: Iterable[datetime | None] = (expiry(r) for r in rows) if expiry else ()
    moments = [m for m in expires if m is not None]
    return SectionPayload(
        items=list(serializer(rows, many=True, context={"now": now}).data),
        total=total,
        expires_at=min(moments) if moments else None,
        stats=_stats(rows),
    )


def _stats(rows: list) -> dict[str, float]:
    stats: dict[str, float] = {"views": sum(r.views for r in rows)}
    scores = [r.recommendation_score for r in rows if hasattr(r, "recommendation_score")]
    if scores:
        stats["recommendationScore"] = round(sum(scores) / len(scores), 4)
    return stats


def homepage_analytics(results: dict[str, SectionResult]) -> dict[str, Any]:
    """``analytics`` of seed 004 §1.3, from the figures the sections computed."""
    section_views = {
        section_id: int(r.stats["views"]) for section_id, r in results.items() if r.stats
    }
    just_for_you = results.get("justForYou")
    score = just_for_you.stats.get("recommendationScore") if just_for_you else None
    return {"sectionViews": section_views, "recommendationScore": score}


def _radius() -> float:
    return settings.HOMEPAGE_LOCATION_RADIUS_KM


def fetch_just_for_you(ctx: SectionContext) -> SectionPayload:
    """Featured products ranked for the user (popular ones for anonymous callers)."""
    return _payload(
        ProductItemSerializer,
        selectors.products_just_for_you(user_id=ctx.user_id, limit=ctx.limit),
    )


def fetch_new_arrivals(ctx: SectionContext) -> SectionPayload:
    """Newest in-stock products."""
    return _payload(ProductItemSerializer, selectors.products_new_arrivals(limit=ctx.limit))


def fetch_trending_stores(ctx: SectionContext) -> SectionPayload:
    """Featured stores, nearest first when a location is given."""
    result = selectors.stores_trending(
        limit=ctx.limit, location=ctx.options.get("location"), radius_km=_radius()
    )
    return _payload(StoreItemSerializer, result)


def fetch_events(ctx: SectionContext) -> SectionPayload:
    """Upcoming featured events; the list is stale once the first one starts."""
    result = selectors.events_featured(
        now=ctx.now, limit=ctx.limit, location=ctx.options.get("location"), radius_km=_radius()
    )
    return _payload(EventItemSerializer, result, lambda e: e.starts_at)


def fetch_offers(ctx: SectionContext) -> SectionPayload:
    """Featured valid offers; stale once the first one's validity ends."""
    result = selectors.offers_featured(now=ctx.now, limit=ctx.limit)
    return _payload(OfferItemSerializer, result, lambda o: offer_content_end(o, ctx.now), ctx.now)


def fetch_flash_sales(ctx: SectionContext) -> SectionPayload:
    """Running flash sales; stale once the first one ends."""
    result = selectors.offers_flash_sales(now=ctx.now, limit=ctx.limit)
    return _payload(OfferItemSerializer, result, lambda o: offer_content_end(o, ctx.now), ctx.now)


def fetch_all_offers(ctx: SectionContext) -> SectionPayload:
    """Every valid offer, featured or not (``/offers`` without ``featured=true``)."""
    result = selectors.offers_valid(now=ctx.now, limit=ctx.limit)
    return _payload(OfferItemSerializer, result, lambda o: offer_content_end(o, ctx.now), ctx.now)


def _fields(serializer: type[serializers.Serializer]) -> tuple[str, ...]:
    return tuple(serializer.Meta.fields)  # type: ignore[attr-defined]


homepage_sections = SectionRegistry(
    [
        Section(
            id="justForYou",
            title="Just for You",
            type="recommendations",
            fetch=fetch_just_for_you,
            aliases=("just_for_you",),
            item_fields=_fields(ProductItemSerializer),
            tags=("products",),
            vary=("user",),
        ),
        Section(
            id="newArrivals",
            title="New Arrivals",
            type="products",
            fetch=fetch_new_arrivals,
            aliases=("new_arrivals",),
            item_fields=_fields(ProductItemSerializer),
            tags=("products",),
        ),
        Section(
            id="trendingStores",
            title="Trending Stores",
            type="stores",
            fetch=fetch_trending_stores,
            aliases=("trending_stores",),
            item_fields=_fields(StoreItemSerializer),
            tags=("stores",),
            vary=("location",),
        ),
        Section(
            id="events",
            title="Events",
            type="events",
            fetch=fetch_events,
            item_fields=_fields(EventItemSerializer),
            tags=("events",),
            vary=("location",),
        ),
        Section(
            id="offers",
            title="Offers",
            type="offers",
            fetch=fetch_offers,
            item_fields=_fields(OfferItemSerializer),
            tags=("offers", "stores"),
        ),
        Section(
            id="flashSales",
            title="Flash Sales",
            type="offers",
            fetch=fetch_flash_sales,
            aliases=("flash_sales",),
            item_fields=_fields(OfferItemSerializer),
            tags=("offers", "stores"),
        ),
    ],
    cache_key=homepage_section_cache_key,
)

# Not a homepage section: the legacy ``/offers`` list when ``featured`` is not asked for.
all_valid_offers = Section(
    id="allOffers",
    title="All Offers",
    type="offers",
    fetch=fetch_all_offers,
    item_fields=_fields(OfferItemSerializer),
    tags=("offers", "stores"),
)
