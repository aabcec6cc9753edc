"""The homepage's sections, declared once for the batch endpoint and the legacy ones.

Each fetch returns its items (built from flat rows, ``items.py``), the total,
whether more exist, and the moment its content stops being true.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from rest_framework import serializers

from aggregation.batch import BatchRequest
from aggregation.compute import SectionResult
from aggregation.plans import Plan, planned
from aggregation.sections import Section, SectionContext, SectionPayload, SectionRegistry

from . import selectors
from .items import Row, event_item, offer_item, product_item, store_item
from .keys import (
    homepage_cache_key,
    homepage_policy,
    homepage_section_cache_key,
    homepage_variant,
    section_policy,
)
from .models import sale_running
from .selectors import Page
from .serializers import (
    EventItemSerializer,
    OfferItemSerializer,
    ProductItemSerializer,
    StoreItemSerializer,
)
from .storage import storefront_database


def _payload(
    page: Page,
    item: Callable[[Row], Row],
    leaves: Callable[[Row], datetime | None] | None = None,
) -> SectionPayload:
    """A section's payload from a page: items, total, ``hasMore``, expiry and stats.

    It expires at the first moment a listed item leaves (``leaves``), or the
    moment the total stops being true, whichever comes first.
    """
    moments = [m.timestamp() for m in map(leaves, page.rows) if m is not None] if leaves else []
    if page.total_until is not None:
        moments.append(page.total_until)
    return SectionPayload(
        items=[item(row) for row in page.rows],
        total=page.total,
        has_more=page.has_more,
        expires_at=datetime.fromtimestamp(min(moments), UTC) if moments else None,
        stats=_stats(page.rows),
    )


def _stats(rows: list[Row]) -> dict[str, float]:
    stats: dict[str, float] = {"views": sum(r["views"] for r in rows)}
    scores = [r["recommendation_score"] for r in rows if "recommendation_score" in r]
    if scores:
        stats["recommendationScore"] = round(sum(scores) / len(scores), 4)
    return stats


def homepage_analytics(results: dict[str, SectionResult]) -> dict[str, Any]:
    """``analytics``: summed views per section and the mean recommendation score."""
    section_views = {
        section_id: int(r.stats["views"]) for section_id, r in results.items() if r.stats
    }
    just_for_you = results.get("justForYou")
    score = just_for_you.stats.get("recommendationScore") if just_for_you else None
    return {"sectionViews": section_views, "recommendationScore": score}


def _radius() -> float:
    return settings.HOMEPAGE_LOCATION_RADIUS_KM


def _offer_leaves(now: datetime) -> Callable[[Row], datetime]:
    """When a listed offer stops being true: its validity ends, or its running sale does."""

    def leaves(row: Row) -> datetime:
        if sale_running(row["flash_sale_active"], row["flash_sale_ends_at"], now):
            return min(row["valid_until"], row["flash_sale_ends_at"])
        return row["valid_until"]

    return leaves


@planned
def fetch_just_for_you(ctx: SectionContext) -> Plan[SectionPayload]:
    """Featured products ranked for the user (popular ones for anonymous callers)."""
    page = yield from selectors.products_just_for_you.plan(user_id=ctx.user_id, limit=ctx.limit)
    return _payload(page, product_item)


@planned
def fetch_new_arrivals(ctx: SectionContext) -> Plan[SectionPayload]:
    """Newest in-stock products."""
    page = yield from selectors.products_new_arrivals.plan(limit=ctx.limit)
    return _payload(page, product_item)


@planned
def fetch_trending_stores(ctx: SectionContext) -> Plan[SectionPayload]:
    """Featured stores, nearest first when a location is given."""
    page = yield from selectors.stores_trending.plan(
        limit=ctx.limit, location=ctx.options.get("location"), radius_km=_radius()
    )
    return _payload(page, store_item)


@planned
def fetch_events(ctx: SectionContext) -> Plan[SectionPayload]:
    """Upcoming featured events; the list is stale once the first one starts."""
    page = yield from selectors.events_featured.plan(
        now=ctx.now, limit=ctx.limit, location=ctx.options.get("location"), radius_km=_radius()
    )
    return _payload(page, event_item, lambda row: row["starts_at"])


@planned
def fetch_offers(ctx: SectionContext) -> Plan[SectionPayload]:
    """Featured valid offers; stale once the first one's validity (or sale) ends."""
    page = yield from selectors.offers_featured.plan(now=ctx.now, limit=ctx.limit)
    return _payload(page, lambda row: offer_item(row, ctx.now), _offer_leaves(ctx.now))


@planned
def fetch_flash_sales(ctx: SectionContext) -> Plan[SectionPayload]:
    """Running flash sales; stale once the first one ends."""
    page = yield from selectors.offers_flash_sales.plan(now=ctx.now, limit=ctx.limit)
    return _payload(page, lambda row: offer_item(row, ctx.now), _offer_leaves(ctx.now))


@planned
def fetch_all_offers(ctx: SectionContext) -> Plan[SectionPayload]:
    """Every valid offer, featured or not (``/offers`` without ``featured=true``)."""
    page = yield from selectors.offers_valid.plan(now=ctx.now, limit=ctx.limit)
    return _payload(page, lambda row: offer_item(row, ctx.now), _offer_leaves(ctx.now))


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
    database=storefront_database,
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


def homepage_request(
    params: dict[str, Any], user_id: int | None, *, verify: tuple[str, dict[str, Any]] | None = None
) -> BatchRequest:
    """The homepage batch for validated parameters (``limit``; ``sections``, ``location``).

    ``verify``: how the consistency monitor may recompute what is stored.
    """
    variant = homepage_variant(
        limit=params["limit"], sections=params.get("sections"), location=params.get("location")
    )
    return BatchRequest(
        registry=homepage_sections,
        sections=homepage_sections.resolve(params.get("sections")),
        context=SectionContext(
            now=datetime.now(UTC),
            limit=params["limit"],
            user_id=user_id,
            options={"location": params.get("location")},
        ),
        cache_key=homepage_cache_key(user_id, variant),
        policy=homepage_policy(),
        section_policy=section_policy(),
        extras=homepage_analytics,
        verify=verify,
    )
