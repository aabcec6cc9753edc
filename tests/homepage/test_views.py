"""The homepage endpoints (``homepage/views.py``) end to end.

``GET /api/v1/homepage``: sections, failures, cache, parameters, access; through
the cache engine (invalidation, freshness, HTTP caching); cache hits answered
before DRF's request cycle. Then the legacy list endpoints.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import time_machine
from django.db import connection
from django.db.models import Func, Value
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from aggregation.plans import Rows, planned
from aggregation.sections import SectionPayload
from caching import metrics
from caching.tags import bump
from homepage.models import Product
from homepage.sections import homepage_sections
from tests.decoding import decoded
from tests.servers import storefront_url
from tests.storefront import (
    counting_queries,
    pk_order,
    relational_only,
    storefront_connection,
    write_behind_the_orm,
)
from tests.waiting import wait_until

from .factories import (
    CategoryAffinityFactory,
    EventFactory,
    OfferFactory,
    ProductFactory,
    StoreFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/homepage"
ALL_SECTIONS = ["justForYou", "newArrivals", "trendingStores", "events", "offers", "flashSales"]


@pytest.fixture
def catalogue():
    """A little of everything, plus rows every section must leave out."""
    now = timezone.now()
    products = ProductFactory.create_batch(3)
    ProductFactory(stock=0, name="sold out")
    ProductFactory(is_active=False, name="delisted")
    ProductFactory(featured=False, name="not featured")
    stores = StoreFactory.create_batch(2)
    StoreFactory(featured=False, name="plain store")
    events = EventFactory.create_batch(2)
    EventFactory(starts_at=now - timedelta(hours=1), title="past event")
    offers = OfferFactory.create_batch(2, store=stores[0])
    OfferFactory(valid_until=now - timedelta(minutes=1), title="expired offer", store=stores[0])
    flash = OfferFactory(flash=True, featured=False, store=stores[1])
    return {
        "products": products,
        "stores": stores,
        "events": events,
        "offers": offers,
        "flash": flash,
    }


def _ids(section: dict) -> list[str]:
    return [item["id"] for item in section["items"]]


def test_all_sections_succeed(api_client, catalogue):
    response = api_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["version"] == "1.0.0"
    assert "errors" not in body
    sections = body["data"]["sections"]
    assert list(sections) == ALL_SECTIONS
    for section_id, section in sections.items():
        assert section["id"] == section_id
        assert set(section) == {"id", "title", "type", "items", "total", "hasMore", "lastUpdated"}
    assert sections["justForYou"]["type"] == "recommendations"
    assert sorted(_ids(sections["justForYou"])) == sorted(str(p.pk) for p in catalogue["products"])
    assert sections["justForYou"]["total"] == 3
    assert sections["justForYou"]["hasMore"] is False
    assert _ids(sections["trendingStores"]) and "plain store" not in str(sections["trendingStores"])
    assert "past event" not in str(sections["events"])
    assert "expired offer" not in str(sections["offers"])
    assert _ids(sections["flashSales"]) == [str(catalogue["flash"].pk)]
    assert sections["flashSales"]["items"][0]["metadata"]["flashSale"]["salePrice"] == 50.0
    metadata = body["data"]["metadata"]
    assert metadata["cacheKey"] == "homepage:anonymous:v1"
    assert metadata["fromCache"] is False
    assert metadata["partialFailure"] is False
    assert "userId" not in metadata  # declared optional: absent when anonymous
    assert metadata["ttl"] > 0
    assert isinstance(metadata["executionTime"], float)
    assert "analytics" not in body["data"]


def test_item_shapes(api_client, catalogue):
    sections = api_client.get(URL).json()["data"]["sections"]
    product = sections["justForYou"]["items"][0]
    assert set(product) == {
        "id",
        "name",
        "brand",
        "image",
        "price",
        "originalPrice",
        "currency",
        "category",
        "rating",
        "cashback",
        "inventory",
        "createdAt",
    }
    assert product["inventory"] == {"stock": 10}
    store = sections["trendingStores"]["items"][0]
    assert store["location"]["coordinates"] == [77.5946, 12.9716]
    assert store["distance"] is None
    event = sections["events"]["items"][0]
    assert {"date", "time", "location", "organizer"} <= set(event)
    offer = sections["offers"]["items"][0]
    assert offer["store"]["id"] == str(catalogue["stores"][0].pk)
    assert offer["metadata"] == {"flashSale": None}


def test_limit_and_has_more(api_client, db):
    ProductFactory.create_batch(5)
    section = api_client.get(URL, {"limit": 2, "sections": "justForYou"}).json()["data"][
        "sections"
    ]["justForYou"]
    assert len(section["items"]) == 2
    assert section["total"] == 5
    assert section["hasMore"] is True


def test_empty_results(api_client, db):
    body = api_client.get(URL).json()
    assert body["success"] is True
    sections = body["data"]["sections"]
    assert list(sections) == ALL_SECTIONS  # every section is there, empty
    for section in sections.values():
        assert section["items"] == [] and section["total"] == 0 and section["hasMore"] is False


def test_analytics_on_request(api_client, catalogue):
    body = api_client.get(URL, {"includeAnalytics": "true"}).json()
    analytics = body["data"]["analytics"]
    assert analytics["sectionViews"]["justForYou"] == 300  # three products, 100 views each
    assert analytics["recommendationScore"] == 0.5


# --- failures --------------------------------------------------------------------


def test_a_failing_section_gives_a_partial_response(
    api_client, catalogue, monkeypatch, patch_section
):
    def boom(ctx):
        raise RuntimeError("SELECT secret FROM internals")

    patch_section(homepage_sections["offers"], boom)
    response = api_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["metadata"]["partialFailure"] is True
    offers = body["data"]["sections"]["offers"]
    assert offers["items"] == [] and offers["error"] is True and offers["total"] == 0
    assert body["errors"] == [
        {"section": "offers", "code": "SECTION_FETCH_ERROR", "message": "Failed to fetch offers"}
    ]
    assert "secret" not in response.content.decode()
    assert len(body["data"]["sections"]["justForYou"]["items"]) == 3


def test_in_the_pool_a_hanging_section_times_out_within_the_budget(
    api_client, catalogue, monkeypatch, settings
):
    # Only the pool's waiter can give up on a section stuck in Python; on the
    # request thread the database's statement timeout is the bound (next test).
    settings.SECTIONS_IN_PARALLEL = True
    settings.QUERY_TIMEOUT = 300
    settings.REQUEST_TIMEOUT = 1_000
    release = threading.Event()

    def hang(ctx):
        release.wait(10)
        return SectionPayload(items=[], total=0)

    monkeypatch.setattr(homepage_sections["events"], "fetch", hang)
    started = time.monotonic()
    try:
        response = api_client.get(URL)
    finally:
        release.set()
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < settings.REQUEST_TIMEOUT / 1000
    body = response.json()
    assert body["errors"][0]["section"] == "events"
    assert body["errors"][0]["code"] == "TIMEOUT_ERROR"
    assert body["data"]["sections"]["events"]["error"] is True
    assert body["data"]["sections"]["justForYou"]["total"] == 3


@relational_only(
    "PostgreSQL's statement_timeout (MongoDB's maxTimeMS: aggregation/test_mongodb.py)"
)
def test_a_slow_query_is_stopped_by_the_database(api_client, catalogue, monkeypatch, settings):
    settings.QUERY_TIMEOUT = 300

    @planned
    def slow(ctx):
        sleeping = Product.objects.annotate(slept=Func(Value(20), function="pg_sleep"))
        yield (Rows(sleeping.values("slept")[:1]),)
        return SectionPayload(items=[], total=0)

    monkeypatch.setattr(homepage_sections["newArrivals"], "fetch", slow)
    monkeypatch.setattr(homepage_sections["newArrivals"], "plan", slow.plan)
    started = time.monotonic()
    body = api_client.get(URL).json()
    assert time.monotonic() - started < 20  # stopped long before the sleep's end
    assert body["data"]["sections"]["justForYou"]["total"] == 3  # the others were served
    assert body["errors"] == [
        {
            "section": "newArrivals",
            "code": "TIMEOUT_ERROR",
            "message": "Timed out fetching new arrivals",
        }
    ]


def test_all_sections_failing_is_a_500_in_the_envelope(api_client, db, monkeypatch, patch_section):
    def boom(ctx):
        raise RuntimeError("down")

    for section in homepage_sections:
        patch_section(section, boom)
    response = api_client.get(URL)

    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert body["message"]
    assert {e["section"] for e in body["errors"]} == set(ALL_SECTIONS)
    # Nothing was cached: the next request computes again.
    assert api_client.get(URL).json()["data"]["metadata"]["fromCache"] is False


def test_a_partial_response_is_cached_only_briefly(
    api_client, catalogue, monkeypatch, settings, patch_section
):
    patch_section(homepage_sections["offers"], lambda ctx: 1 / 0)
    metadata = api_client.get(URL).json()["data"]["metadata"]
    assert metadata["ttl"] == settings.CACHE_PARTIAL_TTL_S < settings.CACHE_TTL


# --- cache -------------------------------------------------------------------------


def test_cache_miss_then_hit(api_client, catalogue):
    first = api_client.get(URL).json()
    second = api_client.get(URL).json()
    assert first["data"]["metadata"]["fromCache"] is False
    assert second["data"]["metadata"]["fromCache"] is True
    assert second["data"]["sections"] == first["data"]["sections"]
    assert second["data"]["metadata"]["timestamp"] >= first["data"]["metadata"]["timestamp"]


def test_the_cache_is_served_without_the_database(
    api_client, catalogue, monkeypatch, patch_section
):
    api_client.get(URL)

    def must_not_run(ctx):
        raise AssertionError("section ran on a cache hit")

    for section in homepage_sections:
        patch_section(section, must_not_run)
    body = api_client.get(URL).json()
    assert body["data"]["metadata"]["fromCache"] is True
    assert "errors" not in body


def test_fresh_bypasses_the_cache_read(api_client, catalogue):
    api_client.get(URL)
    product = ProductFactory(name="brand new", views=1)
    api_client.get(URL)
    write_behind_the_orm(product, set={"views": 10000})  # behind the cache's back
    cached = api_client.get(URL).json()
    fresh = api_client.get(URL, {"fresh": "true"}).json()
    assert cached["data"]["sections"]["justForYou"]["items"][0]["name"] != "brand new"
    assert fresh["data"]["metadata"]["fromCache"] is False
    assert fresh["data"]["sections"]["justForYou"]["items"][0]["name"] == "brand new"
    # fresh=true stored its result for everyone else.
    after = api_client.get(URL).json()
    assert after["data"]["metadata"]["fromCache"] is True
    assert after["data"]["sections"]["justForYou"]["items"][0]["name"] == "brand new"


def test_parameters_that_change_content_change_the_key(api_client, catalogue):
    keys = {
        api_client.get(URL, params).json()["data"]["metadata"]["cacheKey"]
        for params in [
            {},
            {"limit": 5},
            {"sections": "events,trending_stores"},
            {"sections": "trendingStores,events"},  # same content as the line above
            {"location": "77.5946,12.9716"},
            {"includeAnalytics": "true"},  # analytics never changes the sections
            {"fields": "events.total"},  # a sparse fieldset is cut from the full response
        ]
    }
    assert keys == {
        "homepage:anonymous:v1",
        "homepage:anonymous:v1:limit5",
        "homepage:anonymous:v1:s=events,trendingStores",
        "homepage:anonymous:v1:loc=77.595,12.972",
    }


def test_a_sparse_fieldset_is_served_from_the_cached_full_response(api_client, catalogue):
    full = api_client.get(URL)
    sparse = api_client.get(URL, {"fields": "justForYou.items.name,events.total"})
    body = sparse.json()["data"]
    assert body["metadata"]["fromCache"] is True  # no computation of its own
    assert set(body["sections"]["justForYou"]["items"][0]) == {"name"}
    assert set(body["sections"]["events"]) == {"id", "total"}
    assert body["sections"]["offers"] == full.json()["data"]["sections"]["offers"]  # untouched
    assert sparse["ETag"] != full["ETag"]
    assert (
        api_client.get(
            URL, {"fields": "events.total"}, HTTP_IF_NONE_MATCH=sparse["ETag"]
        ).status_code
        == 200
    )
    again = api_client.get(
        URL, {"fields": "justForYou.items.name,events.total"}, HTTP_IF_NONE_MATCH=sparse["ETag"]
    )
    assert again.status_code == 304


def test_ttl_is_capped_at_the_first_offer_expiry(api_client, db, settings):
    OfferFactory(valid_until=timezone.now() + timedelta(seconds=40))
    ttl = api_client.get(URL, {"sections": "offers"}).json()["data"]["metadata"]["ttl"]
    assert 0 < ttl <= 40 < settings.CACHE_TTL


def test_ttl_is_capped_at_the_next_event_start(api_client, db):
    EventFactory(starts_at=timezone.now() + timedelta(seconds=90))
    ttl = api_client.get(URL, {"sections": "events"}).json()["data"]["metadata"]["ttl"]
    assert 0 < ttl <= 90


def test_responses_are_gzipped_when_accepted(api_client, catalogue):
    response = api_client.get(URL, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(response.content))["success"] is True


# --- parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 21}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"sections": "events,bogus"}, "sections"),
        ({"sections": ","}, "sections"),
        ({"location": "77.5"}, "location"),
        ({"location": "abc,def"}, "location"),
        ({"location": "181,10"}, "location"),
        ({"location": "10,-91"}, "location"),
        ({"location": "nan,10"}, "location"),
        ({"includeAnalytics": "maybe"}, "includeAnalytics"),
        ({"fresh": "sometimes"}, "fresh"),
        ({"userId": "abc"}, "userId"),
        ({"userId": "0"}, "userId"),
        ({"userId": "99999999999999999999999"}, "userId"),
        ({"fields": "justForYou.items.nope"}, "fields"),
        ({"fields": "nope.items.name"}, "fields"),
        ({"sections": "x" * 3000}, "sections"),
    ],
)
def test_invalid_parameters_are_400_naming_the_field(api_client, db, params, field):
    response = api_client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == "VALIDATION_ERROR"


def test_snake_case_section_names_are_accepted(api_client, catalogue):
    body = api_client.get(URL, {"sections": "trending_stores,flash_sales,just_for_you"}).json()
    assert list(body["data"]["sections"]) == ["justForYou", "trendingStores", "flashSales"]


def test_sparse_fields(api_client, catalogue):
    body = api_client.get(
        URL,
        {"fields": "justForYou.items.name,justForYou.items.price", "sections": "justForYou,events"},
    ).json()
    just_for_you = body["data"]["sections"]["justForYou"]
    assert set(just_for_you) == {"id", "items"}
    assert len(just_for_you["items"]) == len(catalogue["products"])
    assert all(set(item) == {"name", "price"} for item in just_for_you["items"])
    assert "title" in body["data"]["sections"]["events"]  # not named: whole


def test_location_orders_stores_and_events_by_distance(api_client, db):
    # Bengaluru centre, then ~5 km and ~20 km away; and one in Mumbai (out of range).
    near = StoreFactory(name="near", latitude=12.9716, longitude=77.6400, rating=1)
    nearest = StoreFactory(name="nearest", latitude=12.9716, longitude=77.5950, rating=2)
    far = StoreFactory(name="far", latitude=13.15, longitude=77.5946, rating=5)
    StoreFactory(name="mumbai", latitude=19.0760, longitude=72.8777, rating=5)
    ev_far = EventFactory(latitude=13.10, longitude=77.5946)
    ev_near = EventFactory(latitude=12.98, longitude=77.5946)

    sections = api_client.get(URL, {"location": "77.5946,12.9716"}).json()["data"]["sections"]

    stores = sections["trendingStores"]
    assert _ids(stores) == [str(nearest.pk), str(near.pk), str(far.pk)]
    distances = [item["distance"] for item in stores["items"]]
    assert distances == sorted(distances) and distances[0] < 0.1 and 15 < distances[2] < 25
    assert _ids(sections["events"]) == [str(ev_near.pk), str(ev_far.pk)]
    # Without a location: by rating, Mumbai included.
    plain = api_client.get(URL, {"sections": "trendingStores"}).json()["data"]["sections"]
    assert len(plain["trendingStores"]["items"]) == 4


# --- who may see what ----------------------------------------------------------------


def test_user_id_without_authentication_is_401(api_client, user):
    response = api_client.get(URL, {"userId": user.pk})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "NOT_AUTHENTICATED"


def test_someone_elses_user_id_is_403(user_client, other_user):
    response = user_client.get(URL, {"userId": other_user.pk})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "PERMISSION_DENIED"


def test_staff_may_ask_for_any_user_and_get_404_for_a_missing_one(staff_client, user):
    assert staff_client.get(URL, {"userId": user.pk}).status_code == 200
    response = staff_client.get(URL, {"userId": 987654})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_authenticated_users_get_their_own_personalised_homepage(user_client, user, api_client):
    books = ProductFactory(category="books", views=1, name="a book")
    ProductFactory(category="electronics", views=1_000, name="popular gadget")
    CategoryAffinityFactory(user=user, category="books", score=0.9)

    mine = user_client.get(URL, {"sections": "justForYou"})
    anonymous = api_client.get(URL, {"sections": "justForYou"})

    assert mine.json()["data"]["metadata"]["userId"] == str(user.pk)
    assert mine.json()["data"]["metadata"]["cacheKey"].startswith(f"homepage:{user.pk}:v1")
    assert _ids(mine.json()["data"]["sections"]["justForYou"])[0] == str(books.pk)
    assert (
        anonymous.json()["data"]["sections"]["justForYou"]["items"][0]["name"] == "popular gadget"
    )
    assert mine["Cache-Control"].startswith("private")
    assert anonymous["Cache-Control"].startswith("public")
    # Same answer with an explicit, own userId.
    explicit = user_client.get(URL, {"sections": "justForYou", "userId": user.pk}).json()
    assert explicit["data"]["metadata"]["fromCache"] is True


def test_one_users_cached_homepage_is_never_served_to_another(db, user, other_user, client_for):
    ProductFactory(category="books", name="book", views=1)
    ProductFactory(category="toys", name="toy", views=1)
    CategoryAffinityFactory(user=user, category="books")
    CategoryAffinityFactory(user=other_user, category="toys")

    first = client_for(user).get(URL, {"sections": "justForYou"}).json()
    second = client_for(other_user).get(URL, {"sections": "justForYou"}).json()
    assert first["data"]["sections"]["justForYou"]["items"][0]["name"] == "book"
    assert second["data"]["sections"]["justForYou"]["items"][0]["name"] == "toy"
    assert second["data"]["metadata"]["fromCache"] is False


def test_bad_token_is_401(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "NOT_AUTHENTICATED"


def test_batch_endpoint_can_be_switched_off(api_client, db, settings):
    settings.ENABLE_BATCH_ENDPOINT = False
    response = api_client.get(URL)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_other_methods_are_405_in_the_envelope(api_client, db):
    response = api_client.post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"


def test_personal_ranking_matches_a_full_sort(user_client, user):
    """The per-category top-N query ranks exactly as sorting every product would."""
    import random

    rng = random.Random(5)
    categories = ["books", "toys", "music", "garden", "sports"]
    for i in range(60):
        ProductFactory(
            category=rng.choice(categories),
            recommendation_score=rng.choice([0.1, 0.5, 0.9]),
            views=rng.randint(0, 3),
            stock=rng.choice([0, 5]),
            name=f"p{i}",
        )
    affinities = {"books": 0.9, "toys": 0.9, "music": 0.2}
    for category, score in affinities.items():
        CategoryAffinityFactory(user=user, category=category, score=score)

    from homepage.models import Product

    expected = sorted(
        Product.objects.featured_in_stock(),
        key=lambda p: (
            -affinities.get(p.category, 0), -p.recommendation_score, -p.views,
            -p.created_at.timestamp(), -pk_order(p.pk),
        ),
    )  # fmt: skip
    body = user_client.get(URL, {"sections": "justForYou", "limit": 20}).json()
    section = body["data"]["sections"]["justForYou"]
    assert _ids(section) == [str(p.pk) for p in expected[:20]]
    assert section["total"] == len(expected)


# --- through the cache engine ------------------------------------------------------


@pytest.fixture
def fetch_counts(monkeypatch) -> Counter:
    """Count every section's computation, on either path (while still reading for real)."""
    counts: Counter = Counter()
    for section in homepage_sections:

        def counting(ctx, _fetch=section.fetch, _id=section.id):
            counts[_id] += 1
            return _fetch(ctx)

        def counting_plan(ctx, _plan=section.plan, _id=section.id):
            # Counted when its reads come back: starting a plan to see which
            # shared totals it needs (read ahead from the cache) computes nothing.
            plan = _plan(ctx)
            step = next(plan)
            results = yield step
            counts[_id] += 1
            while True:
                try:
                    step = plan.send(results)
                except StopIteration as stop:
                    return stop.value
                results = yield step

        monkeypatch.setattr(section, "fetch", counting)
        monkeypatch.setattr(section, "plan", counting_plan)
    return counts


def test_fifty_concurrent_requests_on_a_cold_key_compute_once(
    db, fetch_counts, monkeypatch, flight_followers, settings
):
    settings.REQUEST_TIMEOUT = 60_000  # followers outwait a slow machine
    settings.QUERY_TIMEOUT = 60_000
    ProductFactory.create_batch(3)
    plan = homepage_sections["justForYou"].plan
    release = threading.Event()

    def held(ctx):
        assert release.wait(60), "the test never let the section finish"
        return (yield from plan(ctx))

    monkeypatch.setattr(homepage_sections["justForYou"], "plan", held)
    monkeypatch.setattr(homepage_sections["justForYou"], "fetch", planned(held))
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


@relational_only("PostgreSQL away (MongoDB away: aggregation/test_mongodb.py)")
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


# --- cache hits answered before DRF's request cycle ---------------------------------


def test_an_anonymous_homepage_hit_is_one_redis_round_trip(settings, own_redis):
    settings.RATELIMIT_ENABLE = False  # the limiter's counter is a round trip of its own
    ProductFactory()
    client = APIClient()
    assert client.get(URL).json()["data"]["metadata"]["fromCache"] is False

    def hit() -> None:
        response = client.get(URL)
        assert response["X-Cache"] == "HIT"
        assert response.json()["data"]["metadata"]["fromCache"] is True

    metrics.flush_stats(force=True)  # so the request does not flush counters itself
    assert own_redis.commands_during(hit) == {"cmdstat_mget": 1}


def test_credentials_are_checked_before_any_cached_homepage_is_served():
    ProductFactory()
    assert APIClient().get(URL).status_code == 200  # the anonymous page is cached
    bad_token = APIClient(HTTP_AUTHORIZATION="Token not-a-token")
    response = bad_token.get(URL)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "NOT_AUTHENTICATED"


def test_a_signed_in_caller_never_gets_the_anonymous_copy(user_client, user):
    ProductFactory()
    assert APIClient().get(URL).status_code == 200
    metadata = user_client.get(URL).json()["data"]["metadata"]
    assert metadata["userId"] == str(user.pk)
    assert metadata["cacheKey"] == f"homepage:{user.pk}:v1"


# --- the legacy list endpoints: exactly their homepage section's items --------------


@pytest.fixture
def legacy_catalogue():
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
def test_legacy_endpoint_matches_its_section(api_client, legacy_catalogue, url, section, params):
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


def test_offers_without_featured_lists_every_valid_offer(api_client, legacy_catalogue):
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


def test_a_failing_legacy_section_is_an_error_envelope(api_client, db, monkeypatch, patch_section):
    from homepage.sections import homepage_sections

    def boom(ctx):
        raise RuntimeError("hidden")

    patch_section(homepage_sections["newArrivals"], boom)
    response = api_client.get("/api/v1/products/new-arrivals")
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "SECTION_FETCH_ERROR"
    assert "hidden" not in response.content.decode()


# --- section versions, known=, encodings -------------------------------------------


def _versions(response) -> dict[str, str]:
    return decoded(response)["data"]["metadata"]["sectionVersions"]


def _unfeature_a_product(world: dict) -> None:
    product = world["products"][0]
    product.featured = False  # leaves justForYou; newArrivals shows no "featured"
    product.save()


# Each write changes exactly one section's content.
SECTION_WRITES = {
    "justForYou": _unfeature_a_product,
    "newArrivals": lambda world: ProductFactory(featured=False),
    "trendingStores": lambda world: StoreFactory(),
    "events": lambda world: EventFactory(),
    "offers": lambda world: OfferFactory(store=world["stores"][0]),
    "flashSales": lambda world: OfferFactory(flash=True, featured=False, store=world["stores"][1]),
}


@pytest.mark.parametrize("section", ALL_SECTIONS)
def test_a_version_changes_with_its_section_only(api_client, catalogue, section):
    first = _versions(api_client.get(URL))
    assert list(first) == ALL_SECTIONS
    assert len(set(first.values())) == len(ALL_SECTIONS)
    # Recomputed from the database (new timestamp, new lastUpdated): same versions.
    recomputed = api_client.get(URL, {"fresh": "true"})
    assert decoded(recomputed)["data"]["metadata"]["fromCache"] is False
    assert _versions(recomputed) == first
    SECTION_WRITES[section](catalogue)
    after = _versions(api_client.get(URL))
    assert {s for s in ALL_SECTIONS if after[s] != first[s]} == {section}


def test_known_returns_exactly_the_changed_sections(api_client, catalogue):
    before = api_client.get(URL).json()["data"]
    versions = before["metadata"]["sectionVersions"]
    known = ",".join(f"{s}:{v}" for s, v in versions.items())
    unchanged = api_client.get(URL, {"known": known}).json()["data"]
    assert unchanged["metadata"]["fromCache"] is True  # served from the cached response
    assert unchanged["sections"] == {
        s: {"id": s, "notModified": True, "version": v} for s, v in versions.items()
    }
    EventFactory(title="new event")
    after = api_client.get(URL, {"known": known}).json()["data"]
    assert [s for s, body in after["sections"].items() if "notModified" not in body] == ["events"]
    assert "new event" in [e["title"] for e in after["sections"]["events"]["items"]]
    # Merging the response into what the client holds gives the full response.
    merged = {
        s: before["sections"][s] if body.get("notModified") else body
        for s, body in after["sections"].items()
    }
    full = api_client.get(URL).json()["data"]
    assert merged == full["sections"]
    assert after["metadata"]["sectionVersions"] == full["metadata"]["sectionVersions"]
    assert after["metadata"]["bodyVersion"] != before["metadata"]["bodyVersion"]


def test_known_with_sections_fields_snake_case_and_unknown_versions(api_client, catalogue):
    params = {"sections": "events,offers"}
    versions = api_client.get(URL, params).json()["data"]["metadata"]["sectionVersions"]
    assert list(versions) == ["events", "offers"]
    response = api_client.get(
        URL,
        {
            **params,
            "known": f"events:{versions['events']},offers:{'A' * 16},flash_sales:whatever",
            "fields": "offers.total,events.items.title",
        },
    )
    sections = response.json()["data"]["sections"]
    assert sections["events"] == {
        "id": "events",
        "notModified": True,
        "version": versions["events"],
    }
    assert sections["offers"] == {"id": "offers", "total": 2}  # unknown version: sent, and sparse
    assert list(sections) == ["events", "offers"]  # flashSales is not part of this response
    # With a fieldset the ETag names the variant, known= included: a version is
    # of the whole section, so what the client kept may be another fieldset's.
    again = api_client.get(
        URL,
        {**params, "known": f"events:{versions['events']}", "fields": "offers.total"},
        HTTP_IF_NONE_MATCH=response["ETag"],
    )
    assert again.status_code == 200 and again["ETag"] != response["ETag"]
    narrow = {**params, "fields": "offers.total"}
    first = api_client.get(URL, narrow)  # the client holds offers.total only
    wider = {**params, "fields": "offers.items.title"}
    kept = api_client.get(URL, {**wider, "known": f"offers:{versions['offers']}"},
                          HTTP_IF_NONE_MATCH=first["ETag"])  # fmt: skip
    assert kept.json()["data"]["sections"]["offers"]["notModified"] is True
    # Its merged copy still has no items: the wider fieldset alone is no 304.
    assert api_client.get(URL, wider, HTTP_IF_NONE_MATCH=kept["ETag"]).status_code == 200
    same = api_client.get(URL, {**wider, "known": f"offers:{versions['offers']}"},
                          HTTP_IF_NONE_MATCH=kept["ETag"])  # fmt: skip
    assert same.status_code == 304


def test_known_from_another_variant_or_user_is_changed(user_client, user, api_client, catalogue):
    anonymous = api_client.get(URL).json()["data"]["metadata"]["sectionVersions"]
    mine = user_client.get(URL).json()["data"]["metadata"]["sectionVersions"]
    # The same events for everyone, but versions are per cache entry: nothing leaks.
    assert (
        api_client.get(URL).json()["data"]["sections"]["events"]
        == (user_client.get(URL).json()["data"]["sections"]["events"])
    )
    assert not set(anonymous.values()) & set(mine.values())
    known = ",".join(f"{s}:{v}" for s, v in anonymous.items())
    sections = user_client.get(URL, {"known": known}).json()["data"]["sections"]
    assert not [s for s, body in sections.items() if body.get("notModified")]


@pytest.mark.parametrize(
    ("known", "named"),
    [
        ("events", "'events'"),
        ("bogus:abc", "unknown section 'bogus'"),
        ("events:", "'events:'"),
        ("events:a b", "'events:a b'"),
        ("events:" + "a" * 65, "'events:"),
        ("events:abc,events:def", "named twice"),
        (",".join(f"events:{n}" for n in range(51)), "At most 50"),
    ],
)
def test_a_malformed_known_is_400_naming_the_item(api_client, db, known, named):
    response = api_client.get(URL, {"known": known})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("known", "VALIDATION_ERROR")
    assert named in error["message"]


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip", "identity"])
def test_every_encoding_decodes_to_the_same_json(api_client, catalogue, coding):
    plain = api_client.get(URL).json()["data"]
    response = api_client.get(URL, HTTP_ACCEPT_ENCODING=coding)
    assert response.get("Content-Encoding") == (None if coding == "identity" else coding)
    assert "Accept-Encoding" in response["Vary"]
    body = decoded(response)["data"]
    assert body["sections"] == plain["sections"]
    assert body["metadata"]["sectionVersions"] == plain["metadata"]["sectionVersions"]
    versions = plain["metadata"]["sectionVersions"]
    known = decoded(
        api_client.get(URL, {"known": f"offers:{versions['offers']}"}, HTTP_ACCEPT_ENCODING=coding)
    )["data"]["sections"]
    assert known == {**plain["sections"], "offers": {"id": "offers", "notModified": True,
                                                     "version": versions["offers"]}}  # fmt: skip


@pytest.mark.parametrize(
    ("accept", "whole", "reduced"),
    [
        ("gzip, deflate, br, zstd", "br", "zstd"),
        ("gzip, br", "br", "gzip"),
        ("br;q=0.5, gzip", "gzip", "gzip"),
        ("br, gzip;q=0", "br", "br"),  # Brotli only: a reduced body is compressed for it
        ("zstd;q=0.9, br;q=0.1", "zstd", "zstd"),
        ("*", "br", "zstd"),
        ("*;q=0.5, br;q=0", "zstd", "zstd"),
        ("deflate, compress", None, None),
        ("gzip;q=0, br;q=0.000", None, None),
        ("", None, None),
    ],
)
def test_the_coding_follows_accept_encoding_q_values(api_client, catalogue, accept, whole, reduced):
    versions = api_client.get(URL).json()["data"]["metadata"]["sectionVersions"]
    full = api_client.get(URL, HTTP_ACCEPT_ENCODING=accept)
    assert full.get("Content-Encoding") == whole
    part = api_client.get(
        URL, {"known": f"events:{versions['events']}"}, HTTP_ACCEPT_ENCODING=accept
    )
    assert part.get("Content-Encoding") == reduced
    assert decoded(part)["data"]["sections"]["events"]["notModified"] is True


def test_a_hit_compresses_no_section(api_client, catalogue, monkeypatch):
    api_client.get(URL)

    def forbidden(*args, **kwargs):
        raise AssertionError("a section compressed on a cache hit")

    for name in ("deflate_segment", "zstd_frame", "brotli_head"):
        monkeypatch.setattr(f"aggregation.delivery.{name}", forbidden)
    monkeypatch.setattr("aggregation.rendering.brotli_whole", forbidden)
    versions = api_client.get(URL).json()["data"]["metadata"]["sectionVersions"]
    for coding in ("br", "zstd", "gzip"):
        whole = api_client.get(URL, HTTP_ACCEPT_ENCODING=coding)
        assert whole["Content-Encoding"] == coding and whole["X-Cache"] == "HIT"
    for coding in ("zstd", "gzip"):
        part = api_client.get(
            URL, {"known": f"events:{versions['events']}"}, HTTP_ACCEPT_ENCODING=coding
        )
        assert part["Content-Encoding"] == coding


def test_without_an_encoding_configured_it_is_not_offered(api_client, catalogue, settings):
    settings.RESPONSE_ENCODINGS = ("gzip",)
    response = api_client.get(URL, HTTP_ACCEPT_ENCODING="br, zstd, gzip")
    assert response["Content-Encoding"] == "gzip"
    assert api_client.get(URL, HTTP_ACCEPT_ENCODING="br, zstd").get("Content-Encoding") is None
