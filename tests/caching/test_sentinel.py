"""The cache behind Redis Sentinel: a primary, a replica and three sentinels the tests start.

The service finds the primary through the sentinels (``REDIS_SENTINELS``,
``REDIS_SENTINEL_MASTER``) and follows a failover without a restart; an
invalidation counts as done only once a replica has it, so the replica a
failover promotes never brings back a generation a write has moved past.
"""

from __future__ import annotations

import contextlib

import pytest
from django.core.cache import caches
from django.db import connection
from django_redis.pool import ConnectionFactory
from rest_framework.authtoken.models import Token

from caching import tags
from caching.keys import tag_key
from caching.shared import SharedCacheUnavailable, shared_cache
from config.redis import RedisSettings, cache_location_and_options
from tests.caching.topology import (
    HOMEPAGE,
    assert_failover_under_load,
    assert_hits,
    assert_read_your_writes,
    call,
)
from tests.homepage.factories import ProductFactory
from tests.servers import SentinelSet, gunicorn
from tests.trainers.factories import TrainerFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sentinels():
    group = SentinelSet()
    try:
        group.start()
        yield group
    finally:
        group.close()


@pytest.fixture
def on_sentinels(settings, sentinels):
    """The cache of the test process through the sentinels, as the settings build it."""
    location, options = cache_location_and_options(
        RedisSettings(sentinels=tuple(sentinels.addresses.split(",")), sentinel_master="cache"),
        connect_timeout=2.0,
        socket_timeout=2.0,
    )
    default = settings.CACHES["default"]
    settings.CACHES = {"default": {**default, "LOCATION": location, "OPTIONS": options}}
    settings.REDIS_WAIT_REPLICAS = 1
    settings.REDIS_WAIT_TIMEOUT_MS = 200
    settings.CACHE_REDIS_RETRY_AFTER_S = 0.2
    # django-redis keeps a pool per URL for the process: not the last test's sentinels.
    ConnectionFactory._pools.pop(location, None)
    try:
        yield sentinels
    finally:
        caches["default"].close()
        ConnectionFactory._pools.pop(location, None)


def _counter(client, tag: str) -> int | None:
    value = client.get(f"agg:1:{tag_key(tag)}")
    return int(value) if value is not None else None


def test_an_invalidation_is_on_the_replica_when_it_returns(on_sentinels):
    tags.bump(["products"])
    primary = _counter(on_sentinels.primary.client(), "products")
    assert primary is not None
    # WAIT: the replica has it the moment bump returns, not eventually.
    assert _counter(on_sentinels.replica.client(), "products") == primary


def test_an_invalidation_no_replica_acknowledged_is_not_taken_as_done(on_sentinels):
    tags.bump(["products"])
    on_sentinels.replica.stop()
    tags.bump(["products"])
    # Kept in this process, to be written again once a replica has it: a failover
    # to a replica that missed it would otherwise bring the older generation back.
    assert tags.local_generations(["products"]) == {"products": 1}
    assert not shared_cache.available
    on_sentinels.replica.start()  # a replica of the primary again

    def replayed() -> bool:
        with contextlib.suppress(SharedCacheUnavailable):  # (the breaker, until it retries)
            tags.read_generations(["products"])  # the first call after the outage replays
        return tags.local_generations(["products"]) == {"products": 0}

    wait_until(replayed, timeout=30, message="the kept invalidation was never written")
    primary = _counter(on_sentinels.primary.client(), "products")
    assert _counter(on_sentinels.replica.client(), "products") == primary


def test_the_service_follows_a_failover(api_client, on_sentinels):
    ProductFactory()
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is False
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is True
    before = tags.read_generations(["products"])[0]["products"]
    on_sentinels.failover()
    new_primary = on_sentinels.replica.client()

    def invalidations_reach_the_new_primary() -> bool:
        assert api_client.get(HOMEPAGE).status_code == 200  # served throughout
        ProductFactory()  # bumps "products" on commit
        counter = _counter(new_primary, "products")
        return shared_cache.available and counter is not None and counter > before

    wait_until(invalidations_reach_the_new_primary, timeout=30, interval=0.2,
               message="the service never wrote to the new primary")  # fmt: skip
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is False
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is True


@pytest.fixture
def served(sentinels):
    """The service under gunicorn (two workers), its cache through the sentinels."""
    env = {"REDIS_URL": "", "REDIS_SENTINELS": sentinels.addresses, "REDIS_SENTINEL_MASTER":
           "cache", "CACHE_REDIS_RETRY_AFTER_S": "0.5"}  # fmt: skip
    with gunicorn(connection.settings_dict["NAME"], **env) as base:
        yield base


def test_hits_read_your_writes_and_a_failover_under_load(served, sentinels):
    ProductFactory.create_batch(3)
    trainer = TrainerFactory()
    token = Token.objects.create(user=trainer.user).key
    assert call(served, "/health/ready")[0] == 200  # the cache check passes on it
    assert_hits(served, HOMEPAGE)
    assert_hits(served, f"/api/v1/trainers/{trainer.pk}/bootstrap", token)
    assert any(b"homepage" in k for k in sentinels.primary.client().keys("*"))
    assert_read_your_writes(served, token, trainer.pk)
    assert_failover_under_load(served, token, trainer.pk, sentinels.failover)
    assert sentinels.master_port() == sentinels.replica.port
    # Writes go to the new primary (the old one becomes its replica).
    wait_until(lambda: sentinels.primary.client().info("replication")["role"] == "slave",
               timeout=30, message="the old primary was never made a replica")  # fmt: skip
    counter = f"agg:1:{tag_key(f'trainer:{trainer.pk}')}"
    before = int(sentinels.replica.client().get(counter))
    profile = f"/api/v1/trainers/{trainer.pk}/profile"
    assert call(served, profile, token, {"bio": "after"}, "PATCH")[0] == 200
    assert int(sentinels.replica.client().get(counter)) > before
