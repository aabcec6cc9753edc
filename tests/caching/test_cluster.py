"""The cache on a Redis Cluster the tests start: three masters, three replicas.

Keys are spread over cache shards (hash tags), an entry and the copies of its
tags' generations share one hash slot, so a hit is one ``MGET`` on one
master; a bump increments every copy, on every master, and waits for a
replica of each.
"""

from __future__ import annotations

import pytest
import redis
from django.core.cache import caches
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from caching import flight, metrics, tags
from caching.keys import cache_shards, shard_of, tag_key
from caching.local import clear_local
from caching.shared import shared_cache
from config.redis import RedisSettings, cache_location_and_options
from tests.caching.topology import (
    HOMEPAGE,
    assert_failover_under_load,
    assert_hits,
    assert_read_your_writes,
    call,
)
from tests.homepage.factories import ProductFactory
from tests.servers import RedisCluster, gunicorn
from tests.trainers.factories import TrainerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def cluster():
    servers = RedisCluster()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


@pytest.fixture
def on_cluster(settings, cluster):
    """The cache of the test process on the cluster, as the settings build it."""
    location, options = cache_location_and_options(
        RedisSettings(cluster_nodes=tuple(cluster.addresses.split(","))),
        connect_timeout=2.0,
        socket_timeout=2.0,
    )
    default = settings.CACHES["default"]
    settings.CACHES = {"default": {**default, "LOCATION": location, "OPTIONS": options,
                                   "KEY_FUNCTION": "caching.keys.sharded_key_function"}}  # fmt: skip
    settings.CACHE_SHARDS = 16
    settings.REDIS_WAIT_REPLICAS = 1
    settings.RATELIMIT_ENABLE = False  # the limiter's counter is a round trip of its own
    for master in cluster.masters():
        master.client().flushall()
    try:
        yield cluster
    finally:
        caches["default"].close()


def _commands(cluster: RedisCluster, action) -> dict[int, dict[str, int]]:
    """The commands each master ran during ``action()`` (masters that ran none left out)."""
    masters = cluster.masters()
    counted: dict[int, dict[str, int]] = {}

    def nested(index: int) -> None:
        if index == len(masters):
            action()
            return
        ran = masters[index].commands_during(lambda: nested(index + 1))
        if ran:
            counted[masters[index].port] = ran

    nested(0)
    return counted


def _keys_per_master(cluster: RedisCluster, part: bytes) -> dict[int, int]:
    return {m.port: sum(part in k for k in m.client().keys("*")) for m in cluster.masters()}


def test_an_anonymous_homepage_hit_is_one_mget_on_one_master(on_cluster):
    ProductFactory()
    client = APIClient()
    assert client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is False
    client.get(HOMEPAGE)  # (every connection it needs is open)

    def hit() -> None:
        response = client.get(HOMEPAGE)
        assert response["X-Cache"] == "HIT"
        assert response.json()["data"]["metadata"]["fromCache"] is True

    metrics.flush_stats(force=True)  # so the request does not flush counters itself
    assert list(_commands(on_cluster, hit).values()) == [{"cmdstat_mget": 1}]


def test_a_bootstrap_hit_is_one_pipelined_read(client_for, on_cluster):
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert client.get(url).status_code == 200

    def hit() -> None:
        assert client.get(url).json()["data"]["metadata"]["fromCache"] is True

    hit()  # (every connection it needs is open)

    metrics.flush_stats(force=True)
    ran = _commands(on_cluster, hit)
    # The bootstrap and its generation in one slot; the caller's token in its
    # own: one MGET per slot, sent together in one pipeline, nothing else.
    assert all(set(commands) == {"cmdstat_mget"} for commands in ran.values()), ran
    assert 1 <= sum(commands["cmdstat_mget"] for commands in ran.values()) <= 2


def test_entries_spread_over_the_masters(client_for, on_cluster):
    trainers = TrainerFactory.create_batch(12)
    for trainer in trainers:
        assert (
            client_for(trainer.user).get(f"/api/v1/trainers/{trainer.pk}/bootstrap").status_code
            == 200
        )
    holding = [port for port, n in _keys_per_master(on_cluster, b"trainer:bootstrap:").items() if n]
    assert len(holding) >= 2
    copies = _keys_per_master(on_cluster, b"tag:trainer:")
    assert all(copies.values())  # each tag has a copy in every shard, so on every master


def test_a_bump_changes_every_copy_and_reaches_their_replicas(on_cluster):
    tags.read_generations(["products"])  # seeds one copy
    tags.bump(["products"])
    copies = [tag_key("products", shard) for shard in range(cache_shards())]
    values = caches["default"].get_many(copies)
    assert len(values) == cache_shards()
    for master in on_cluster.masters():
        replica = redis.Redis(
            port=on_cluster.replica_of(master).port, single_connection_client=True
        )
        replica.execute_command("READONLY")  # (a replica redirects reads otherwise)
        for key in master.client().keys("*tag:products"):
            assert replica.get(key) == master.client().get(key)  # WAIT: there on return


def test_a_lost_copy_never_lets_an_older_entry_match(api_client, on_cluster):
    ProductFactory()
    key = "homepage:anonymous:v1"
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is False
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is True
    caches["default"].delete(tag_key("products", shard_of(key)))  # lost (evicted, failover)
    clear_local()  # (L1 is checked against the same copy: only Redis matters here)
    assert api_client.get(HOMEPAGE).json()["data"]["metadata"]["fromCache"] is False


def test_locks_counters_and_bookkeeping_work_across_the_masters(on_cluster):
    """Each structure the service keeps beside the cache, on keys of many slots."""
    assert flight.try_lock("a") and flight.try_lock("a") is None  # SET NX
    token = flight.try_lock("b")
    assert token is not None
    flight.unlock("b", "not ours")
    assert flight.try_lock("b") is None  # compare-and-delete (Lua) left it
    flight.unlock("b", token)
    assert flight.try_lock("b") is not None
    shared_cache.set_each([(f"k{i}", i, 60) for i in range(20)])  # one pipeline, many slots
    assert shared_cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
    shared_cache.add_to_set("set", ["x", "y"])
    assert shared_cache.pop_set("set") == {"x", "y"} and not shared_cache.pop_set("set")
    shared_cache.hincrby_many("hash", {"a": 2, "b": 1})
    assert shared_cache.hgetall("hash") == {"a": 2, "b": 1}
    shared_cache.hset_many("raw", {"at": 1.5})
    assert shared_cache.hgetall_raw("raw") == {"at": "1.5"}
    for score, member in enumerate("abcd"):
        shared_cache.zadd_trim("recent", member, score, keep=3)
    assert shared_cache.ztop("recent", 10) == ["d", "c", "b"]
    assert sorted(shared_cache.zsample("recent", 5)) == ["b", "c", "d"]
    shared_cache.zadd_max("lsn", {"t": 5.0})
    shared_cache.zadd_max("lsn", {"t": 3.0})
    assert shared_cache.zscores("lsn", ["t", "u"]) == [5.0, None]
    holding = {port for port, n in _keys_per_master(on_cluster, b"").items() if n}
    assert len(holding) == 3


@pytest.fixture
def served(cluster):
    """The service under gunicorn (two workers), its cache on the cluster."""
    for master in cluster.masters():
        master.client().flushall()
    env = {"REDIS_URL": "", "REDIS_CLUSTER_NODES": cluster.addresses,
           "CACHE_REDIS_RETRY_AFTER_S": "0.5"}  # fmt: skip
    with gunicorn(connection.settings_dict["NAME"], **env) as base:
        yield base


def test_hits_read_your_writes_and_a_failover_under_load(served, cluster):
    ProductFactory.create_batch(3)
    trainer = TrainerFactory()
    token = Token.objects.create(user=trainer.user).key
    assert call(served, "/health/ready")[0] == 200  # the cache check passes on it
    assert_hits(served, HOMEPAGE)
    assert_hits(served, f"/api/v1/trainers/{trainer.pk}/bootstrap", token)
    assert_read_your_writes(served, token, trainer.pk)
    assert len([n for n in _keys_per_master(cluster, b"").values() if n]) >= 2
    # Fail over the master that holds the trainer's bootstrap and its generations.
    holder = next(m for m in cluster.masters() if m.client().keys("*trainer:bootstrap:*"))
    assert_failover_under_load(served, token, trainer.pk, lambda: cluster.failover(holder))
    assert holder not in cluster.masters()
