"""Flat item builders match the item serializers; totals are shared and end on time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from homepage import items, selectors
from homepage.models import Event, Offer, Product, Store
from homepage.serializers import (
    EventItemSerializer,
    OfferItemSerializer,
    ProductItemSerializer,
    StoreItemSerializer,
)
from tests.storefront import counting_queries, storefront_connection

from .factories import EventFactory, OfferFactory, ProductFactory, StoreFactory

pytestmark = [pytest.mark.django_db, pytest.mark.storefront]


@pytest.mark.parametrize(
    ("model", "factory", "columns", "build", "serializer"),
    [
        (Product, ProductFactory, items.PRODUCT_COLUMNS, items.product_item, ProductItemSerializer),
        (Store, StoreFactory, items.STORE_COLUMNS, items.store_item, StoreItemSerializer),
        (Event, EventFactory, items.EVENT_COLUMNS, items.event_item, EventItemSerializer),
    ],
)
def test_item_builders_match_the_serializers(model, factory, columns, build, serializer):
    factory.create_batch(2)
    factory(**({"original_price": None} if model is Product else {}))
    rows = list(model.objects.order_by("pk").values(*columns))
    assert [build(r) for r in rows] == serializer(model.objects.order_by("pk"), many=True).data


def test_offer_builder_matches_the_serializer_during_and_after_a_sale():
    now = timezone.now()
    OfferFactory(flash=True)
    OfferFactory(flash=True, flash_sale_ends_at=now - timedelta(minutes=1))
    OfferFactory()
    rows = selectors.with_stores(list(Offer.objects.order_by("pk").values(*items.OFFER_COLUMNS)))
    expected = OfferItemSerializer(
        Offer.objects.order_by("pk").select_related("store"), many=True, context={"now": now}
    ).data
    assert [items.offer_item(r, now) for r in rows] == expected  # stores read by key
    # The section's own rows (a join on SQL, stores by key on MongoDB), in its order.
    by_id = {item["id"]: item for item in expected}
    section = [items.offer_item(r, now) for r in selectors.offers_valid(now=now, limit=10).rows]
    assert len(section) == 3
    assert section == [by_id[item["id"]] for item in section]


def test_has_more_is_exact_and_the_total_is_counted_once():
    StoreFactory.create_batch(4)
    page = selectors.stores_trending(limit=4)
    assert (len(page.rows), page.total, page.has_more) == (4, 4, False)  # read limit + 1
    StoreFactory()
    page = selectors.stores_trending(limit=4)
    assert (page.total, page.has_more) == (5, True)
    with CaptureQueriesContext(storefront_connection()) as queries:
        selectors.stores_trending(limit=4)
    assert queries.captured_queries  # the rows were read
    assert not counting_queries(queries.captured_queries)


def test_a_total_ends_when_the_next_item_leaves_its_set():
    now = timezone.now()
    EventFactory(starts_at=now + timedelta(minutes=5))
    EventFactory.create_batch(2, starts_at=now + timedelta(days=2))
    assert selectors.events_featured(now=now, limit=1).total == 3
    later = now + timedelta(minutes=6)
    with time_machine.travel(later, tick=False):
        assert selectors.events_featured(now=later, limit=1).total == 2  # one has started
