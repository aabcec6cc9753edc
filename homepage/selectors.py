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

from django.db.models import F, QuerySet, Value
from django.db.models.functions import Least

from aggregation.plans import Plan, Rows, SharedTotal, more, planned
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

    def request(self, queryset: QuerySet) -> SharedTotal:
        """The shared ``COUNT(*)`` of ``queryset`` under this total's key and tag."""
        return SharedTotal(
            count_cache_key(self.name), (self.tag,), COUNT_NAMESPACE, queryset, self.exit
        )


def _page(
    queryset: QuerySet,
    columns: tuple[str, ...],
    limit: int,
    total: Total,
    joined: dict[str, Any] | None = None,
) -> Plan[Page]:
    """``limit`` rows (reading one more for ``has_more``) and the set's shared total.

    The total is asked for with the rows (from the cache, or counted in the
    same round trip): a list worth paging almost always has more. On MongoDB,
    where each query is a round trip of its own anyway, it is counted only
    when more rows exist than the page shows.
    """
    page = Rows(queryset.values(*columns, **(joined or {}))[: limit + 1])
    if is_mongodb(queryset.db):
        (rows,) = yield more(page)
        if len(rows) <= limit:
            return Page(rows, len(rows), False)
        ((count, until),) = yield (total.request(queryset),)
        return Page(rows[:limit], count, True, until)
    rows, (count, until) = yield (page, total.request(queryset))
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
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


def _affinities(user_id: int) -> QuerySet:
    return (
        CategoryAffinity.objects.filter(user_id=user_id, score__gt=0)
        .order_by("-score", "category")
        .values_list("category", "score")[:MAX_AFFINITY_CATEGORIES]
    )


def user_category_affinities(*, user_id: int) -> dict[str, float]:
    """The user's strongest category affinities, strongest first."""
    return dict(_affinities(user_id))


FEATURED_IN_STOCK = Total("featuredInStock", totals_tag(Product))
IN_STOCK = Total("inStock", totals_tag(Product))
_RECOMMENDED_ORDER = ("-recommendation_score", "-views", "-created_at", "-pk")
_POPULAR_ORDER = ("-views", "-created_at", "-pk")


@planned
def products_just_for_you(*, user_id: int | None, limit: int) -> Plan[Page]:
    """Featured, in-stock products ranked for the user.

    With category affinities: the user's favourite categories first (strongest
    affinity first), then the editorial recommendation score, then popularity;
    then the best of the other categories. Anonymous callers, and users with
    no affinities yet, get the most popular featured products. The total is the
    same for everyone: every featured product in stock.

    Two steps for a signed-in user: the affinities (with the total), then
    every candidate list at once (``_top_by_affinity``).
    """
    base = Product.objects.featured_in_stock()
    if not user_id:
        return (yield from _page(base.order_by(*_POPULAR_ORDER), PRODUCT_COLUMNS, limit,
                                 FEATURED_IN_STOCK))  # fmt: skip
    # On MongoDB each query is a round trip of its own: the total only when needed.
    one_by_one = is_mongodb(base.db)
    total = FEATURED_IN_STOCK.request(base)
    found, *counted = yield more(Rows(_affinities(user_id)), *(() if one_by_one else (total,)))
    affinities = dict(found)
    if not affinities:
        popular = base.order_by(*_POPULAR_ORDER).values(*PRODUCT_COLUMNS)
        read = Rows(popular[: limit + 1])
        (rows,) = yield (more(read) if one_by_one else (read,))
    else:
        rows = yield from _top_by_affinity(base, affinities, limit + 1, one_by_one=one_by_one)
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
    if not counted:
        counted = yield (total,)
    count, until = counted[0]
    return Page(rows[:limit], count, True, until)


def _top_by_affinity(
    base: QuerySet, affinities: dict[str, float], limit: int, *, one_by_one: bool = False
) -> Plan[list[Row]]:
    """The best ``limit`` products, the user's categories first, strongest affinity first.

    Categories of equal affinity form one group, read with one query in
    recommendation order (an index range scan on ``product_featured_category_idx``);
    every group's query, and the other categories' (the fallback when the
    groups fall short), are sent at once, each reading ``limit`` rows at most,
    and taken in order until the page is full. Equivalent to ordering every
    featured product by a CASE on its category, without sorting them all.
    ``one_by_one`` (MongoDB, a round trip per query anyway): each list is read
    only while the page is not full, usually the first alone.
    """
    by_strength = sorted(affinities.items(), key=lambda item: -item[1])
    groups = [[category for category, _ in group]
              for _, group in groupby(by_strength, key=lambda item: item[1])]  # fmt: skip
    lists = [base.filter(category__in=categories) for categories in groups]
    lists.append(base.exclude(category__in=list(affinities)))
    reads = [Rows(q.order_by(*_RECOMMENDED_ORDER).values(*PRODUCT_COLUMNS)[:limit]) for q in lists]
    rows: list[Row] = []
    if one_by_one:
        for read in reads:
            (found,) = yield more(read)
            rows += found[: limit - len(rows)]
            if len(rows) >= limit:
                break
        return rows
    for group_rows in (yield tuple(reads)):
        rows += group_rows[: limit - len(rows)]
    return rows


@planned
def products_new_arrivals(*, limit: int) -> Plan[Page]:
    """In-stock products, newest first."""
    queryset = Product.objects.in_stock().order_by("-created_at", "-pk")
    return (yield from _page(queryset, PRODUCT_COLUMNS, limit, IN_STOCK))


@planned
def stores_trending(
    *, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Plan[Page]:
    """Featured stores by rating and views, or the nearest ones to ``location``."""
    queryset: QuerySet = Store.objects.featured()
    if location:
        near = _nearest(queryset, location, radius_km)
        total = Total(f"featuredStores:{location_part(location)}", totals_tag(Store))
        page = yield from _page(near, (*STORE_COLUMNS, "distance_sq"), limit, total)
        return _with_distances(page)
    ordered = queryset.order_by("-rating", "-views", "pk")
    featured = Total("featuredStores", totals_tag(Store))
    return (yield from _page(ordered, STORE_COLUMNS, limit, featured))


@planned
def events_featured(
    *, now: datetime, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Plan[Page]:
    """Featured events yet to start: soonest first, or nearest to ``location``.

    An event leaves the set when it starts.
    """
    queryset: QuerySet = Event.objects.upcoming_featured(now)
    if location:
        near = _nearest(queryset, location, radius_km)
        total = Total(f"upcomingEvents:{location_part(location)}", totals_tag(Event), "starts_at")
        page = yield from _page(near, (*EVENT_COLUMNS, "distance_sq"), limit, total)
        return _with_distances(page)
    ordered = queryset.order_by("starts_at", "-views", "pk")
    upcoming = Total("upcomingEvents", totals_tag(Event), "starts_at")
    return (yield from _page(ordered, EVENT_COLUMNS, limit, upcoming))


@planned
def offers_featured(*, now: datetime, limit: int) -> Plan[Page]:
    """Featured offers still valid, newest first (an offer leaves when its validity ends)."""
    queryset = Offer.objects.featured_valid(now).order_by("-created_at", "-pk")
    total = Total("featuredOffers", totals_tag(Offer), "valid_until")
    return (yield from _offers(queryset, limit, total))


@planned
def offers_valid(*, now: datetime, limit: int) -> Plan[Page]:
    """Every offer still valid, newest first (``/offers`` without ``featured``)."""
    queryset = Offer.objects.valid(now).order_by("-created_at", "-pk")
    total = Total("validOffers", totals_tag(Offer), "valid_until")
    return (yield from _offers(queryset, limit, total))


@planned
def offers_flash_sales(*, now: datetime, limit: int) -> Plan[Page]:
    """Running flash sales, cheapest sale price first (one leaves when the sale or offer ends)."""
    queryset = Offer.objects.flash_sales(now).order_by("flash_sale_price", "valid_until", "pk")
    ends = Least("valid_until", "flash_sale_ends_at")
    total = Total("flashSales", totals_tag(Offer), ends)
    return (yield from _offers(queryset, limit, total))


# The offer's store in the same query, where a join is cheap (SQL).
_STORE_JOIN = {"store_name": F("store__name"), "store_logo": F("store__logo")}


def _offers(queryset: QuerySet, limit: int, total: Total) -> Plan[Page]:
    """Offer rows with their store's name and logo.

    On MongoDB a join is a ``$lookup`` run on every offer before the filter,
    so there the stores are read by a second query on their keys.
    """
    if not is_mongodb(queryset.db):
        return (yield from _page(queryset, OFFER_COLUMNS, limit, total, _STORE_JOIN))
    page = yield from _page(queryset, OFFER_COLUMNS, limit, total)
    ids = {row["store_id"] for row in page.rows}
    stores = (
        (yield (Rows(Store.objects.filter(pk__in=ids).values(*OFFER_STORE_COLUMNS)),))[0]
        if ids else []
    )  # fmt: skip
    with_stores(page.rows, stores)
    return page


def with_stores(rows: list[Row], found: list[Row]) -> list[Row]:
    """Each offer row with its store's name and logo, from the stores ``found`` for them."""
    stores = {store["id"]: store for store in found}
    for row in rows:
        store = stores.get(row["store_id"], {})
        row["store_name"], row["store_logo"] = store.get("name", ""), store.get("logo", "")
    return rows
