"""The homepage through the cache engine: invalidation, freshness, HTTP caching."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import time_machine
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from caching.tags import bump, read_generations
from homepage.models import Product
from homepage.sections import homepage_sections
from tests.servers import storefront_url
from tests.storefront import counting_queries, relational_only, storefront_connection
from tests.waiting import wait_until

from .factories import CategoryAffinityFactory, EventFactory, OfferFactory, ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/homepage"


@pytest.fixture
def fetch_counts(monkeypatch) -> Counter:
    """Count every section fetch (while still fetching for real)."""
    counts: Counter = Counter()
    for section in homepage_sections:

        def counting(ctx, _fetch=section.fetch, _id=section.id):
            counts[_id] += 1
            return _fetch(ctx)

        monkeypatch.setattr(section, "fetch", counting)
    return counts


def test_fifty_concurrent_requests_on_a_cold_key_compute_once(
    db, fetch_counts, monkeypatch, flight_followers, settings
):
    settings.REQUEST_TIMEOUT = 60_000  # followers outwait a slow machine
    settings.QUERY_TIMEOUT = 60_000
    ProductFactory.create_batch(3)
    fetch = homepage_sections["justForYou"].fetch
    release = threading.Event()

    def held(ctx):
        assert release.wait(60), "the test never let the section finish"
        return fetch(ctx)

    monkeypatch.setattr(homepage_sections["justForYou"], "fetch", held)
    statuses = []

    def request() -> None:
        statuses.append(Client().get(URL).status_code)

    threads = [threading.Thread(target=request) for _ in range(50)]
    for thread in threads:
        thread.start()
    try:
        # One request computes the page, held in a section until the 49 others wait for it.
        wait_until(
            lambda: flight_followers.count == 49,
            message="the requests did not all wait for one computation",
        )
    finally:
        release.set()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 50
    assert fetch_counts == Counter({s.id: 1 for s in homepage_sections})


EDIT_SCRIPT = (
    "from homepage.models import Product; "
    "p = Product.objects.get(pk='{pk}'); p.name = 'renamed elsewhere'; p.save()"
)


def _edit_in_another_process(pk: Any) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        **storefront_url(),
    }
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", EDIT_SCRIPT.format(pk=pk)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )


def test_a_write_in_another_process_is_seen_by_the_next_personal_read(user_client, user):
    product = ProductFactory(category="books")
    CategoryAffinityFactory(user=user, category="books")
    assert user_client.get(URL).json()["data"]["metadata"]["fromCache"] is False
    assert user_client.get(URL).json()["data"]["metadata"]["fromCache"] is True

    _edit_in_another_process(product.pk)

    body = user_client.get(URL).json()
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "renamed elsewhere"
    assert body["data"]["metadata"]["stale"] is False


def test_a_write_elsewhere_is_visible_to_the_very_next_request(api_client):
    product = ProductFactory()
    assert api_client.get(URL).json()["data"]["metadata"]["fromCache"] is False
    assert api_client.get(URL).json()["data"]["metadata"]["fromCache"] is True

    _edit_in_another_process(product.pk)

    first = api_client.get(URL)
    assert first["X-Cache"] == "MISS"
    assert first.json()["data"]["metadata"]["stale"] is False
    assert first.json()["data"]["sections"]["justForYou"]["items"][0]["name"] == "renamed elsewhere"


def test_a_full_miss_reuses_valid_sections(api_client, fetch_counts):
    ProductFactory()
    EventFactory()
    api_client.get(URL)
    assert sum(fetch_counts.values()) == 6
    EventFactory(title="new event")  # invalidates "events" only

    # Another variant (different full-response key) that shares the section entries.
    body = api_client.get(URL, {"includeAnalytics": "true", "fields": "events.items"}).json()
    assert fetch_counts["events"] == 2
    assert sum(fetch_counts.values()) == 7
    assert "new event" in str(body["data"]["sections"]["events"])


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


def test_an_admin_bulk_action_invalidates(client, staff_user, user_client, user):
    product = ProductFactory(featured=False, category="books", name="hidden gem")
    CategoryAffinityFactory(user=user, category="books")
    assert user_client.get(URL).json()["data"]["sections"]["justForYou"]["items"] == []

    client.force_login(staff_user)
    client.post(
        reverse("admin:homepage_product_changelist"),
        {"action": "make_featured", "_selected_action": [product.pk]},
    )
    items = user_client.get(URL).json()["data"]["sections"]["justForYou"]["items"]
    assert [i["name"] for i in items] == ["hidden gem"]


def test_an_offer_leaves_the_cache_when_it_expires(api_client):
    ends = timezone.now() + timedelta(seconds=60)
    OfferFactory(title="short offer", valid_until=ends)
    OfferFactory(title="long offer")
    first = api_client.get(URL, {"sections": "offers"}).json()
    assert "short offer" in str(first)
    assert api_client.get(URL, {"sections": "offers"}).json()["data"]["metadata"]["fromCache"]

    with time_machine.travel(ends + timedelta(seconds=1), tick=True):  # the offer has ended
        after = api_client.get(URL, {"sections": "offers"}).json()
    assert "short offer" not in str(after) and "long offer" in str(after)
    assert after["data"]["metadata"]["fromCache"] is False  # its entry ended with the offer


def test_etag_and_not_modified(api_client, fetch_counts):
    ProductFactory()
    response = api_client.get(URL)
    etag = response["ETag"]
    assert etag.startswith('W/"')
    not_modified = api_client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified["ETag"] == etag
    assert sum(fetch_counts.values()) == 6  # nothing recomputed
    assert api_client.get(URL, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200


def test_cache_headers(api_client, user_client):
    ProductFactory()
    public = api_client.get(URL)
    assert public["Cache-Control"] == (
        "public, max-age=0, s-maxage=60, stale-while-revalidate=120, stale-if-error=3600"
    )
    assert public["xkey"] == "events offers products stores"  # for the edge, by tag
    assert set(public["Vary"].split(", ")) >= {"Accept-Encoding", "Authorization", "Cookie"}
    assert public["X-Cache"] == "MISS" and api_client.get(URL)["X-Cache"] == "HIT"
    private = user_client.get(URL)
    assert private["Cache-Control"] == "private, no-cache"
    assert "xkey" not in private  # per-user content never names tags to a shared cache


def test_gzip_from_cached_segments_matches_the_plain_body(api_client):
    ProductFactory.create_batch(5)
    EventFactory.create_batch(3)
    plain = orjson.loads(api_client.get(URL).content)
    compressed = api_client.get(URL, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert compressed["Content-Encoding"] == "gzip"
    unpacked = orjson.loads(gzip.decompress(compressed.content))
    assert unpacked["data"]["sections"] == plain["data"]["sections"]
    assert unpacked["data"]["metadata"]["fromCache"] is True


def test_a_hit_runs_no_serializer(api_client, monkeypatch):
    ProductFactory()
    api_client.get(URL)

    def forbidden(*args, **kwargs):
        raise AssertionError("serialized on a cache hit")

    monkeypatch.setattr("aggregation.batch.assemble", forbidden)
    monkeypatch.setattr("rest_framework.serializers.Serializer.to_representation", forbidden)
    assert api_client.get(URL).status_code == 200


@relational_only("PostgreSQL away (MongoDB away: test_mongodb.py)")
def test_stale_if_error_while_the_database_is_down(api_client, database_outage):
    ProductFactory(name="kept")
    assert api_client.get(URL).status_code == 200

    database_outage(False)
    bump(["products", "stores", "events", "offers"])  # out of date; cannot be recomputed
    served = api_client.get(URL)
    fresh = api_client.get(URL, {"fresh": "true"})  # never an old copy: no fallback
    cold = api_client.get(URL, {"limit": 3})

    database_outage(True)
    recovered = wait_until(
        lambda: api_client.get(URL, {"fresh": "true"}).json()["data"]["metadata"]["stale"] is False
    )

    assert served.status_code == 200
    body = served.json()
    assert body["data"]["metadata"]["stale"] is True
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "kept"
    assert "errors" not in body
    assert fresh.status_code == 503
    assert cold.status_code == 503
    assert cold.json()["success"] is False
    assert {e["code"] for e in cold.json()["errors"]} == {"DB_CONNECTION_ERROR"}
    assert recovered


def test_stale_while_revalidate_can_be_switched_off(api_client, settings):
    settings.ENABLE_STALE_WHILE_REVALIDATE = False
    product = ProductFactory(name="first")
    api_client.get(URL)
    product.name = "second"
    product.save()
    body = api_client.get(URL).json()
    assert body["data"]["metadata"]["stale"] is False
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "second"


def test_an_ended_flash_sale_is_not_shown_as_active(api_client):
    ends = timezone.now() + timedelta(seconds=60)
    OfferFactory(title="sale", flash=True, flash_sale_ends_at=ends)
    during = api_client.get(URL, {"sections": "offers"}).json()
    assert during["data"]["sections"]["offers"]["items"][0]["metadata"]["flashSale"]["isActive"]
    with time_machine.travel(ends + timedelta(seconds=1), tick=True):
        after = api_client.get(URL, {"sections": "offers"}).json()
    item = after["data"]["sections"]["offers"]["items"][0]
    assert item["metadata"]["flashSale"]["isActive"] is False
    assert after["data"]["metadata"]["fromCache"] is False  # the cached copy ended with the sale


def test_a_write_that_moves_no_row_between_sets_keeps_the_shared_totals(api_client):
    products = ProductFactory.create_batch(12, featured=False, stock=5)
    ProductFactory.create_batch(12, featured=True, stock=5)

    counts: list[str] = []

    def new_arrivals() -> dict:
        with CaptureQueriesContext(storefront_connection()) as queries:  # on this thread
            section = api_client.get(URL, {"fresh": "true"}).json()["data"]["sections"]
        counts[:] = counting_queries(queries.captured_queries)
        return section["newArrivals"]

    assert new_arrivals()["total"] == 24
    assert counts  # counted the first time
    Product.objects.filter(pk=products[0].pk).update(name="Renamed", price=12)
    assert new_arrivals()["total"] == 24
    assert counts == []  # nothing joined or left a set: no recount

    Product.objects.filter(pk=products[0].pk).update(stock=0)  # leaves "in stock"
    assert new_arrivals()["total"] == 23
    assert any("products" in sql for sql in counts)

    product = Product.objects.get(pk=products[1].pk)
    product.name = "Saved whole"
    product.save()  # which fields changed is unknown: recounted
    assert new_arrivals()["total"] == 23
    assert any("products" in sql for sql in counts)
