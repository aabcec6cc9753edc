"""The legacy list endpoints serve exactly their homepage section's items."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from .factories import EventFactory, OfferFactory, ProductFactory, StoreFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


@pytest.fixture
def catalogue():
    ProductFactory.create_batch(4)
    ProductFactory(featured=False)
    StoreFactory.create_batch(3)
    EventFactory.create_batch(3)
    store = StoreFactory()
    OfferFactory.create_batch(2, store=store)
    OfferFactory(featured=False, store=store, title="plain offer")
    OfferFactory(store=store, valid_until=timezone.now() - timedelta(seconds=1), title="expired")


@pytest.mark.parametrize(
    ("url", "section", "params"),
    [
        ("/api/v1/products/featured", "justForYou", {}),
        ("/api/v1/products/new-arrivals", "newArrivals", {}),
        ("/api/v1/stores/featured", "trendingStores", {}),
        ("/api/v1/stores/featured", "trendingStores", {"location": "77.59,12.97"}),
        ("/api/v1/events/featured", "events", {}),
        ("/api/v1/events/featured", "events", {"location": "77.59,12.97"}),
        ("/api/v1/offers", "offers", {"featured": "true"}),
    ],
)
def test_legacy_endpoint_matches_its_section(api_client, catalogue, url, section, params):
    params = {**params, "limit": 3}
    legacy = api_client.get(url, params)
    batch = api_client.get("/api/v1/homepage", {**params, "sections": section}).json()

    assert legacy.status_code == 200
    body = legacy.json()
    assert body["success"] is True
    expected = batch["data"]["sections"][section]
    assert expected["items"]  # something to compare: the catalogue fills every section
    assert body["data"]["items"] == expected["items"]
    assert body["data"]["total"] == expected["total"]
    assert body["data"]["hasMore"] == expected["hasMore"]
    assert body["data"]["id"] == section


def test_offers_without_featured_lists_every_valid_offer(api_client, catalogue):
    body = api_client.get("/api/v1/offers").json()
    titles = [item["title"] for item in body["data"]["items"]]
    assert "plain offer" in titles and "expired" not in titles
    assert body["data"]["total"] == 3


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/products/featured", {"limit": 100}, "limit"),
        ("/api/v1/stores/featured", {"location": "x"}, "location"),
        ("/api/v1/offers", {"featured": "perhaps"}, "featured"),
    ],
)
def test_legacy_validation(api_client, db, url, params, field):
    response = api_client.get(url, params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_a_failing_legacy_section_is_an_error_envelope(api_client, db, monkeypatch):
    from homepage.sections import homepage_sections

    def boom(ctx):
        raise RuntimeError("hidden")

    monkeypatch.setattr(homepage_sections["newArrivals"], "fetch", boom)
    response = api_client.get("/api/v1/products/new-arrivals")
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "SECTION_FETCH_ERROR"
    assert "hidden" not in response.content.decode()
