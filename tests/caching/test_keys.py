"""The key scheme of cache shards (Redis Cluster): slots, shards, hash tags."""

from __future__ import annotations

from collections import Counter

from redis.crc import key_slot

from caching.keys import (
    CLUSTER_SLOTS,
    beside,
    in_shard,
    shard_hash_tag,
    shard_of,
    sharded_key,
    sharded_key_function,
    tag_key,
)


def test_one_shard_leaves_every_key_as_it_was(settings):
    settings.CACHE_SHARDS = 1
    assert tag_key("products", 0) == "tag:products"
    assert sharded_key("homepage:anonymous:v1") == "homepage:anonymous:v1"
    assert beside("trainer:owner:7", "trainer:bootstrap:7") == "trainer:owner:7"


def test_each_shard_owns_its_share_of_the_slots():
    for shard in range(16):
        tag = shard_hash_tag(shard, 16)
        slot = key_slot(tag.strip("{}").encode())
        assert shard * CLUSTER_SLOTS // 16 <= slot < (shard + 1) * CLUSTER_SLOTS // 16


def test_an_entry_and_its_tag_copies_share_a_slot(settings):
    settings.CACHE_SHARDS = 16
    key = "homepage:anonymous:v1"
    physical = sharded_key_function(key, "agg", 1)
    copy = sharded_key_function(tag_key("products", shard_of(key)), "agg", 1)
    assert physical.startswith("agg:1:{s") and physical.endswith(key)
    assert key_slot(physical.encode()) == key_slot(copy.encode())


def test_a_key_placed_beside_another_shares_its_slot_and_shard(settings):
    settings.CACHE_SHARDS = 16
    bootstrap = "trainer:bootstrap:7"
    owner = beside("trainer:owner:7", bootstrap)
    assert shard_of(owner) == shard_of(bootstrap)
    assert sharded_key(owner) == owner  # (it names its shard: not hashed again)
    assert key_slot(sharded_key_function(owner, "agg", 1).encode()) == key_slot(
        sharded_key_function(bootstrap, "agg", 1).encode()
    )
    assert in_shard("x", 3).startswith(shard_hash_tag(3, 16))


def test_keys_spread_over_the_shards(settings):
    settings.CACHE_SHARDS = 16
    shards = Counter(shard_of(f"trainer:bootstrap:{i}") for i in range(1600))
    assert len(shards) == 16
    assert min(shards.values()) > 50  # about 100 each
