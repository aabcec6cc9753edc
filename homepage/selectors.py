"""Storefront reads: one query per list, shared by a section and its legacy endpoint.

Each selector returns ``(page, total)``. Locations are ``(longitude, latitude)``.
"""

from __future__ import annotations

import math
from datetime import datetime

from django.db.models import Case, F, FloatField, QuerySet, Value, When

from .models import CategoryAffinity, Event, Offer, Product, Store

KM_PER_DEGREE = 111.195
MAX_AFFINITY_CATEGORIES = 20

Location = tuple[float, float]


def _page(queryset: QuerySet, limit: int) -> tuple[list, int]:
    """A page and the total; the count query is skipped when the page is short."""
    page = list(queryset[:limit])
    total = len(page) if len(page) < limit else queryset.order_by().count()
    return page, total


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

    With category affinities: the user's favourite categories first, then the
    editorial recommendation score, then popularity. Anonymous callers, and
    users with no affinities yet, get the most popular featured products.
    """
    queryset = Product.objects.featured_in_stock()
    affinities = user_category_affinities(user_id=user_id) if user_id else {}
    if affinities:
        affinity = Case(
            *(When(category=c, then=Value(s)) for c, s in affinities.items()),
            default=Value(0.0),
            output_field=FloatField(),
        )
        queryset = queryset.annotate(affinity=affinity).order_by(
            "-affinity", "-recommendation_score", "-views", "-created_at", "-pk"
        )
    else:
        queryset = queryset.order_by("-views", "-created_at", "-pk")
    return _page(queryset, limit)


def products_new_arrivals(*, limit: int) -> tuple[list[Product], int]:
    """In-stock products, newest first."""
    return _page(Product.objects.in_stock().order_by("-created_at", "-pk"), limit)


def stores_trending(
    *, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> tuple[list[Store], int]:
    """Featured stores by rating and views, or the nearest ones to ``location``."""
    queryset = Store.objects.featured()
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
    queryset = Event.objects.upcoming_featured(now)
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
