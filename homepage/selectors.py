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
from aggregation.shapes import Query, Shape, derive
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
from .storage import on_mongodb

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

    def request(self, queryset: Query) -> SharedTotal:
        """The shared ``COUNT(*)`` of ``queryset`` under this total's key and tag."""
        return SharedTotal(
            count_cache_key(self.name), (self.tag,), COUNT_NAMESPACE, queryset, self.exit
        )


def _page(
    queryset: Query,
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
    page = Rows(_values(queryset, columns, limit + 1, joined))
    if on_mongodb():
        (rows,) = yield more(page)
        if len(rows) <= limit:
            return Page(rows, len(rows), False)
        ((count, until),) = yield (total.request(queryset),)
        return Page(rows[:limit], count, True, until)
    rows, (count, until) = yield (page, total.request(queryset))
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
    return Page(rows[:limit], count, True, until)


def _values(
    queryset: Query, columns: tuple[str, ...], limit: int, joined: dict[str, Any] | None = None
) -> Query:
    """The first ``limit`` rows of ``queryset`` as ``columns`` (and ``joined`` expressions)."""
    joined = joined or {}
    key = ("values", columns, limit, tuple(sorted(joined.items())))
    return derive(queryset, key, lambda q: q.values(*columns, **joined)[:limit])


def _ordered(queryset: Query, order: tuple[str, ...]) -> Query:
    return derive(queryset, ("order_by", order), lambda q: q.order_by(*order))


def _nearest(
    queryset: QuerySet,
    *,
    origin: tuple[float, float, float],
    box: tuple[float, float, float, float],
    reach_sq: float,
) -> QuerySet:
    """Rows in ``box`` no further than ``sqrt(reach_sq)`` from ``origin``, nearest first.

    An equirectangular approximation, exact enough at city scale and plain
    arithmetic in SQL, so it runs on PostgreSQL and SQLite alike; the bounding
    box lets the (latitude, longitude) index narrow the rows first. Distances
    are in degrees of latitude; ``origin`` is (latitude, longitude, a degree of
    longitude in degrees of latitude there); ``box`` is (south, north, west,
    east). Every number arrives worked out, so the SQL's shape is the same for
    every location (``_near``).
    """
    lat, lng, scale = origin
    d_lat = F("latitude") - Value(lat)
    d_lng = (F("longitude") - Value(lng)) * Value(scale)
    return (
        queryset.filter(latitude__range=(box[0], box[1]), longitude__range=(box[2], box[3]))
        .annotate(distance_sq=d_lat * d_lat + d_lng * d_lng)
        .filter(distance_sq__lte=reach_sq)
        .order_by("distance_sq", "pk")
    )


def _near(shape: Shape, location: Location, radius_km: float, **arguments: Any) -> Query:
    """``shape`` (one built by ``_nearest``) bound to within ``radius_km`` of ``location``."""
    lng, lat = location
    lat_span = radius_km / KM_PER_DEGREE
    scale = max(math.cos(math.radians(lat)), 1e-6)
    lng_span = lat_span / scale
    return shape(
        origin=(lat, lng, scale),
        box=(lat - lat_span, lat + lat_span, lng - lng_span, lng + lng_span),
        reach_sq=lat_span * lat_span,
        **arguments,
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

# Every list's queryset as a shape (aggregation/shapes.py): built and compiled
# once per structure, its values (now, a user, a location) bound on each use.
_AFFINITIES = Shape(_affinities, binds=("user_id",))
_FEATURED_PRODUCTS = Shape(lambda: Product.objects.featured_in_stock())
_IN_CATEGORIES = Shape(
    lambda categories: Product.objects.featured_in_stock().filter(category__in=categories),
    binds=("categories",),
)
_OTHER_CATEGORIES = Shape(
    lambda categories: Product.objects.featured_in_stock().exclude(category__in=categories),
    binds=("categories",),
)
_NEW_ARRIVALS = Shape(lambda: Product.objects.in_stock().order_by("-created_at", "-pk"))
_FEATURED_STORES = Shape(lambda: Store.objects.featured().order_by("-rating", "-views", "pk"))
_NEAREST_STORES = Shape(
    lambda origin, box, reach_sq: _nearest(
        Store.objects.featured(), origin=origin, box=box, reach_sq=reach_sq
    ),
    binds=("origin", "box", "reach_sq"),
)
_UPCOMING_EVENTS = Shape(
    lambda now: Event.objects.upcoming_featured(now).order_by("starts_at", "-views", "pk"),
    binds=("now",),
)
_NEAREST_EVENTS = Shape(
    lambda now, origin, box, reach_sq: _nearest(
        Event.objects.upcoming_featured(now), origin=origin, box=box, reach_sq=reach_sq
    ),
    binds=("now", "origin", "box", "reach_sq"),
)
_FEATURED_OFFERS = Shape(
    lambda now: Offer.objects.featured_valid(now).order_by("-created_at", "-pk"), binds=("now",)
)
_VALID_OFFERS = Shape(
    lambda now: Offer.objects.valid(now).order_by("-created_at", "-pk"), binds=("now",)
)
_FLASH_SALES = Shape(
    lambda now: Offer.objects.flash_sales(now).order_by("flash_sale_price", "valid_until", "pk"),
    binds=("now",),
)


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
    base = _FEATURED_PRODUCTS()
    popular = _ordered(base, _POPULAR_ORDER)
    if not user_id:
        return (yield from _page(popular, PRODUCT_COLUMNS, limit, FEATURED_IN_STOCK))
    # On MongoDB each query is a round trip of its own: the total only when needed.
    one_by_one = on_mongodb()
    total = FEATURED_IN_STOCK.request(base)
    affinities_read = Rows(_AFFINITIES(user_id=user_id))
    found, *counted = yield more(affinities_read, *(() if one_by_one else (total,)))
    affinities = dict(found)
    if not affinities:
        read = Rows(_values(popular, PRODUCT_COLUMNS, limit + 1))
        (rows,) = yield (more(read) if one_by_one else (read,))
    else:
        rows = yield from _top_by_affinity(affinities, limit + 1, one_by_one=one_by_one)
    if len(rows) <= limit:
        return Page(rows, len(rows), False)
    if not counted:
        counted = yield (total,)
    count, until = counted[0]
    return Page(rows[:limit], count, True, until)


def _top_by_affinity(
    affinities: dict[str, float], limit: int, *, one_by_one: bool = False
) -> Plan[list[Row]]:
    """The best ``limit`` featured products, the user's categories first, strongest first.

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
    groups = [tuple(category for category, _ in group)
              for _, group in groupby(by_strength, key=lambda item: item[1])]  # fmt: skip
    lists = [_IN_CATEGORIES(categories=categories) for categories in groups]
    lists.append(_OTHER_CATEGORIES(categories=tuple(affinities)))
    reads = [Rows(_values(_ordered(q, _RECOMMENDED_ORDER), PRODUCT_COLUMNS, limit)) for q in lists]
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
    return (yield from _page(_NEW_ARRIVALS(), PRODUCT_COLUMNS, limit, IN_STOCK))


@planned
def stores_trending(
    *, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Plan[Page]:
    """Featured stores by rating and views, or the nearest ones to ``location``."""
    if location:
        near = _near(_NEAREST_STORES, location, radius_km)
        total = Total(f"featuredStores:{location_part(location)}", totals_tag(Store))
        page = yield from _page(near, (*STORE_COLUMNS, "distance_sq"), limit, total)
        return _with_distances(page)
    featured = Total("featuredStores", totals_tag(Store))
    return (yield from _page(_FEATURED_STORES(), STORE_COLUMNS, limit, featured))


@planned
def events_featured(
    *, now: datetime, limit: int, location: Location | None = None, radius_km: float = 50.0
) -> Plan[Page]:
    """Featured events yet to start: soonest first, or nearest to ``location``.

    An event leaves the set when it starts.
    """
    if location:
        near = _near(_NEAREST_EVENTS, location, radius_km, now=now)
        total = Total(f"upcomingEvents:{location_part(location)}", totals_tag(Event), "starts_at")
        page = yield from _page(near, (*EVENT_COLUMNS, "distance_sq"), limit, total)
        return _with_distances(page)
    upcoming = Total("upcomingEvents", totals_tag(Event), "starts_at")
    return (yield from _page(_UPCOMING_EVENTS(now=now), EVENT_COLUMNS, limit, upcoming))


_FEATURED_OFFERS_TOTAL = Total("featuredOffers", totals_tag(Offer), "valid_until")
_VALID_OFFERS_TOTAL = Total("validOffers", totals_tag(Offer), "valid_until")
_FLASH_SALES_TOTAL = Total(
    "flashSales", totals_tag(Offer), Least("valid_until", "flash_sale_ends_at")
)


@planned
def offers_featured(*, now: datetime, limit: int) -> Plan[Page]:
    """Featured offers still valid, newest first (an offer leaves when its validity ends)."""
    return (yield from _offers(_FEATURED_OFFERS(now=now), limit, _FEATURED_OFFERS_TOTAL))


@planned
def offers_valid(*, now: datetime, limit: int) -> Plan[Page]:
    """Every offer still valid, newest first (``/offers`` without ``featured``)."""
    return (yield from _offers(_VALID_OFFERS(now=now), limit, _VALID_OFFERS_TOTAL))


@planned
def offers_flash_sales(*, now: datetime, limit: int) -> Plan[Page]:
    """Running flash sales, cheapest sale price first (one leaves when the sale or offer ends)."""
    return (yield from _offers(_FLASH_SALES(now=now), limit, _FLASH_SALES_TOTAL))


# The offer's store in the same query, where a join is cheap (SQL).
_STORE_JOIN = {"store_name": F("store__name"), "store_logo": F("store__logo")}


def _offers(queryset: Query, limit: int, total: Total) -> Plan[Page]:
    """Offer rows with their store's name and logo.

    On MongoDB a join is a ``$lookup`` run on every offer before the filter,
    so there the stores are read by a second query on their keys.
    """
    if not on_mongodb():
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
