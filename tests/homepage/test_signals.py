"""Invalidation on write (``homepage/signals.py``, bulk writes by the models' querysets)."""

from __future__ import annotations

import pytest
from django.db.models import F

from caching.tags import read_generations
from homepage.models import CategoryAffinity, Product
from tests.factories import UserFactory

from .factories import CategoryAffinityFactory, ProductFactory

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


def test_a_bulk_update_of_affinities_invalidates_their_users_homepage(db):
    affinity = CategoryAffinityFactory(user=UserFactory(), score=0.5)
    tag = f"user:{affinity.user_id}"
    before = read_generations([tag])[0][tag]
    CategoryAffinity.objects.filter(user_id=affinity.user_id).update(score=0.9)
    assert read_generations([tag])[0][tag] != before
