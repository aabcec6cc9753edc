"""Section time limits and failures on MongoDB (``aggregation/deadlines.py``, --storefront=mongodb).

A frozen and an unreachable storefront, one coming back, an import into one
that is away, and the homepage with PostgreSQL away. (The collections and
indexes: ``tests/homepage/test_mongodb.py``.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pymongo import monitoring

from aggregation.deadlines import mongodb
from api.errors import ErrorCode
from caching.tags import bump
from tests.homepage.factories import small_catalogue
from tests.servers import FreezableProxy, free_port
from tests.storefront import storefront_connection
from tests.waiting import wait_until

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
    small_catalogue()


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
