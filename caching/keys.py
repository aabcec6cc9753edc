"""The engine's own Redis keys, in one place.

Domain apps name the keys of their datasets in their own ``keys.py``; these are
the keys the engine keeps beside them (generations, locks, bookkeeping). All
sit under django-redis's ``KEY_PREFIX``. None is ever found by scanning.
"""

from __future__ import annotations

import functools
import zlib

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

CLUSTER_SLOTS = 16_384  # Redis Cluster's hash slots

STATS_KEY = "cache:stats"  # hash: "namespace|layer|outcome" -> count, all processes
WARM_RUNS_KEY = "warm:runs"  # hash: task name -> runs
REWARM_TAGS_KEY = "rewarm:tags"  # set: tags invalidated since the pending re-warm was scheduled
REWARM_SCHEDULED_KEY = "rewarm:scheduled"  # flag: a re-warm is scheduled and has not started
CONSISTENCY_SAMPLES_KEY = "consistency:samples"  # sorted set: tracked entries, by store time
CONSISTENCY_KEY = "consistency:stats"  # hash: "namespace|sampled" / "namespace|inconsistent"
CONSISTENCY_PASSES_KEY = "consistency:passes"  # sorted set: each pass's counts, by time
TAG_LSN_KEY = "tag:lsn"  # sorted set: tag -> WAL position of its latest write (replicas)
EDGE_STATUS_KEY = "edge:status"  # hash: last_ok / last_failed / last_abandoned / last_error
LISTENER_STATUS_KEY = "listener:status"  # hash: the change listener's state (listener.status)


def tag_key(tag: str, shard: int = 0) -> str:
    """The counter holding a tag's generation (the copy of cache shard ``shard``).

    One shard (one server, Sentinel): ``tag:products``. On a cluster each tag
    has a copy per shard, in that shard's hash slot: ``{s3.0}tag:products``.
    """
    return in_shard(f"tag:{tag}", shard)


# --- Cache shards (Redis Cluster) ----------------------------------------------
# On a cluster, a hit reads an entry and its tags' generations in one MGET, and
# an MGET only reads keys of one hash slot. So every key belongs to one of
# CACHE_SHARDS shards, each a hash tag ({s3.0}) whose slot lies in its own
# 1/CACHE_SHARDS of the slot range (spread over the masters as the slots are);
# an entry lives in the shard its key hashes to, and each tag keeps one counter
# copy per shard, so an entry's tags are read beside it. A bump increments
# every copy (bumps are rare next to reads). With one shard nothing changes.


@functools.cache  # asked several times per request; settings change only in tests
def cache_shards() -> int:
    """How many shards keys are spread over (``CACHE_SHARDS``; 1: no hash tags)."""
    return int(settings.CACHE_SHARDS)


@receiver(setting_changed)
def _settings_changed(setting: str, **_: object) -> None:
    if setting == "CACHE_SHARDS":
        cache_shards.cache_clear()


def shard_of(key: str) -> int:
    """The shard of a logical key: the one it names (``beside``), else a stable hash of it."""
    shards = cache_shards()
    if shards == 1:
        return 0
    if key.startswith("{s") and "." in key:  # placed by ``in_shard``: {s<shard>.<n>}...
        return int(key[2 : key.index(".")])
    return zlib.crc32(key.encode()) % shards


def beside(key: str, other: str) -> str:
    """``key`` placed in ``other``'s shard, so one ``MGET`` reads both (itself with one shard)."""
    return in_shard(key, shard_of(other))


@functools.cache
def shard_hash_tag(shard: int, shards: int) -> str:
    """The hash tag of ``shard`` of ``shards``: the first ``s<shard>.<n>`` in its slot range."""
    from redis.crc import key_slot  # (only on a cluster: the embedded mode has no redis-py)

    low, high = shard * CLUSTER_SLOTS // shards, (shard + 1) * CLUSTER_SLOTS // shards
    n = 0
    while not low <= key_slot(f"s{shard}.{n}".encode()) < high:
        n += 1
    return f"{{s{shard}.{n}}}"


def in_shard(key: str, shard: int) -> str:
    """``key`` placed in ``shard`` (prefixed by its hash tag); itself with one shard."""
    shards = cache_shards()
    return key if shards == 1 else f"{shard_hash_tag(shard, shards)}{key}"


def sharded_key(key: str) -> str:
    """Where a logical key is stored: in the shard it hashes to, unless it names one.

    A key starting with ``{`` already carries its hash tag (a tag's copy);
    any other gets the hash tag of its own shard in front, so Redis, which
    hashes the first ``{...}``, never hashes a brace found inside the key.
    """
    return key if key.startswith("{") else in_shard(key, shard_of(key))


def sharded_key_function(key: str, key_prefix: str, version: int) -> str:
    """Django's ``KEY_FUNCTION`` on a cluster: ``agg:1:{s3.0}homepage:anonymous:v1``."""
    return f"{key_prefix}:{version}:{sharded_key(key)}"


def lock_key(key: str) -> str:
    """The single-flight lock of one cache entry, held by the process computing it."""
    return f"lock:{key}"


def recent_key(kind: str) -> str:
    """The sorted set of recently active ids of ``kind`` (what warmers keep warm)."""
    return f"recent:{kind}"


def last_warm_key(name: str) -> str:
    """When the warmer ``name`` last ran (epoch seconds)."""
    return f"warm:last:{name}"
