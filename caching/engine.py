"""The cache engine: layers, tag generations, SWR, single-flight, stale-if-error.

All behind one call, ``get_or_compute``.

Layers: a small bounded in-process LRU (L1) in front of Redis (L2). Every read,
L1 hits included, checks the entry's tag generations against Redis in the same
round trip as the L2 read, so an invalidation in any process takes effect in
every process at once.

The stale-set race: generations are read *before* computing and stored with
the result, so a value computed from data that an invalidation replaced while
it ran is recorded with the old generation and is stale on its first read.

Single-flight: concurrent misses of one key cause one computation per cluster
(a Redis lock with expiry) and per process (threads wait on the leader's
result). Followers wait, bounded, or get the stale copy when there is one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from django.conf import settings
from django.db import close_old_connections

from . import metrics
from .shared import SharedCacheUnavailable, shared_cache
from .tags import Generations, local_generations, read_generations

logger = logging.getLogger(__name__)

LOCK_POLL_INTERVAL = 0.01  # seconds between looks for another process's result
LOCK_POLL_MAX_INTERVAL = 0.05


@dataclass(frozen=True)
class CachePolicy:
    """How one kind of cached value may be served.

    ``soft_ttl``: served fresh until then. ``hard_ttl``: after the soft TTL a stale
    copy may be served while one refresh runs, until then, if
    ``stale_while_revalidate``; after an invalidation too if
    ``stale_after_invalidation`` (to the one request that starts the refresh).
    ``stale_if_error``: how old a copy may be served when recomputing fails.
    ``verified_reads``: never serve a copy whose tag generations cannot be
    checked (read-your-writes data, during a Redis outage).
    """

    soft_ttl: float
    hard_ttl: float
    stale_while_revalidate: bool = False
    stale_after_invalidation: bool = False
    stale_if_error: float = 0.0
    verified_reads: bool = False


@dataclass(frozen=True)
class Entry:
    """A cached value and the moments that govern serving it."""

    value: Any
    stored_at: float
    fresh_until: float
    usable_until: float
    keep_until: float
    generations: tuple[tuple[str, int], ...]

    @property
    def max_age(self) -> int:
        """Seconds the value is fresh for, from when it was stored."""
        return max(int(self.fresh_until - self.stored_at), 0)


@dataclass
class Computed:
    """What a computation returns: a value, whether it succeeded, and its limits.

    ``ok=False`` (every section failed, say) is not stored; a stale copy is served
    instead if one exists. ``max_age`` caps the TTLs (a partial result is kept
    briefly); ``expires_at`` (epoch seconds) is when the content stops being true.
    """

    value: Any
    ok: bool = True
    max_age: float | None = None
    expires_at: float | None = None


@dataclass
class CacheResult:
    """What ``get_or_compute`` served, and how."""

    value: Any
    from_cache: bool
    stale: bool = False
    ok: bool = True
    layer: str = "none"
    ttl: int = 0
    stored_at: float = field(default_factory=time.time)


class _Flight:
    """One computation in this process that others may wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: CacheResult | None = None
        self.generations: Generations | None = None  # what the computation started from


_l1: LRUCache = LRUCache(maxsize=1)
_l1_lock = threading.Lock()
_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()
_refresher: ThreadPoolExecutor | None = None


def _l1_cache() -> LRUCache:
    """The process's L1, rebuilt if its configured size changed."""
    global _l1
    if _l1.maxsize != max(settings.CACHE_L1_MAX_ENTRIES, 1):
        with _l1_lock:
            _l1 = LRUCache(maxsize=max(settings.CACHE_L1_MAX_ENTRIES, 1))
    return _l1


def _l1_get(key: str) -> Entry | None:
    cache = _l1_cache()
    with _l1_lock:
        return cache.get(key)


def _l1_put(key: str, entry: Entry) -> None:
    if settings.CACHE_L1_MAX_ENTRIES > 0:
        cache = _l1_cache()
        with _l1_lock:
            cache[key] = entry


def clear_local() -> None:
    """Empty this process's L1 (tests; a deploy that changes value shapes)."""
    cache = _l1_cache()
    with _l1_lock:
        cache.clear()


def _matches(entry: Entry, generations: Generations) -> bool:
    return all(generations.get(tag, 0) == gen for tag, gen in entry.generations)


def _make_entry(
    computed: Computed, policy: CachePolicy, generations: Generations, now: float
) -> Entry:
    soft, hard = policy.soft_ttl, policy.hard_ttl
    if computed.max_age is not None:
        soft, hard = min(soft, computed.max_age), min(hard, computed.max_age)
    keep = max(hard, policy.stale_if_error)
    limit = computed.expires_at - now if computed.expires_at is not None else None
    if limit is not None:
        soft, hard, keep = min(soft, limit), min(hard, limit), min(keep, limit)
    return Entry(
        value=computed.value,
        stored_at=now,
        fresh_until=now + soft,
        usable_until=now + hard,
        keep_until=now + keep,
        generations=tuple(sorted(generations.items())),
    )


def store(
    key: str, computed: Computed, *, policy: CachePolicy, generations: Generations
) -> Entry | None:
    """Store a computed value under ``key`` with the generations read before computing."""
    now = time.time()
    entry = _make_entry(computed, policy, generations, now)
    if entry.keep_until <= now:
        return None  # already past its content's end: never cache
    _l1_put(key, entry)
    with contextlib.suppress(SharedCacheUnavailable):  # L1 still holds it
        shared_cache.set(key, entry, entry.keep_until - now)
    return entry


def _read(key: str, tags: Sequence[str], with_l2: bool) -> tuple[Entry | None, Generations, bool]:
    """(L2 entry or None, current generations, verified)."""
    try:
        generations, found = read_generations(tags, [key] if with_l2 else [])
        return found.get(key), generations, True
    except SharedCacheUnavailable:
        return None, local_generations(tags), False


def lookup(
    key: str, tags: Sequence[str], policy: CachePolicy
) -> tuple[Entry | None, str, Generations, bool, Entry | None]:
    """Find the best entry for ``key``.

    Returns (entry, layer, generations, verified, fallback): ``entry`` is a copy
    whose generations match (fresh or not); ``fallback`` any copy still kept
    (for stale-if-error), even if invalidated.
    """
    local = _l1_get(key)
    l2, generations, verified = _read(key, tags, with_l2=local is None)
    now = time.time()
    if (
        local is not None
        and (not _matches(local, generations) or now >= local.fresh_until)
        and verified
    ):
        l2, generations, verified = _read(key, tags, with_l2=True)
    candidates = [(e, layer) for e, layer in ((local, "l1"), (l2, "l2")) if e is not None]
    candidates = [(e, layer) for e, layer in candidates if now < e.keep_until]
    candidates.sort(key=lambda c: c[0].stored_at, reverse=True)
    fallback = candidates[0][0] if candidates else None
    if l2 is not None and (local is None or l2.stored_at > local.stored_at):
        _l1_put(key, l2)
    if not verified and policy.verified_reads:
        return None, "none", generations, verified, fallback
    for entry, layer in candidates:
        if _matches(entry, generations) and now < entry.usable_until:
            return entry, layer, generations, verified, fallback
    return None, "none", generations, verified, fallback


def _result(
    entry: Entry, *, from_cache: bool, stale: bool = False, layer: str = "none", ok: bool = True
):
    return CacheResult(
        entry.value,
        from_cache,
        stale=stale,
        ok=ok,
        layer=layer,
        ttl=entry.max_age,
        stored_at=entry.stored_at,
    )


def _refresh_pool() -> ThreadPoolExecutor:
    global _refresher
    if _refresher is None:
        with _flights_lock:
            if _refresher is None:
                _refresher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cache-refresh")
    return _refresher


def _lock_key(key: str) -> str:
    return f"lock:{key}"


def _try_lock(key: str) -> str | None:
    """A cluster-wide lock token, or None if another process holds the lock.

    Without Redis, the in-process single-flight is all there is: proceed.
    """
    token = uuid.uuid4().hex
    try:
        ttl = settings.REQUEST_TIMEOUT / 1000 + 5
        return token if shared_cache.add(_lock_key(key), token, ttl) else None
    except SharedCacheUnavailable:
        return token


def _unlock(key: str, token: str) -> None:
    try:
        if shared_cache.get_many([_lock_key(key)]).get(_lock_key(key)) == token:
            shared_cache.delete(_lock_key(key))
    except SharedCacheUnavailable:
        pass


def _compute_and_store(
    key: str,
    compute: Callable[[], Computed],
    tags: Sequence[str],
    policy: CachePolicy,
    fallback: Entry | None,
    flight: _Flight | None = None,
) -> CacheResult:
    """Run ``compute`` with generations read first; store it, or fall back if it failed."""
    try:
        generations, _ = read_generations(tags)
    except SharedCacheUnavailable:
        generations = local_generations(tags)
    if flight is not None:
        flight.generations = generations
    try:
        computed = compute()
    except Exception:
        if fallback is None or time.time() >= fallback.keep_until:
            raise
        logger.exception("Computing %s failed; serving the last copy", key)
        computed = Computed(value=None, ok=False)
    if computed.ok:
        entry = store(key, computed, policy=policy, generations=generations)
        if entry is not None:
            return _result(entry, from_cache=False)
        return CacheResult(computed.value, False, ttl=0)
    metrics.record(key, "none", "error")
    if fallback is not None and time.time() < fallback.keep_until:
        return _result(fallback, from_cache=True, stale=True, layer="l2", ok=True)
    return CacheResult(computed.value, False, ok=False, ttl=0)


def _wait_for_other_process(key: str, tags: Sequence[str]) -> CacheResult | None:
    """Poll for the entry another process is computing, up to the request budget."""
    deadline = time.monotonic() + settings.REQUEST_TIMEOUT / 1000
    interval = LOCK_POLL_INTERVAL
    while time.monotonic() < deadline:
        time.sleep(interval)  # waiting on another process; no event crosses processes
        interval = min(interval * 1.5, LOCK_POLL_MAX_INTERVAL)
        l2, generations, verified = _read(key, tags, with_l2=True)
        if not verified:
            return None
        if l2 is not None and _matches(l2, generations) and time.time() < l2.usable_until:
            _l1_put(key, l2)
            return _result(l2, from_cache=True, layer="l2")
        try:
            if not shared_cache.get_many([_lock_key(key)]):
                return None  # the other process gave up without storing
        except SharedCacheUnavailable:
            return None
    return None


def _started_before(flight: _Flight, generations: Generations) -> bool:
    """True if the leader computed from generations older than ours (a write since)."""
    if flight.generations is None:
        return False
    return any(flight.generations.get(tag, 0) < gen for tag, gen in generations.items())


def _follow(key, flight: _Flight, compute, tags, policy, fallback, generations) -> CacheResult:
    """Wait for this process's leader; compute ourselves if it takes too long.

    A leader that started before an invalidation we have already seen may
    return data older than a write our caller must see: then compute again.
    """
    if (
        flight.done.wait(settings.REQUEST_TIMEOUT / 1000)
        and flight.result is not None
        and not _started_before(flight, generations)
    ):
        metrics.record(key, "none", "coalesced")
        shared = flight.result  # computed while we waited: as fresh as our own would be
        return CacheResult(
            shared.value,
            shared.from_cache,
            stale=shared.stale,
            ok=shared.ok,
            layer="flight",
            ttl=shared.ttl,
            stored_at=shared.stored_at,
        )
    return _compute_and_store(key, compute, tags, policy, fallback)


def _single_flight(
    key: str,
    compute: Callable[[], Computed],
    tags: Sequence[str],
    policy: CachePolicy,
    fallback: Entry | None,
    generations: Generations,
) -> CacheResult:
    with _flights_lock:
        flight = _flights.get(key)
        leader = flight is None
        if leader:
            flight = _flights[key] = _Flight()
    if not leader:
        return _follow(key, flight, compute, tags, policy, fallback, generations)
    result: CacheResult | None = None
    try:
        token = _try_lock(key)
        if token is None:  # another process computes it: take its result
            result = _wait_for_other_process(key, tags)
        if result is None:
            try:
                result = _compute_and_store(key, compute, tags, policy, fallback, flight)
            finally:
                if token is not None:
                    _unlock(key, token)
        return result
    finally:
        flight.result = result
        flight.done.set()
        with _flights_lock:
            _flights.pop(key, None)


def _start_refresh(
    key: str, compute: Callable[[], Computed], tags: Sequence[str], policy: CachePolicy
) -> bool:
    """Recompute ``key`` once in the background; False if a refresh already runs.

    The refresh is a flight like any other: requests in this process that miss
    meanwhile wait for it instead of computing again.
    """
    with _flights_lock:
        if key in _flights:
            return False
        flight = _flights[key] = _Flight()
    token = _try_lock(key)
    if token is None:
        with _flights_lock:
            _flights.pop(key, None)
        flight.done.set()
        return False

    def run() -> None:
        close_old_connections()
        try:
            flight.result = _compute_and_store(key, compute, tags, policy, None, flight)
        except Exception:
            logger.exception("Background refresh of %s failed", key)
        finally:
            _unlock(key, token)
            flight.done.set()
            with _flights_lock:
                _flights.pop(key, None)
            close_old_connections()

    _refresh_pool().submit(run)
    return True


def get_or_compute(
    key: str,
    compute: Callable[[], Computed],
    *,
    tags: Sequence[str] = (),
    policy: CachePolicy,
    bypass: bool = False,
) -> CacheResult:
    """Serve ``key`` from the cache, or compute it once and cache it (and count it).

    Past its soft TTL a copy is served stale to everyone while one background
    refresh runs (``stale_while_revalidate``). After an invalidation the old
    copy is served to one request only, the one that starts the refresh; the
    others wait for the new value. ``bypass`` (``fresh=true``) never serves a
    copy but still goes through single-flight and stores the result.
    Never raises for a cache failure; raises what ``compute`` raises only when
    there is no copy to fall back on.
    """
    try:
        return _get_or_compute(key, compute, sorted(set(tags)), policy, bypass)
    finally:
        flush_stats()


def flush_stats(force: bool = False) -> None:
    """Add this process's counts to the cluster-wide totals, at most every few seconds."""
    counts = metrics.take_pending(force)
    if counts:
        try:
            shared_cache.hincrby_many(metrics.STATS_KEY, counts)
        except SharedCacheUnavailable:
            metrics.restore_pending(counts)


def cluster_stats() -> dict[str, dict[str, int]]:
    """Counts per namespace (``namespace|layer|outcome`` fields summed by outcome)."""
    flush_stats(force=True)
    try:
        raw = shared_cache.hgetall(metrics.STATS_KEY)
    except SharedCacheUnavailable:
        raw = {}
    stats: dict[str, dict[str, int]] = {}
    for field_name, count in raw.items():
        namespace, layer, outcome = field_name.split("|")
        row = stats.setdefault(namespace, {})
        row[outcome] = row.get(outcome, 0) + count
        row[f"{layer}_{outcome}"] = row.get(f"{layer}_{outcome}", 0) + count
    return stats


def _get_or_compute(
    key: str,
    compute: Callable[[], Computed],
    tags: list[str],
    policy: CachePolicy,
    bypass: bool,
) -> CacheResult:
    entry, layer, generations, _, fallback = lookup(key, tags, policy)
    now = time.time()
    if entry is not None and not bypass:
        if now < entry.fresh_until:
            metrics.record(key, layer, "hit")
            return _result(entry, from_cache=True, layer=layer)
        if policy.stale_while_revalidate:
            metrics.record(key, layer, "stale")
            _start_refresh(key, compute, tags, policy)
            return _result(entry, from_cache=True, stale=True, layer=layer)
    elif (
        fallback is not None
        and not bypass
        and policy.stale_while_revalidate
        and policy.stale_after_invalidation
        and now < fallback.usable_until
        and _start_refresh(key, compute, tags, policy)
    ):
        metrics.record(key, "l2", "stale")
        return _result(fallback, from_cache=True, stale=True, layer="l2")
    metrics.record(key, "none", "miss")
    return _single_flight(key, compute, tags, policy, fallback, generations)


def lookup_many(keys: dict[str, Sequence[str]]) -> tuple[dict[str, Any], Generations]:
    """Fresh values for many keys, each with its own tags, and the generations read.

    One round trip for everything. The generations are those to store new
    values with (they were read before anything is recomputed). Without Redis
    nothing can be verified and nothing is returned.
    """
    all_tags = sorted({t for tags in keys.values() for t in tags})
    now = time.time()
    local = {k: _l1_get(k) for k in keys}
    need_l2 = [k for k, e in local.items() if e is None or now >= e.fresh_until]
    try:
        generations, found = read_generations(all_tags, need_l2)
    except SharedCacheUnavailable:
        return {}, local_generations(all_tags)
    values: dict[str, Any] = {}
    for key in keys:
        for entry, layer in ((local.get(key), "l1"), (found.get(key), "l2")):
            if entry is not None and _matches(entry, generations) and now < entry.fresh_until:
                values[key] = entry.value
                metrics.record(key, layer, "hit")
                if layer == "l2":
                    _l1_put(key, entry)
                break
        else:
            metrics.record(key, "none", "miss")
    return values, generations
