"""Django admin for staff who curate the storefront."""

from __future__ import annotations

import pytest
from django.urls import reverse

from homepage.models import Offer, Product

from .factories import CategoryAffinityFactory, OfferFactory, ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.storefront]


@pytest.fixture
def admin_client_(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("model", ["product", "store", "event", "offer", "categoryaffinity"])
def test_changelists_render_with_filters_and_search(admin_client_, model):
    url = reverse(f"admin:homepage_{model}_changelist")
    assert admin_client_.get(url, {"q": "x"}).status_code == 200


def test_bulk_feature_and_unfeature(admin_client_):
    products = ProductFactory.create_batch(3, featured=False)
    url = reverse("admin:homepage_product_changelist")
    ids = [p.pk for p in products]

    admin_client_.post(url, {"action": "make_featured", "_selected_action": ids})
    assert Product.objects.filter(pk__in=ids, featured=True).count() == 3

    admin_client_.post(url, {"action": "make_unfeatured", "_selected_action": ids[:2]})
    assert list(Product.objects.filter(featured=True).values_list("pk", flat=True)) == ids[2:]


def test_start_and_stop_flash_sale(admin_client_):
    offer = OfferFactory()
    url = reverse("admin:homepage_offer_changelist")

    admin_client_.post(url, {"action": "start_flash_sale", "_selected_action": [offer.pk]})
    offer.refresh_from_db()
    assert offer.flash_sale_active
    assert offer.flash_sale_price == offer.discounted_price * 8 / 10
    assert offer.flash_sale_ends_at <= offer.valid_until

    admin_client_.post(url, {"action": "stop_flash_sale", "_selected_action": [offer.pk]})
    assert not Offer.objects.get(pk=offer.pk).flash_sale_active


def test_featured_is_editable_in_the_list(admin_client_):
    ProductFactory()
    html = admin_client_.get(reverse("admin:homepage_product_changelist")).content.decode()
    assert 'name="form-0-featured"' in html


def test_non_staff_cannot_use_the_admin(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:homepage_product_changelist"))
    assert response.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_bulk_feature_is_on_the_very_next_homepage_request(admin_client_, api_client):
    ProductFactory(name="already featured", featured=True, views=10)
    product = ProductFactory(name="staff pick", featured=False, views=1_000)
    before = api_client.get("/api/v1/homepage")
    assert "staff pick" not in str(before.json()["data"]["sections"]["justForYou"])
    admin_client_.post(
        reverse("admin:homepage_product_changelist"),
        {"action": "make_featured", "_selected_action": [product.pk]},
    )
    after = api_client.get("/api/v1/homepage")
    assert after["X-Cache"] != "STALE" and after.json()["data"]["metadata"]["stale"] is False
    assert after.json()["data"]["sections"]["justForYou"]["items"][0]["name"] == "staff pick"


@pytest.mark.django_db(transaction=True)
def test_an_admin_bulk_action_invalidates(client, staff_user, user_client, user):
    product = ProductFactory(featured=False, category="books", name="hidden gem")
    CategoryAffinityFactory(user=user, category="books")
    assert (
        user_client.get("/api/v1/homepage").json()["data"]["sections"]["justForYou"]["items"] == []
    )

    client.force_login(staff_user)
    client.post(
        reverse("admin:homepage_product_changelist"),
        {"action": "make_featured", "_selected_action": [product.pk]},
    )
    items = user_client.get("/api/v1/homepage").json()["data"]["sections"]["justForYou"]["items"]
    assert [i["name"] for i in items] == ["hidden gem"]
