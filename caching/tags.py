"""Tag generations: invalidation as one cheap counter increment per tag.

Every cached value records the generation of each tag it depends on
(``products``, ``user:42``, ``trainer:7``...). Invalidating a tag increments its
counter in Redis; a read compares generations and treats any difference as
stale. No key is ever searched for or deleted by pattern.

A missing counter (never used, evicted, or lost in a Redis restart, failover
or flush) is created at the current time in microseconds, on read as on write
(``SET NX``), so a counter that comes back is always larger than any value it
had before and an entry stored before the loss can never match it again. (That
holds while a tag is bumped less than a million times a second on average.)

When Redis is unreachable a bump is recorded in this process (so this process
stops serving what it invalidated at once) and replayed to Redis when it
returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from . import metrics
from .keys import cache_shards, shard_of, tag_key
from .process import register_state
from .shared import SharedCacheUnavailable, shared_cache

logger = logging.getLogger(__name__)

Generations = dict[str, int]
# Called with the sorted tags of one bump (or replay); what it returns is ignored.
InvalidationHook = Callable[[list[str]], object]
# Called with the tags a transaction will bump on commit, and its database alias.
AnnounceHook = Callable[[list[str], str | None], object]

_local_lock = threading.Lock()
_local_bumps: dict[str, int] = {}  # tag -> bumps made here while Redis was away
_listeners: list[InvalidationHook] = []
_before_hooks: list[InvalidationHook] = []
_announcers: list[AnnounceHook] = []


def _seed() -> int:
    return time.time_ns() // 1_000


def _incr(tags: list[str]) -> None:
    """Increment the counters of ``tags`` (a tag named twice, twice), durably: one round trip.

    Every shard's copy of each (on a cluster: a pipeline per master).

    Durably: behind Sentinel or a Cluster a bump counts as done only once
    ``REDIS_WAIT_REPLICAS`` replicas have it, so the replica a failover
    promotes cannot bring back the generation before it (an entry stored
    before the write would match again). Raises ``SharedCacheUnavailable``.
    """
    shared_cache.incr_replicated(
        [tag_key(t, shard) for t in tags for shard in range(cache_shards())],
        _seed(),
        replicas=settings.REDIS_WAIT_REPLICAS,
        timeout_ms=settings.REDIS_WAIT_TIMEOUT_MS,
    )


def generation_keys(tags: Iterable[str], shard_key: str) -> list[str]:
    """The counters of ``tags``' generations for the entry ``shard_key`` (its shard's copies)."""
    shard = shard_of(shard_key)
    return [tag_key(t, shard) for t in tags]


def read_generations(
    tags: Iterable[str], extra_keys: Iterable[str] = (), *, shard_key: str | None = None
) -> tuple[Generations, dict[str, Any]]:
    """Current generations of ``tags`` and the values of ``extra_keys``: one round trip.

    ``shard_key``: the entry the generations are for (the first of
    ``extra_keys`` by default). On a cluster each tag has a copy per cache
    shard and the copies of the entry's shard are read, in its hash slot; an
    entry must always be stored and checked with the same shard's copies.
    Raises ``SharedCacheUnavailable`` when Redis cannot answer.
    """
    tags = list(tags)
    extra = list(extra_keys)
    if shard_key is None:
        shard_key = extra[0] if extra else ""
    keys = dict(zip(tags, generation_keys(tags, shard_key), strict=True))
    found = shared_cache.get_many([*extra, *keys.values()])
    missing = [keys[t] for t in tags if keys[t] not in found]
    if missing:  # first use, or lost: create them (rare), then read what won
        found.update(shared_cache.seed_counters(missing, _seed()))
    generations = {t: int(found[keys[t]]) for t in tags}
    with _local_lock:
        for tag in tags:
            generations[tag] += _local_bumps.get(tag, 0)
    return generations, {k: found[k] for k in extra if k in found}


def read_generations_per_key(
    keys: dict[str, Sequence[str]], entries: Iterable[str]
) -> tuple[dict[str, Generations], dict[str, Any]]:
    """Generations for several keys (each its tags, in its own shard) and ``entries``' values.

    One round trip: on one shard a single ``MGET``; on a cluster one ``MGET``
    per hash slot, pipelined. Returns (generations per key, values found).
    """
    entries = list(entries)
    wanted = {key: {t: tag_key(t, shard_of(key)) for t in tags} for key, tags in keys.items()}
    counters = sorted({c for per_key in wanted.values() for c in per_key.values()})
    found = shared_cache.get_many([*entries, *counters])
    missing = [c for c in counters if c not in found]
    if missing:
        found.update(shared_cache.seed_counters(missing, _seed()))
    with _local_lock:
        local = dict(_local_bumps)
    per_key = {
        key: {t: int(found[c]) + local.get(t, 0) for t, c in counters_of.items()}
        for key, counters_of in wanted.items()
    }
    return per_key, {k: found[k] for k in entries if k in found}


def local_generations(tags: Iterable[str]) -> Generations:
    """What this process knows without Redis: only its own unreplayed bumps."""
    with _local_lock:
        return {t: _local_bumps.get(t, 0) for t in tags}


def bump(tags: Iterable[str]) -> None:
    """Invalidate ``tags`` now (prefer ``invalidate_on_commit`` inside transactions)."""
    tags = sorted(set(tags))
    if not tags:
        return
    _before(tags)
    for tag in tags:
        metrics.invalidations_total.labels(tag.split(":")[0]).inc()
    try:
        _incr(tags)  # one round trip
    except SharedCacheUnavailable:
        with _local_lock:
            for tag in tags:
                _local_bumps[tag] = _local_bumps.get(tag, 0) + 1
        logger.warning("Invalidation of %s kept locally until Redis returns", ", ".join(tags))
    for listener in _listeners:
        try:
            listener(tags)
        except Exception:
            logger.exception("Invalidation listener failed for %s", tags)


_pending = threading.local()


def _flush_pending() -> None:
    tags = getattr(_pending, "tags", None)
    if tags:
        _pending.tags = set()
        bump(tags)


def invalidate_on_commit(tags: Iterable[str], using: str | None = None) -> None:
    """Bump ``tags`` once the current transaction commits (at once outside one).

    ``using``: the database written (the storefront's may be another one than
    the default: a bump waits for that database's transaction, not another's).

    Synchronous and independent of Celery: the bump has happened by the time
    the request that made the write returns its response. Tags named many
    times in one transaction (a bulk delete sends a signal per row) are bumped
    once.
    """
    tags = set(tags)
    if not tags:
        return
    if _announcers and transaction.get_connection(using).in_atomic_block:
        for announce in _announcers:  # before on_commit below: see ``capture.announce``
            announce(sorted(tags), using)
    if not hasattr(_pending, "tags"):
        _pending.tags = set()
    _pending.tags |= tags
    transaction.on_commit(_flush_pending, using=using, robust=True)


def on_transaction_tags(announce: AnnounceHook) -> None:
    """Call ``announce(tags, using)`` inside a transaction as it names tags to bump on commit.

    Called before the bump is scheduled, on the transaction's connection, so
    what it writes commits or rolls back with the transaction (the change
    listener's marker: ``capture.announce``). Not called outside a transaction.
    """
    _announcers.append(announce)


def on_invalidation(listener: InvalidationHook) -> None:
    """Call ``listener(tags)`` after every bump (used to schedule re-warming)."""
    _listeners.append(listener)


def before_invalidation(hook: InvalidationHook) -> None:
    """Call ``hook(tags)`` before every bump and replay, before any reader can see it.

    (Read replicas record the write's position in the WAL here: a reader that
    sees the new generation must also see where the write is.)
    """
    _before_hooks.append(hook)


def _before(tags: list[str]) -> None:
    for hook in _before_hooks:
        try:
            hook(tags)
        except Exception:
            logger.exception("Invalidation hook failed for %s", tags)


def replay_local_bumps() -> None:
    """Write bumps made during an outage to Redis (runs when Redis is back)."""
    with _local_lock:
        pending = dict(_local_bumps)
    if pending:
        _before(sorted(pending))
    _incr([tag for tag, count in pending.items() for _ in range(count)])
    with _local_lock:
        for tag, count in pending.items():
            _local_bumps[tag] -= count
            if _local_bumps[tag] <= 0:
                del _local_bumps[tag]
    if pending:
        logger.warning("Replayed %d invalidation(s) kept during the outage", sum(pending.values()))


shared_cache.on_recovery(replay_local_bumps)


def _forget_local_bumps() -> None:
    with _local_lock:
        _local_bumps.clear()


register_state("tags: bumps made while Redis was away", _forget_local_bumps)
