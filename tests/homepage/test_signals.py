"""Invalidation on write (``homepage/signals.py``, bulk writes by the models' querysets)."""

from __future__ import annotations

import pytest
from django.db.models import F

from caching.tags import read_generations
from homepage.models import Product

from .factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


def test_view_counter_updates_do_not_invalidate(db):
    product = ProductFactory()
    before, _ = read_generations(["products"])
    Product.objects.filter(pk=product.pk).update(views=F("views") + 1)
    product.views += 1
    product.save(update_fields=["views"])
    assert read_generations(["products"])[0] == before
    product.name = "changed"
    product.save(update_fields=["name"])
    assert read_generations(["products"])[0] != before


def test_bulk_writes_invalidate_once(db):
    before, _ = read_generations(["products", "offers"])
    Product.objects.bulk_create([Product(name=f"p{i}", price=1, category="c") for i in range(5)])
    middle, _ = read_generations(["products", "offers"])
    assert middle["products"] != before["products"]
    assert middle["offers"] == before["offers"]
    Product.objects.all().update(featured=False)  # five rows, one bump
    assert read_generations(["products"])[0]["products"] == middle["products"] + 1
