"""The legacy endpoints' way out: counted always, deprecated by a switch."""

from __future__ import annotations

import datetime

import pytest
import yaml
from django.urls import reverse
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from tests.homepage.factories import ProductFactory
from tests.trainers.factories import TrainerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
LEGACY = "/api/v1/products/featured"


def _calls(endpoint: str, client: str) -> float:
    value = REGISTRY.get_sample_value(
        "aggregation_legacy_calls_total", {"endpoint": endpoint, "client": client}
    )
    return value or 0.0


def test_no_deprecation_headers_until_switched_on(api_client):
    ProductFactory()
    response = api_client.get(LEGACY)
    assert response.status_code == 200
    assert not {"Deprecation", "Sunset", "Link"} & set(response.headers)


def test_switched_on_the_legacy_endpoints_say_so_and_name_their_successor(
    api_client, client_for, settings
):
    settings.LEGACY_DEPRECATED_SINCE = datetime.date(2026, 12, 1)
    ProductFactory()
    response = api_client.get(LEGACY)
    assert response.status_code == 200  # still served
    assert response["Deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z (RFC 9745)
    assert response["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"  # 90 days later (RFC 8594)
    assert response["Link"] == '</api/v1/homepage?sections=justForYou>; rel="successor-version"'
    offers = api_client.get("/api/v1/offers?featured=true")
    assert offers["Link"] == '</api/v1/homepage?sections=offers>; rel="successor-version"'

    settings.LEGACY_SUNSET = datetime.date(2027, 6, 30)
    assert api_client.get(LEGACY)["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"

    trainer = TrainerFactory()
    client = client_for(trainer.user)
    section = client.get(f"/api/v1/trainers/{trainer.pk}/overview")
    assert section.status_code == 200
    assert section["Link"] == f'</api/v1/trainers/{trainer.pk}/bootstrap>; rel="successor-version"'
    bootstrap = client.get(f"/api/v1/trainers/{trainer.pk}/bootstrap")
    assert "Deprecation" not in bootstrap and "Deprecation" not in api_client.get(
        "/api/v1/homepage"
    )


def test_the_schema_marks_exactly_the_legacy_operations_deprecated(api_client, settings):
    def deprecated() -> set[str]:
        schema = yaml.safe_load(api_client.get(reverse("schema")).content)
        return {
            operation["operationId"]
            for item in schema["paths"].values()
            for operation in item.values()
            if isinstance(operation, dict) and operation.get("deprecated")
        }

    assert deprecated() == set()
    settings.LEGACY_DEPRECATED_SINCE = datetime.date(2026, 12, 1)
    assert deprecated() == {
        "FeaturedProducts", "NewArrivals", "FeaturedStores", "FeaturedEvents", "Offers",
        "v1_trainers_overview_retrieve", "v1_trainers_sessions_retrieve",
        "v1_trainers_allocations_retrieve", "v1_trainers_payout_claims_retrieve",
        "v1_students_overview_retrieve", "v1_students_sessions_retrieve",
        "v1_students_allocations_retrieve", "v1_students_courses_retrieve",
    }  # fmt: skip


def test_calls_are_counted_per_endpoint_and_client_with_the_last_time(
    api_client, user_client, user, staff_user, client
):
    ProductFactory()
    before = _calls("products-featured", "client:ios-4.2")
    for _ in range(2):
        APIClient(HTTP_X_CLIENT="ios-4.2").get(LEGACY)
    api_client.get(LEGACY)
    user_client.get(LEGACY)
    APIClient(HTTP_X_CLIENT="<script>").get(LEGACY)  # not a sane client name: anonymous
    assert _calls("products-featured", "client:ios-4.2") == before + 2
    assert _calls("products-featured", f"user:{user.pk}") >= 1

    client.force_login(staff_user)
    page = client.get(reverse("cache-dashboard")).content.decode()
    assert 'id="legacy-calls"' in page
    rows = page.split('id="legacy-calls"')[1]
    assert "client:ios-4.2</td><td>2</td>" in rows
    assert "anonymous</td><td>2</td>" in rows
    assert f"user:{user.pk}</td><td>1</td>" in rows
    assert "Not deprecated" in page
