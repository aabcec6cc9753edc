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
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from . import metrics
from .keys import tag_key
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


def read_generations(
    tags: Iterable[str], extra_keys: Iterable[str] = ()
) -> tuple[Generations, dict[str, Any]]:
    """Current generations of ``tags`` and the values of ``extra_keys``: one round trip.

    Raises ``SharedCacheUnavailable`` when Redis cannot answer.
    """
    tags = list(tags)
    extra = list(extra_keys)
    found = shared_cache.get_many([*extra, *(tag_key(t) for t in tags)])
    missing = [tag_key(t) for t in tags if tag_key(t) not in found]
    if missing:  # first use, or lost: create them (rare), then read what won
        found.update(shared_cache.seed_counters(missing, _seed()))
    generations = {t: int(found[tag_key(t)]) for t in tags}
    with _local_lock:
        for tag in tags:
            generations[tag] += _local_bumps.get(tag, 0)
    return generations, {k: found[k] for k in extra if k in found}


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
        shared_cache.incr_many([tag_key(tag) for tag in tags], _seed())  # one round trip
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
    for tag, count in pending.items():
        for _ in range(count):
            shared_cache.incr(tag_key(tag), _seed())
        with _local_lock:
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
