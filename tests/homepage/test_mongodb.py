"""The storefront in MongoDB: collections, indexes, time limits and failures (--storefront=mongodb)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from pymongo import monitoring
from pymongo.collection import Collection

from aggregation import mongodb
from api.errors import ErrorCode
from caching.tags import bump
from homepage.models import CategoryAffinity
from tests.factories import UserFactory
from tests.servers import FreezableProxy, free_port
from tests.storefront import storefront_connection
from tests.waiting import wait_until

from .factories import (
    CategoryAffinityFactory,
    EventFactory,
    OfferFactory,
    ProductFactory,
    StoreFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
URL = "/api/v1/homepage"
SECTIONS = {"justForYou", "newArrivals", "trendingStores", "events", "offers", "flashSales"}


@pytest.fixture(autouse=True)
def _on_mongodb():
    if storefront_connection().vendor != "mongodb":
        pytest.skip("the storefront is not in MongoDB here (run with --storefront=mongodb)")
    mongodb.reachable_again()
    yield
    mongodb.reachable_again()


@pytest.fixture
def catalogue() -> None:
    now = timezone.now()
    stores = StoreFactory.create_batch(3)
    ProductFactory.create_batch(4, category="books")
    ProductFactory(stock=0)
    EventFactory.create_batch(2)
    EventFactory(starts_at=now - timedelta(hours=1))
    OfferFactory.create_batch(2, store=stores[0])
    OfferFactory(flash=True, store=stores[1])


# --- Collections and indexes --------------------------------------------------------

# Seed 004 appendix B, as our fields name them: (keys, partialFilterExpression).
APPENDIX_B = {
    "products": [
        ({"views": -1, "created_at": -1}, {"featured": True, "is_active": True}),
        ({"created_at": -1}, {"is_active": True}),
    ],
    "stores": [({"rating": -1, "views": -1}, {"featured": True, "is_active": True})],
    "events": [({"starts_at": 1, "views": -1}, {"featured": True, "is_active": True})],
    "offers": [
        ({"valid_until": 1, "created_at": -1}, {"featured": True, "is_active": True}),
        ({"valid_until": 1, "flash_sale_price": 1}, {"flash_sale_active": True, "is_active": True}),
    ],
}


def _conditions(match: dict) -> dict[str, Any]:
    """A ``$match`` (or partial filter) as field -> condition, ``$and`` flattened."""
    found: dict[str, Any] = {}
    for key, value in match.items():
        if key == "$and":
            for part in value:
                found.update(_conditions(part))
        else:
            found[key] = value["$eq"] if isinstance(value, dict) and "$eq" in value else value
    return found


def _indexes(collection: str) -> dict[str, tuple[dict, dict]]:
    """Each index of ``collection`` by name: its keys and its partial filter."""
    database = storefront_connection().database
    return {
        index["name"]: (dict(index["key"]), _conditions(index.get("partialFilterExpression", {})))
        for index in database[collection].list_indexes()
    }


def test_the_storefront_is_in_the_seed_collections_with_the_appendix_b_indexes():
    names = set(storefront_connection().database.list_collection_names())
    assert {"products", "stores", "events", "offers", "category_affinities"} <= names
    for collection, wanted in APPENDIX_B.items():
        for keys, partial in wanted:
            assert (keys, partial) in _indexes(collection).values(), (collection, keys)


def _serves(index: tuple[dict, dict], match: dict[str, Any], sort: list[str]) -> bool:
    """Whether ``index`` can serve a query, by MongoDB's rule for partial indexes.

    The query implies the index's filter; then the index's keys, past those the
    query pins by equality, continue with the sort or a filtered field.
    """
    keys, partial = index
    if any(match.get(field) != condition for field, condition in partial.items()):
        return False
    rest = [key for key in keys if not (key in match and not isinstance(match[key], dict))]
    return bool(rest) and (rest[0] in match or (bool(sort) and rest[0] == sort[0]))


@contextlib.contextmanager
def _pipelines() -> Iterator[list[tuple[str, list]]]:
    """Every aggregation the block sends, as (collection, pipeline)."""
    sent: list[tuple[str, list]] = []
    original = Collection.aggregate

    def recording(self, pipeline, *args, **kwargs):
        sent.append((self.name, pipeline))
        return original(self, pipeline, *args, **kwargs)

    Collection.aggregate = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Collection.aggregate = original  # type: ignore[method-assign]


def test_each_section_query_filters_first_on_an_index_that_serves_it(
    api_client, user_client, user, catalogue
):
    """Each section's query starts with its ``$match`` and an index serves it.

    On MongoDB itself (``STOREFRONT_TEST_MONGODB_URL``) its own ``explain``
    must show an index scan and no collection scan. secantusdb's planner
    chooses no index for a ``$and`` filter, which is how django-mongodb-backend
    writes every multi-field filter, so there the index is found by MongoDB's
    rule for partial indexes (README, "Running on MongoDB"), and the query
    hinted with it must plan an index scan of it and return the same rows.
    """
    CategoryAffinityFactory(user=user, category="books")
    with _pipelines() as sent:
        assert api_client.get(URL, {"fresh": "true"}).status_code == 200
        assert api_client.get(URL, {"fresh": "true", "location": "77.59,12.97"}).status_code == 200
        assert user_client.get(URL, {"fresh": "true"}).status_code == 200
        assert api_client.get("/api/v1/offers", {"featured": "false"}).status_code == 200
    database = storefront_connection().database
    checked = set()
    for collection, pipeline in sent:
        if collection not in APPENDIX_B:
            continue
        first = pipeline[0]
        assert "$match" in first, (collection, pipeline)  # filtered before anything else
        match = _conditions(first["$match"])
        if set(match) == {"_id"}:
            continue  # the offers' stores, by primary key
        sort = next((list(stage["$sort"]) for stage in pipeline if "$sort" in stage), [])
        serving = [
            name
            for name, index in _indexes(collection).items()
            if name != "_id_" and _serves(index, match, sort)
        ]
        assert serving, (collection, match, sort)
        explain = {"aggregate": collection, "pipeline": pipeline, "cursor": {}}
        explained = database.command("explain", explain)
        if explained.get("serverInfo", {}).get("host") != "secantus":  # a real MongoDB
            stages = _plan_stages(explained)
            assert "IXSCAN" in stages and "COLLSCAN" not in stages, (collection, stages)
        hinted = database.command("explain", {**explain, "hint": serving[0]})
        assert "IXSCAN" in _plan_stages(hinted), (collection, serving[0])
        rows = list(database[collection].aggregate(pipeline))
        assert list(database[collection].aggregate(pipeline, hint=serving[0])) == rows
        checked.add(collection)
    assert checked == set(APPENDIX_B)


def _plan_stages(explained: Any) -> list[str]:
    """Every ``stage`` named in an explain output's winning plans."""
    if isinstance(explained, list):
        return [stage for item in explained for stage in _plan_stages(item)]
    if not isinstance(explained, dict):
        return []
    found = [explained["stage"]] if isinstance(explained.get("stage"), str) else []
    for key, value in explained.items():
        if key != "rejectedPlans":
            found += _plan_stages(value)
    return found


def test_a_users_affinities_go_with_the_user(user):
    CategoryAffinityFactory(user=user, category="books")
    other = UserFactory()
    CategoryAffinityFactory(user=other, category="books")
    user.delete()
    assert list(CategoryAffinity.objects.values_list("user_id", flat=True)) == [other.pk]


# --- Time limits and failures -------------------------------------------------------


class _Commands(monitoring.CommandListener):
    """The aggregate commands a client sends."""

    def __init__(self) -> None:
        self.aggregates: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "aggregate":
            self.aggregates.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@contextlib.contextmanager
def _storefront_at(host: str) -> Iterator[_Commands]:
    """Point this process's storefront connection at ``host`` (a proxy, a dead port)."""
    conn = storefront_connection()
    original, options = conn.settings_dict["HOST"], conn.settings_dict["OPTIONS"]
    commands = _Commands()

    def reconnect(to: str, extra: dict) -> None:
        if conn.connection is None:  # another thread's wrapper opened the shared client
            client = type(conn)._connection_pools.pop(conn.alias, None)
            if client is not None:
                client.close()
        else:
            conn.close_pool()  # MongoClient is the pool; close() keeps it
        conn.settings_dict["HOST"], conn.settings_dict["OPTIONS"] = to, {**options, **extra}

    reconnect(host, {"event_listeners": [commands]})
    try:
        yield commands
    finally:
        reconnect(original, {})


def _server_address() -> tuple[str, int]:
    host, port = storefront_connection().connection.address
    return host, port


def _errors(body: dict) -> dict[str, str]:
    return {error["section"]: error["code"] for error in body.get("errors", [])}


def test_a_frozen_storefront_times_sections_out_at_their_limit(api_client, catalogue, settings):
    settings.QUERY_TIMEOUT = 300
    settings.REQUEST_TIMEOUT = 20_000
    proxy = FreezableProxy(_server_address())
    try:
        with _storefront_at(f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true") as sent:
            assert api_client.get(URL, {"fresh": "true"}).status_code == 200  # through the proxy
            # Every query carried the server-side limit, within the section's 300 ms.
            assert sent.aggregates
            assert all(0 < command["maxTimeMS"] <= 300 for command in sent.aggregates)
            proxy.freeze()
            started = time.monotonic()
            response = api_client.get(URL, {"fresh": "true"})
            elapsed = time.monotonic() - started
            proxy.thaw()
    finally:
        proxy.close()
    body = response.json()
    assert response.status_code == 503  # every section timed out: the envelope, no data
    assert _errors(body) == dict.fromkeys(SECTIONS, ErrorCode.TIMEOUT_ERROR.value)
    assert elapsed < 20  # each stopped at its own limit, not the request's budget


def test_an_unreachable_storefront_is_found_once_then_probed_briefly(
    api_client, catalogue, settings
):
    """Six sections, one server selection timeout: the rest are connection errors at once.

    And what was cached is still served, stale once its data moved on.
    """
    settings.REQUEST_TIMEOUT = 10_000
    cached = api_client.get(URL)
    assert cached.status_code == 200
    bump(["products", "stores", "events", "offers"])  # out of date; cannot be recomputed
    with _storefront_at(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"):
        fresh = api_client.get(URL, {"fresh": "true"})
        served = api_client.get(URL)
        ready = api_client.get("/health/ready")
    # Without the short probes, six selection timeouts (2 s each) outlast the
    # 10 s budget and the last sections are timeouts instead.
    assert fresh.status_code == 503
    assert _errors(fresh.json()) == dict.fromkeys(SECTIONS, ErrorCode.DB_CONNECTION_ERROR.value)
    assert served.status_code == 200
    assert served.json()["data"]["metadata"]["stale"] is True
    assert served.json()["data"]["sections"] == cached.json()["data"]["sections"]
    assert ready.status_code == 503
    assert api_client.get("/health/ready").status_code == 200  # back


def test_a_restarted_storefront_is_read_again_within_the_short_probes(
    api_client, catalogue, settings
):
    """Gone, then back on its address: read again long before the probing window ends.

    (pymongo checks a server it lost at most every half second; a probe finds
    it after that.)
    """
    settings.REPLICA_RETRY_AFTER_S = 30  # the window of short probes after the failure
    server = _server_address()
    first = FreezableProxy(server)
    try:
        with _storefront_at(f"mongodb://127.0.0.1:{first.port}/?directConnection=true"):
            assert api_client.get(URL, {"fresh": "true"}).status_code == 200
            first.close()  # the server goes away, with every connection
            down = api_client.get(URL, {"fresh": "true"})
            again = FreezableProxy(server, port=first.port)  # and comes back
            started = time.monotonic()
            try:
                back = wait_until(
                    lambda: _answered(api_client.get(URL, {"fresh": "true"})), timeout=15
                )
            finally:
                again.close()
            recovered_in = time.monotonic() - started
    finally:
        first.close()
    assert down.status_code == 503
    assert set(_errors(down.json()).values()) == {ErrorCode.DB_CONNECTION_ERROR.value}
    assert set(back.json()["data"]["sections"]) == SECTIONS
    assert recovered_in < settings.REPLICA_RETRY_AFTER_S


def _answered(response: Any) -> Any:
    """The response if every section was read (none failed), else None."""
    return response if response.status_code == 200 and "errors" not in response.json() else None


def test_an_import_into_an_unreachable_storefront_is_a_clear_error(tmp_path):
    stores = tmp_path / "stores.json"
    stores.write_text('{"_id": "s1", "name": "Shop", "category": "books"}\n')
    with (
        _storefront_at(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"),
        pytest.raises(CommandError, match="the storefront's database failed"),
    ):
        call_command("import_storefront", f"--stores={stores}", "--no-progress")


def test_the_homepage_needs_only_mongodb(api_client, catalogue, database_outage):
    """With PostgreSQL unreachable, anonymous homepages are computed from MongoDB alone."""
    database_outage(False)
    response = api_client.get(URL, {"fresh": "true"})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert set(body["data"]["sections"]) == SECTIONS
