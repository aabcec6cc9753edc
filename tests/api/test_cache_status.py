"""``Cache-Status`` (RFC 9211): derived from how the engine served a response."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from aggregation.plans import planned
from api.cache_status import cache_status
from caching.engine import CacheResult
from caching.local import clear_local
from homepage.sections import homepage_sections
from tests.homepage.factories import ProductFactory
from tests.waiting import wait_until

HOME = "/api/v1/homepage"
NOW = 1_000_000.0


def test_each_way_of_serving_has_its_own_members():
    def result(**fields) -> CacheResult:
        return CacheResult("body", **{"from_cache": False, "stored_at": NOW - 10, **fields})

    assert cache_status(result(from_cache=True, layer="l1", ttl=180), now=NOW) == (
        "app-l1; hit; ttl=170"
    )
    assert cache_status(result(from_cache=True, layer="l2", ttl=180), now=NOW) == (
        "app-l2; hit; ttl=170, app-l1; fwd=miss; stored"
    )
    assert cache_status(result(ttl=180, stored_at=NOW), now=NOW) == (
        "app-l2; fwd=miss; stored; ttl=180, app-l1; fwd=miss; stored; ttl=180"
    )
    assert cache_status(result(ttl=180, stored_at=NOW), fresh=True, now=NOW) == (
        "app-l2; fwd=request; stored; ttl=180, app-l1; fwd=request; stored; ttl=180"
    )
    assert cache_status(result(layer="flight", ttl=15, stored_at=NOW), now=NOW) == (
        "app-l2; fwd=miss; collapsed; stored; ttl=15, app-l1; fwd=miss; collapsed; stored; ttl=15"
    )
    # Nothing stored: every section failed, or the content had already expired.
    assert cache_status(result(ok=False), now=NOW) == "app-l2; fwd=miss, app-l1; fwd=miss"
    assert cache_status(result(ttl=0), now=NOW) == "app-l2; fwd=miss, app-l1; fwd=miss"


def test_a_stale_copy_says_so_and_its_ttl_is_negative_once_past_its_freshness():
    past = CacheResult("body", True, stale=True, layer="l1", ttl=5, stored_at=NOW - 8)
    assert cache_status(past, now=NOW) == "app-l1; hit; ttl=-3; detail=stale"
    # An invalidated copy served because recomputing failed may still have time left:
    # a positive ttl would call it fresh, so there is none.
    invalidated = CacheResult("body", True, stale=True, layer="l2", ttl=180, stored_at=NOW - 8)
    assert cache_status(invalidated, now=NOW) == (
        "app-l2; hit; detail=stale, app-l1; fwd=miss; stored"
    )


def _members(response) -> list[str]:
    return [m.split(";")[0] for m in response["Cache-Status"].split(", ")]


@pytest.mark.django_db(transaction=True)
def test_the_homepage_says_which_cache_answered(api_client):
    ProductFactory.create_batch(2)
    computed = api_client.get(HOME)
    assert computed["X-Cache"] == "MISS"
    assert re.fullmatch(
        r"app-l2; fwd=miss; stored; ttl=(\d+), app-l1; fwd=miss; stored; ttl=\1",
        computed["Cache-Status"],
    )
    in_process = api_client.get(HOME)
    assert re.fullmatch(r"app-l1; hit; ttl=\d+", in_process["Cache-Status"])

    clear_local()  # another process: only Redis holds the page
    from_redis = api_client.get(HOME)
    assert re.fullmatch(
        r"app-l2; hit; ttl=\d+, app-l1; fwd=miss; stored", from_redis["Cache-Status"]
    )

    fresh = api_client.get(HOME, {"fresh": "true"})
    assert fresh["Cache-Status"].startswith("app-l2; fwd=request; stored")

    # A 304 carries it too.
    etag = api_client.get(HOME)["ETag"]
    assert _members(api_client.get(HOME, HTTP_IF_NONE_MATCH=etag)) == ["app-l1"]


@pytest.mark.django_db(transaction=True)
def test_a_request_that_waited_for_another_s_computation_is_collapsed(
    api_client, monkeypatch, flight_followers
):
    ProductFactory()
    plan = homepage_sections["events"].plan
    entered, release = threading.Event(), threading.Event()

    def held(ctx):
        entered.set()
        release.wait(30)
        return (yield from plan(ctx))

    monkeypatch.setattr(homepage_sections["events"], "plan", held)
    monkeypatch.setattr(homepage_sections["events"], "fetch", planned(held))
    answers: dict[str, str] = {}

    def ask(name: str) -> None:
        try:
            answers[name] = APIClient().get(HOME)["Cache-Status"]
        finally:
            connections.close_all()  # this thread's own connection

    leader = threading.Thread(target=ask, args=("leader",))
    leader.start()
    assert entered.wait(30)
    follower = threading.Thread(target=ask, args=("follower",))
    follower.start()
    wait_until(lambda: flight_followers.count == 1, timeout=30)
    release.set()
    leader.join(30)
    follower.join(30)
    assert "collapsed" not in answers["leader"]
    assert answers["follower"].startswith("app-l2; fwd=miss; collapsed; stored; ttl=")
