"""Storefront reads: one query per list, shared by a section and its legacy endpoint.

Each selector returns ``(page, total)``. Locations are ``(longitude, latitude)``.
"""

from __future__ import annotations

import math
from datetime import datetime
from itertools import groupby

from django.db.models import F, QuerySet, Value

from caching.counts import cached_count

from .keys import COUNT_NAMESPACE, Location, count_cache_key
from .models import CategoryAffinity, Event, Offer, Product, Store

KM_PER_DEGREE = 111.195
JUST_FOR_YOU_COUNT_KEY = count_cache_key("featuredInStock")
NEW_ARRIVALS_COUNT_KEY = count_cache_key("inStock")
MAX_AFFINITY_CATEGORIES = 20


def _page(queryset: QuerySet, limit: int, count_key: str | None = None) -> tuple[list, int]:
    """A page and the total; the count query is skipped when the page is short.

    With ``count_key`` the total is shared through the cache until products change.
    """
    page = list(queryset[:limit])
    if len(page) < limit:
        return page, len(page)
    if count_key is not None:
        return page, _shared_count(queryset, count_key)
    return page, queryset.order_by().count()


def _shared_count(queryset: QuerySet, key: str) -> int:
    """A product count shared through the cache until products change."""
    return cached_count(queryset, key=key, tags=[Product.cache_tag], namespace=COUNT_NAMESPACE)


def _nearest(queryset: QuerySet, location: Location, radius_km: float) -> QuerySet:
    """Rows within ``radius_km`` of ``location``, nearest first.

    An equirectangular approximation, exact enough at city scale and plain
    arithmetic in SQL, so it runs on PostgreSQL and SQLite alike; the bounding
    box lets the (latitude, longitude) index narrow the rows first.
    """
    lng, lat = location
    lat_span = radius_km / KM_PER_DEGREE
    lng_scale = max(math.cos(math.radians(lat)), 1e-6)
    lng_span = lat_span / lng_scale
    d_lat = F("latitude") - Value(lat)
    d_lng = (F("longitude") - Value(lng)) * Value(lng_scale)
    return (
        queryset.filter(
            latitude__range=(lat - lat_span, lat + lat_span),
            longitude__range=(lng - lng_span, lng + lng_span),
        )
        .annotate(distance_sq=d_lat * d_lat + d_lng * d_lng)
        .filter(distance_sq__lte=lat_span * lat_span)
        .order_by("distance_sq", "pk")
    )


def _set_distances(rows: list, location: Location | None) -> list:
    for row in rows:
        sq = getattr(row, "distance_sq", None)
        row.distance_km = (
            round(math.sqrt(sq) * KM_PER_DEGREE, 2) if location and sq is not None else None
        )
    return rows


def user_category_affinities(*, user_id: int) -> dict[str, float]:
    """The user's strongest category affinities, strongest first."""
    rows = (
        CategoryAffinity.objects.filter(user_id=user_id, score__gt=0)
        .order_by("-score", "category")
        .values_list("category", "score")[:MAX_AFFINITY_CATEGORIES]
    )
    return dict(rows)


def products_just_for_you(*, user_id: int | None, limit: int) -> tuple[list[Product], int]:
    """Featured, in-stock products ranked for the user.

    With category affinities: the user's favourite categories first (strongest
    affinity first), then the editorial recommendation score, then popularity;
    then the best of the other categories. Anonymous callers, and users with
    no affinities yet, get the most popular featured products. The total is the
    same for everyone: every featured product in stock.
    """
    base = Product.objects.featured_in_stock()
    affinities = user_category_affinities(user_id=user_id) if user_id else {}
    if not affinities:
        return _page(base.order_by("-views", "-created_at", "-pk"), limit, JUST_FOR_YOU_COUNT_KEY)
    page = _top_by_affinity(base, affinities, limit)
    if len(page) < limit:
        others = base.exclude(category__in=list(affinities)).order_by(*_RECOMMENDED_ORDER)
        page += list(others[: limit - len(page)])
    if len(page) < limit:
        return page, len(page)
    return page, _shared_count(base, JUST_FOR_YOU_COUNT_KEY)


_RECOMMENDED_ORDER = ("-recommendation_score", "-views", "-created_at", "-pk")


def _top_by_affinity(base: QuerySet, affinities: dict[str, float], limit: int) -> list[Product]:
    """The best ``limit`` products of the user's categories, strongest affinity first.

    Categories of equal affinity form one group, read with one query in
    recommendation order (an index range scan on ``product_featured_category_idx``);
    groups are read strongest first until the page is full, usually after one.
    Equivalent to ordering every featured product by a CASE on its category,
    without sorting them all.
    """
    page: list[Product] = []
    by_strength = sorted(affinities.items(), key=lambda item: -item[1])
    for _, group in groupby(by_strength, key=lambda item: item[1]):
        categories = [category for category, _ in group]
        queryset = base.filter(category__in=categories).order_by(*_RECOMMENDED_ORDER)
        page += list(queryset[: limit - len(page)])
        if len(page) >= limit:
            break
    return page


def products_new_arrivals(*, limit: int) -> tuple[list[Product], int]:
    """In-stock products, newest first."""
    queryset = Product.objects.in_stock().order_by("-created_at", "-pk")
    return _page(queryset, limit, NEW_ARRIVALS_COUNT_KEY)


def stores_trending(
    *, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> tuple[list[Store], int]:
    """Featured stores by rating and views, or the nearest ones to ``location``."""
    queryset: QuerySet = Store.objects.featured()
    if location:
        queryset = _nearest(queryset, location, radius_km)
    else:
        queryset = queryset.order_by("-rating", "-views", "pk")
    page, total = _page(queryset, limit)
    return _set_distances(page, location), total


def events_featured(
    *, now: datetime, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> tuple[list[Event], int]:
    """Featured events yet to start: soonest first, or nearest to ``location``."""
    queryset: QuerySet = Event.objects.upcoming_featured(now)
    if location:
        queryset = _nearest(queryset, location, radius_km)
    else:
        queryset = queryset.order_by("starts_at", "-views", "pk")
    page, total = _page(queryset, limit)
    return _set_distances(page, location), total


def offers_featured(*, now: datetime, limit: int) -> tuple[list[Offer], int]:
    """Featured offers still valid, newest first."""
    queryset = Offer.objects.featured_valid(now).select_related("store")
    return _page(queryset.order_by("-created_at", "-pk"), limit)


def offers_valid(*, now: datetime, limit: int) -> tuple[list[Offer], int]:
    """Every offer still valid, newest first (``/offers`` without ``featured``)."""
    queryset = Offer.objects.valid(now).select_related("store")
    return _page(queryset.order_by("-created_at", "-pk"), limit)


def offers_flash_sales(*, now: datetime, limit: int) -> tuple[list[Offer], int]:
    """Running flash sales, cheapest sale price first."""
    queryset = Offer.objects.flash_sales(now).select_related("store")
    return _page(queryset.order_by("flash_sale_price", "valid_until", "pk"), limit)
