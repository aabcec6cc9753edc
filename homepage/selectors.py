"""Storefront reads: one query per list, shared by a section and its legacy endpoint.

Each selector returns a ``Page``: flat rows (``.values()``), whether more
exist, and the total. ``has_more`` is exact (``limit + 1`` rows are read).
The total is not a ``COUNT(*)`` per computation: it is counted once and shared
through the cache under the data's tag, and for sets bounded by time (valid
offers, upcoming events, running flash sales) its lifetime ends at the next
moment an item leaves the set, found by the same query. So a total is exact
when its entry is stored and never outlives its content. Locations are
``(longitude, latitude)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from django.db.models import Count, F, Min, QuerySet, Value
from django.db.models.functions import Least

from caching.counts import cached_total
from caching.querysets import totals_tag

from .items import (
    EVENT_COLUMNS,
    OFFER_COLUMNS,
    OFFER_STORE_COLUMNS,
    PRODUCT_COLUMNS,
    STORE_COLUMNS,
    Row,
)
from .keys import COUNT_NAMESPACE, Location, count_cache_key, location_part
from .models import CategoryAffinity, Event, Offer, Product, Store
from .storage import is_mongodb

KM_PER_DEGREE = 111.195
MAX_AFFINITY_CATEGORIES = 20


@dataclass
class Page:
    """A section's rows, whether more exist, and the total of its set."""

    rows: list[Row]
    total: int
    has_more: bool
    total_until: float | None = None  # epoch second the total stops being true


@dataclass(frozen=True)
class Total:
    """How a set's total is shared: its key, its tag, and when an item leaves it."""

    name: str
    tag: str
    exit: Any = None  # an expression: the moment a row leaves the set (None: never by time)


def _count(queryset: QuerySet, total: Total) -> tuple[int, float | None]:
    """The shared total of ``queryset``: cached under its tag, ending when an item leaves."""

    def compute() -> tuple[int, float | None]:
        if total.exit is None:
            return queryset.order_by().count(), None
        # COUNT(*), not COUNT(id): answerable from the partial index alone.
        found = queryset.order_by().aggregate(n=Count("*"), leaves=Min(total.exit))
        return found["n"], found["leaves"].timestamp() if found["leaves"] else None

    return cached_total(
        count_cache_key(total.name), compute, tags=[total.tag], namespace=COUNT_NAMESPACE
    )


def _page(
    queryset: QuerySet,
    columns: tuple[str, ...],
    limit: int,
    total: Total,
    joined: dict[str, Any] | None = None,
) -> Page:
    """``limit`` rows (reading one more for ``has_more``) and the set's shared total."""
    rows = list(queryset.values(*columns, **(joined or {}))[: limit + 1])
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
    count, until = _count(queryset, total)
    return Page(rows[:limit], count, True, until)


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


def _with_distances(page: Page) -> Page:
    for row in page.rows:
        row["distance_km"] = round(math.sqrt(row.pop("distance_sq")) * KM_PER_DEGREE, 2)
    return page


def user_category_affinities(*, user_id: int) -> dict[str, float]:
    """The user's strongest category affinities, strongest first."""
    rows = (
        CategoryAffinity.objects.filter(user_id=user_id, score__gt=0)
        .order_by("-score", "category")
        .values_list("category", "score")[:MAX_AFFINITY_CATEGORIES]
    )
    return dict(rows)


FEATURED_IN_STOCK = Total("featuredInStock", totals_tag(Product))
IN_STOCK = Total("inStock", totals_tag(Product))
_RECOMMENDED_ORDER = ("-recommendation_score", "-views", "-created_at", "-pk")


def products_just_for_you(*, user_id: int | None, limit: int) -> Page:
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
        ordered = base.order_by("-views", "-created_at", "-pk")
        return _page(ordered, PRODUCT_COLUMNS, limit, FEATURED_IN_STOCK)
    rows = _top_by_affinity(base, affinities, limit + 1)
    if len(rows) <= limit:
        others = base.exclude(category__in=list(affinities)).order_by(*_RECOMMENDED_ORDER)
        rows += list(others.values(*PRODUCT_COLUMNS)[: limit + 1 - len(rows)])
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
    count, until = _count(base, FEATURED_IN_STOCK)
    return Page(rows[:limit], count, True, until)


def _top_by_affinity(base: QuerySet, affinities: dict[str, float], limit: int) -> list[Row]:
    """The best ``limit`` products of the user's categories, strongest affinity first.

    Categories of equal affinity form one group, read with one query in
    recommendation order (an index range scan on ``product_featured_category_idx``);
    groups are read strongest first until the page is full, usually after one.
    Equivalent to ordering every featured product by a CASE on its category,
    without sorting them all.
    """
    rows: list[Row] = []
    by_strength = sorted(affinities.items(), key=lambda item: -item[1])
    for _, group in groupby(by_strength, key=lambda item: item[1]):
        categories = [category for category, _ in group]
        queryset = base.filter(category__in=categories).order_by(*_RECOMMENDED_ORDER)
        rows += list(queryset.values(*PRODUCT_COLUMNS)[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def products_new_arrivals(*, limit: int) -> Page:
    """In-stock products, newest first."""
    queryset = Product.objects.in_stock().order_by("-created_at", "-pk")
    return _page(queryset, PRODUCT_COLUMNS, limit, IN_STOCK)


def stores_trending(
    *, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Page:
    """Featured stores by rating and views, or the nearest ones to ``location``."""
    queryset: QuerySet = Store.objects.featured()
    if location:
        near = _nearest(queryset, location, radius_km)
        total = Total(f"featuredStores:{location_part(location)}", totals_tag(Store))
        return _with_distances(_page(near, (*STORE_COLUMNS, "distance_sq"), limit, total))
    ordered = queryset.order_by("-rating", "-views", "pk")
    return _page(ordered, STORE_COLUMNS, limit, Total("featuredStores", totals_tag(Store)))


def events_featured(
    *, now: datetime, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Page:
    """Featured events yet to start: soonest first, or nearest to ``location``.

    An event leaves the set when it starts.
    """
    queryset: QuerySet = Event.objects.upcoming_featured(now)
    if location:
        near = _nearest(queryset, location, radius_km)
        total = Total(f"upcomingEvents:{location_part(location)}", totals_tag(Event), "starts_at")
        return _with_distances(_page(near, (*EVENT_COLUMNS, "distance_sq"), limit, total))
    ordered = queryset.order_by("starts_at", "-views", "pk")
    return _page(
        ordered, EVENT_COLUMNS, limit, Total("upcomingEvents", totals_tag(Event), "starts_at")
    )


def offers_featured(*, now: datetime, limit: int) -> Page:
    """Featured offers still valid, newest first (an offer leaves when its validity ends)."""
    queryset = Offer.objects.featured_valid(now).order_by("-created_at", "-pk")
    total = Total("featuredOffers", totals_tag(Offer), "valid_until")
    return _offers(queryset, limit, total)


def offers_valid(*, now: datetime, limit: int) -> Page:
    """Every offer still valid, newest first (``/offers`` without ``featured``)."""
    queryset = Offer.objects.valid(now).order_by("-created_at", "-pk")
    total = Total("validOffers", totals_tag(Offer), "valid_until")
    return _offers(queryset, limit, total)


def offers_flash_sales(*, now: datetime, limit: int) -> Page:
    """Running flash sales, cheapest sale price first (one leaves when the sale or offer ends)."""
    queryset = Offer.objects.flash_sales(now).order_by("flash_sale_price", "valid_until", "pk")
    ends = Least("valid_until", "flash_sale_ends_at")
    total = Total("flashSales", totals_tag(Offer), ends)
    return _offers(queryset, limit, total)


# The offer's store in the same query, where a join is cheap (SQL).
_STORE_JOIN = {"store_name": F("store__name"), "store_logo": F("store__logo")}


def _offers(queryset: QuerySet, limit: int, total: Total) -> Page:
    """Offer rows with their store's name and logo.

    On MongoDB a join is a ``$lookup`` run on every offer before the filter,
    so there the stores are read by a second query on their keys.
    """
    if not is_mongodb(queryset.db):
        return _page(queryset, OFFER_COLUMNS, limit, total, _STORE_JOIN)
    page = _page(queryset, OFFER_COLUMNS, limit, total)
    with_stores(page.rows)
    return page


def with_stores(rows: list[Row]) -> list[Row]:
    """Each offer row with its store's name and logo (one query on the stores' keys)."""
    ids = {row["store_id"] for row in rows}
    stores = {
        store["id"]: store
        for store in Store.objects.filter(pk__in=ids).values(*OFFER_STORE_COLUMNS)
    } if ids else {}  # fmt: skip
    for row in rows:
        store = stores.get(row["store_id"], {})
        row["store_name"], row["store_logo"] = store.get("name", ""), store.get("logo", "")
    return rows
