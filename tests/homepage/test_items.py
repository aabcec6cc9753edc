"""Flat item builders (``homepage/items.py``) match the item serializers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from homepage import items, selectors
from homepage.models import Event, Offer, Product, Store
from homepage.serializers import (
    EventItemSerializer,
    OfferItemSerializer,
    ProductItemSerializer,
    StoreItemSerializer,
)

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
    stores = list(Store.objects.values(*items.OFFER_STORE_COLUMNS))
    rows = selectors.with_stores(
        list(Offer.objects.order_by("pk").values(*items.OFFER_COLUMNS)), stores
    )
    expected = OfferItemSerializer(
        Offer.objects.order_by("pk").select_related("store"), many=True, context={"now": now}
    ).data
    assert [items.offer_item(r, now) for r in rows] == expected  # stores read by key
    # The section's own rows (a join on SQL, stores by key on MongoDB), in its order.
    by_id = {item["id"]: item for item in expected}
    section = [items.offer_item(r, now) for r in selectors.offers_valid(now=now, limit=10).rows]
    assert len(section) == 3
    assert section == [by_id[item["id"]] for item in section]
