"""The edge: the project's Varnish in front of gunicorn, purged by tag on commit.

``scripts/edge`` with ``deploy/varnish/default.vcl``: real varnishd, real
gunicorn, real Redis and PostgreSQL.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import timedelta
from types import SimpleNamespace

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from api.http import cache_control
from caching import edge
from caching.tags import bump
from homepage.models import Product
from tests.decoding import decompressed
from tests.factories import UserFactory
from tests.homepage.factories import EventFactory, OfferFactory, ProductFactory
from tests.servers import FreezableProxy, Varnish, free_port, gunicorn
from tests.trainers.factories import TrainerFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.storefront]
SECRET = "edge-test-secret"
HOME = "/api/v1/homepage"


def get(url: str, headers: dict[str, str] | None = None) -> SimpleNamespace:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, head, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, body = error.code, error.headers, error.read()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:  # the edge's own error page
        data = None
    return SimpleNamespace(status=status, edge=head.get("X-Edge-Cache"), headers=head, json=data)


def send(url: str, method: str, payload: dict, token: str) -> int:
    request = urllib.request.Request(
        url, data=orjson.dumps(payload), method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def names(response: SimpleNamespace, section: str) -> list[str]:
    return [item["name"] for item in response.json["data"]["sections"][section]["items"]]


@pytest.fixture
def stack(settings):
    """Gunicorn behind the project's Varnish; both this process and gunicorn purge it."""
    port = free_port()
    purge_url = f"http://127.0.0.1:{port}/"
    settings.EDGE_PURGE_URLS = [purge_url]
    settings.EDGE_PURGE_SECRET = SECRET
    with ExitStack() as app_stack:
        app = app_stack.enter_context(
            gunicorn(
                connection.settings_dict["NAME"],
                EDGE_PURGE_URLS=purge_url,
                EDGE_PURGE_SECRET=SECRET,
            )
        )
        varnish = Varnish(app.removeprefix("http://"), port, SECRET)
        try:
            varnish.start()
            yield SimpleNamespace(edge=varnish.url, varnish=varnish, stop_app=app_stack.close)
        finally:
            varnish.close()


def test_anonymous_pages_come_from_the_edge_and_personal_ones_never(stack):
    ProductFactory.create_batch(3)
    first, second = get(stack.edge + HOME), get(stack.edge + HOME)
    assert (first.status, first.edge, second.edge) == (200, "MISS", "HIT")
    assert second.headers["ETag"] == first.headers["ETag"]
    assert "xkey" not in second.headers  # the tags are for the edge only
    # Cache-Status (RFC 9211): the app's caches, then the edge's own member last.
    assert re.fullmatch(
        r"app-l2; fwd=miss; stored; ttl=\d+, app-l1; fwd=miss; stored; ttl=\d+, "
        r"edge; fwd=miss; stored; ttl=\d+",
        first.headers["Cache-Status"],
    )
    assert second.headers["Cache-Status"].startswith(
        first.headers["Cache-Status"].rsplit(", ", 1)[0]
    )
    assert re.search(r", edge; hit; ttl=\d+$", second.headers["Cache-Status"])

    # One object per normalised URL: parameters sorted, tracking ones dropped.
    assert get(f"{stack.edge}{HOME}?limit=5&sections=events").edge == "MISS"
    again = get(f"{stack.edge}{HOME}?utm_source=news&sections=events&limit=5&gclid=x")
    assert again.edge == "HIT"

    # fresh=true and signed-in callers always reach the service.
    assert [get(f"{stack.edge}{HOME}?fresh=true").edge for _ in range(2)] == ["PASS", "PASS"]
    users = UserFactory.create_batch(2)
    for user in users * 2:
        token = Token.objects.create(user=user) if not hasattr(user, "auth_token") else None
        key = (token or user.auth_token).key
        mine = get(stack.edge + HOME, {"Authorization": f"Token {key}"})
        assert mine.edge == "PASS" and mine.headers["Cache-Status"].endswith(", edge; fwd=bypass")
        assert mine.json["data"]["metadata"]["userId"] == str(user.pk)


def test_a_staff_change_is_on_the_edge_at_the_next_request(stack, staff_user):
    product = ProductFactory(name="Plain lamp", featured=False)
    EventFactory()
    assert "Plain lamp" not in names(get(stack.edge + HOME), "justForYou")
    assert get(stack.edge + HOME).edge == "HIT"
    events = f"{stack.edge}/api/v1/events/featured"
    assert [get(events).edge for _ in range(2)] == ["MISS", "HIT"]

    staff = Client()
    staff.force_login(staff_user)
    changelist = "/admin/homepage/product/"
    staff.post(changelist, {"action": "make_featured", "_selected_action": [product.pk]})

    after = get(stack.edge + HOME)  # the commit returned: the edge has been purged
    assert after.edge == "MISS"
    assert "Plain lamp" in names(after, "justForYou")

    # A product that only shows in newArrivals purges what carries "products" only.
    ProductFactory(name="New kettle", featured=False)
    assert "New kettle" in names(get(stack.edge + HOME), "newArrivals")
    assert get(events).edge == "HIT"


def test_an_api_mutation_through_the_edge_is_seen_at_once(stack):
    trainer = TrainerFactory()
    token = Token.objects.create(user=trainer.user).key
    bootstrap = f"{stack.edge}/api/v1/trainers/{trainer.pk}/bootstrap"
    auth = {"Authorization": f"Token {token}"}
    assert get(bootstrap, auth).edge == "PASS"
    url = f"{stack.edge}/api/v1/trainers/{trainer.pk}/profile"
    assert send(url, "PATCH", {"bio": "Through the edge"}, token) == 200
    after = get(bootstrap, auth)
    assert after.edge == "PASS"
    assert after.json["data"]["overview"]["profile"]["bio"] == "Through the edge"


def test_an_expired_offer_leaves_the_edge_without_a_purge(stack, settings):
    settings.EDGE_PURGE_URLS = []  # nothing in this process purges
    OfferFactory(title="Last minute", valid_until=timezone.now() + timedelta(seconds=3))
    OfferFactory(title="All week")
    first = get(stack.edge + HOME)
    titles = [o["title"] for o in first.json["data"]["sections"]["offers"]["items"]]
    assert "Last minute" in titles
    control = first.headers["Cache-Control"]
    assert "s-maxage=0," in control or "s-maxage=1," in control or "s-maxage=2," in control
    assert "stale-while-revalidate=0, stale-if-error=0" in control

    def gone() -> bool:
        items = get(stack.edge + HOME).json["data"]["sections"]["offers"]["items"]
        return "Last minute" not in [o["title"] for o in items]

    wait_until(gone, timeout=15, message="the expired offer stayed on the edge")


def test_the_edge_serves_the_last_page_while_the_service_is_down(stack):
    ProductFactory(name="Still here")
    assert get(stack.edge + HOME).edge == "MISS"
    stack.stop_app()
    bump(["products"])  # a soft purge: expired, but kept for stale-if-error

    def served_stale() -> bool:  # once the edge's probe has seen the service go
        response = get(stack.edge + HOME)
        return response.status == 200 and "Still here" in names(response, "newArrivals")

    wait_until(served_stale, timeout=20, message="no stale page while the service was down")


def test_an_edge_that_is_down_or_frozen_never_holds_up_a_write(stack, settings, start_worker):
    ProductFactory()
    start_worker(EDGE_PURGE_URLS=settings.EDGE_PURGE_URLS[0], EDGE_PURGE_SECRET=SECRET)
    assert get(stack.edge + HOME).edge == "MISS"
    stack.varnish.stop()

    started = time.monotonic()
    Product.objects.update(name="Renamed")  # commits, bumps, purges: refused at once
    bump(["products"])
    assert time.monotonic() - started < 2
    assert edge.status()["failing"] is True

    # The worker retries with backoff; once the edge is back, the retry lands.
    stack.varnish.start()
    wait_until(lambda: not edge.status()["failing"], timeout=30, message="purge never retried")
    assert edge.status()["last_ok"] > edge.status()["last_failed"]

    # A frozen edge (accepts, never answers) costs a write at most the purge timeout.
    settings.EDGE_PURGE_TIMEOUT_MS = 100
    proxy = FreezableProxy(("127.0.0.1", stack.varnish.port))
    try:
        proxy.freeze()
        settings.EDGE_PURGE_URLS = [f"http://127.0.0.1:{proxy.port}/"]
        started = time.monotonic()
        bump(["products"])
        assert time.monotonic() - started < 1.5  # 100 ms, plus a busy machine's slack
    finally:
        proxy.close()


def test_purges_need_the_secret_and_shared_caches_keep_no_expired_content(stack):
    request = urllib.request.Request(
        f"{stack.edge}/", method="PURGE", headers={"xkey-softpurge": "products"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert edge.purge_one(f"{stack.edge}/", ["products"], 2.0) is True

    soon = time.time() + 30
    assert cache_control(public=True, expires_at=soon).startswith("public, max-age=0, s-maxage=")
    capped = cache_control(public=True, expires_at=soon)
    assert "s-maxage=29" in capped or "s-maxage=30" in capped
    assert "stale-while-revalidate=0, stale-if-error=0" in capped
    later = cache_control(public=True, expires_at=time.time() + 100.5)
    assert "s-maxage=60, stale-while-revalidate=40, stale-if-error=40" in later


def test_the_edge_keeps_one_object_per_encoding(stack):
    ProductFactory.create_batch(3)
    plain = get(stack.edge + HOME).json["data"]["sections"]

    def fetch(accept: str) -> tuple[str | None, str | None, dict]:
        request = urllib.request.Request(stack.edge + HOME, headers={"Accept-Encoding": accept})
        with urllib.request.urlopen(request, timeout=10) as response:
            coding = response.headers.get("Content-Encoding")
            body = orjson.loads(decompressed(response.read(), coding))
            return coding, response.headers.get("X-Edge-Cache"), body["data"]["sections"]

    for accept, coding in [("gzip, deflate, br, zstd", "br"), ("zstd, gzip", "zstd"),
                           ("br;q=0, gzip", "gzip"), ("gzip;q=0", None)]:  # fmt: skip
        first, second = fetch(accept), fetch(accept)
        assert (first[0], second[0]) == (coding, coding), accept
        assert second[1] == "HIT", accept
        assert first[2] == second[2] == plain
    # Each client got its own coding from the edge's objects, none another's.
    assert fetch("br")[0] == "br" and fetch("gzip")[0] == "gzip" and fetch("zstd")[0] == "zstd"
