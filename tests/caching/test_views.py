"""The staff-only cache dashboard in the admin (``caching/views.py``)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from prometheus_client import REGISTRY

from caching.tags import read_generations
from tests.homepage.factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


@pytest.fixture
def staff_browser(client, staff_user):
    client.force_login(staff_user)
    return client


def test_dashboard_shows_hit_rate_generations_and_warm_times(staff_browser, api_client):
    ProductFactory()
    api_client.get("/api/v1/homepage")
    api_client.get("/api/v1/homepage")
    html = staff_browser.get(reverse("cache-dashboard")).content.decode()
    assert 'id="cache-stats"' in html and "<td>homepage</td>" in html
    assert "50%" in html  # one miss, one hit
    assert "<td>products</td>" in html
    assert "homepage:anonymous" in html
    assert "Cache dashboard" in staff_browser.get("/admin/").content.decode()


def test_dashboard_invalidates_a_tag(staff_browser):
    before, _ = read_generations(["user:7"])
    response = staff_browser.post(reverse("cache-dashboard"), {"tag": "user:7"})
    assert response.status_code == 302
    assert read_generations(["user:7"])[0] != before
    page = staff_browser.get(reverse("cache-dashboard"), {"tag": "user:7"}).content.decode()
    assert "<td>user:7</td>" in page


def test_dashboard_rejects_bad_tags(staff_browser):
    response = staff_browser.post(reverse("cache-dashboard"), {"tag": "* bad"}, follow=True)
    assert "A tag looks like" in response.content.decode()


def test_dashboard_is_staff_only(client, user, api_client):
    assert client.get(reverse("cache-dashboard")).status_code == 302
    client.force_login(user)
    assert client.get(reverse("cache-dashboard")).status_code == 302
    assert client.post(reverse("cache-dashboard"), {"tag": "products"}).status_code == 302


def test_edge_purge_failures_are_counted_shown_and_reported(staff_browser, settings):
    from caching.tags import bump
    from tests.servers import free_port

    def count(outcome: str) -> float:
        value = REGISTRY.get_sample_value("aggregation_edge_purges_total", {"outcome": outcome})
        return value or 0.0

    page = staff_browser.get(reverse("cache-dashboard")).content.decode()
    assert "No edge cache is purged" in page
    assert "edge" not in staff_browser.get("/health/ready", HTTP_ACCEPT="application/json").json()

    settings.EDGE_PURGE_URLS = [f"http://127.0.0.1:{free_port()}/"]  # nothing listens
    settings.EDGE_PURGE_SECRET = "s"
    failed, abandoned = count("failed"), count("abandoned")
    bump(["products"])
    assert count("failed") == failed + 1
    assert count("abandoned") == abandoned + 1  # no worker to retry it (eager mode)

    page = staff_browser.get(reverse("cache-dashboard")).content.decode()
    assert 'id="edge-purges"' in page and "failing" in page
    ready = staff_browser.get("/health/ready", HTTP_ACCEPT="application/json")
    assert ready.status_code == 200  # reported, not failing: the service can serve
    assert ready.json()["edge"].startswith("purges failing")
