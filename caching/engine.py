"""The cache engine: layers, tag generations, SWR, single-flight, stale-if-error.

All behind one call, ``get_or_compute``.

Layers: a small bounded in-process LRU (L1, ``local.py``) in front of Redis
(L2). Every read, L1 hits included, checks the entry's tag generations against
Redis in the same round trip as the L2 read, so an invalidation in any process
takes effect in every process at once.

The stale-set race: generations are read *before* computing and stored with
the result, so a value computed from data that an invalidation replaced while
it ran is recorded with the old generation and is stale on its first read.

Single-flight (``flight.py``): concurrent misses of one key cause one
computation per cluster and per process. Followers wait, bounded, and never
accept a result that started before something they must see.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections

from . import flight as flights
from . import metrics
from .local import local_get, local_put
from .process import refresh_pool
from .shared import SharedCacheUnavailable, shared_cache
from .tags import (
    Generations,
    generation_keys,
    local_generations,
    read_generations,
    read_generations_per_key,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachePolicy:
    """How one kind of cached value may be served, and under which namespace it is counted.

    ``soft_ttl``: served fresh until then. ``hard_ttl``: after the soft TTL a stale
    copy may be served while one refresh runs, until then, if
    ``stale_while_revalidate``. ``stale_if_error``: how old a copy may be served
    when recomputing fails. ``verified_reads``: never serve a copy whose tag
    generations cannot be checked (read-your-writes data, during a Redis outage).
    """

    namespace: str
    soft_ttl: float
    hard_ttl: float
    stale_while_revalidate: bool = False
    stale_if_error: float = 0.0
    verified_reads: bool = False


@dataclass(frozen=True)
class Entry:
    """A cached value and the moments that govern serving it.

    ``computed_from`` is when its computation started (its generations were
    read then): a ``fresh`` read accepts only entries computed after it began.
    """

    value: Any
    stored_at: float
    fresh_until: float
    usable_until: float
    keep_until: float
    generations: tuple[tuple[str, int], ...]
    computed_from: float = 0.0

    @property
    def max_age(self) -> int:
        """Seconds the value is fresh for, from when it was stored."""
        return max(int(self.fresh_until - self.stored_at), 0)

    def matches(self, generations: Generations) -> bool:
        """True when no tag it depends on has been invalidated since it was computed."""
        return all(generations.get(tag) == gen for tag, gen in self.generations)


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

    @classmethod
    def of(
        cls, entry: Entry, *, from_cache: bool, stale: bool = False, layer: str = "none"
    ) -> CacheResult:
        """A result serving ``entry``."""
        return cls(
            entry.value,
            from_cache,
            stale=stale,
            layer=layer,
            ttl=entry.max_age,
            stored_at=entry.stored_at,
        )


@dataclass
class Lookup:
    """What a read found for one key.

    ``entry``: a copy whose generations match (fresh or not) and still usable.
    ``fallback``: the newest copy still kept, even if invalidated (stale-if-error).
    ``verified``: the generations came from Redis (not only this process).
    ``extra``: the values of the other keys asked for in the same round trip.
    """

    entry: Entry | None
    layer: str
    generations: Generations
    verified: bool
    fallback: Entry | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Request:
    """One ``get_or_compute`` call: what to compute, under which rules."""

    key: str
    compute: Callable[[], Computed]
    tags: list[str]
    policy: CachePolicy
    bypass: bool
    read_ahead: Callable[[], Sequence[str]] | None = None
    started: float = field(default_factory=time.time)


def _make_entry(
    computed: Computed, policy: CachePolicy, generations: Generations, started: float, now: float
) -> Entry:
    soft, hard = policy.soft_ttl, policy.hard_ttl
    if computed.max_age is not None:
        soft, hard = min(soft, computed.max_age), min(hard, computed.max_age)
    keep = max(hard, policy.stale_if_error)
    if computed.expires_at is not None:
        limit = computed.expires_at - now
        soft, hard, keep = min(soft, limit), min(hard, limit), min(keep, limit)
    return Entry(
        value=computed.value,
        stored_at=now,
        fresh_until=now + soft,
        usable_until=now + hard,
        keep_until=now + keep,
        generations=tuple(sorted(generations.items())),
        computed_from=started,
    )


def store(
    key: str,
    computed: Computed,
    *,
    policy: CachePolicy,
    generations: Generations,
    started: float | None = None,
) -> Entry | None:
    """Store a computed value under ``key`` with the generations read before computing.

    ``started``: when the computation began (defaults to now). Returns the
    entry, or None when its content had already expired (nothing is stored).
    """
    now = time.time()
    entry = _make_entry(computed, policy, generations, started or now, now)
    if entry.keep_until <= now:
        return None
    local_put(key, entry)
    with contextlib.suppress(SharedCacheUnavailable):  # L1 still holds it
        shared_cache.set(key, entry, entry.keep_until - now)
    return entry


def store_many(items: list[tuple[str, Computed, Generations]], *, policy: CachePolicy) -> None:
    """``store`` for several keys under one policy, in one round trip."""
    now = time.time()
    entries = [
        (key, _make_entry(computed, policy, gens, now, now)) for key, computed, gens in items
    ]
    entries = [(key, entry) for key, entry in entries if entry.keep_until > now]
    for key, entry in entries:
        local_put(key, entry)
    with contextlib.suppress(SharedCacheUnavailable):  # L1 still holds them
        shared_cache.set_each([(key, entry, entry.keep_until - now) for key, entry in entries])


def _read(
    key: str, tags: Sequence[str], with_l2: bool, extra_keys: Sequence[str] = ()
) -> tuple[Entry | None, Generations, bool, dict[str, Any]]:
    """(L2 entry or None, current generations, verified, values of ``extra_keys``)."""
    try:
        generations, found = read_generations(
            tags, [key, *extra_keys] if with_l2 else extra_keys, shard_key=key
        )
        return found.pop(key, None), generations, True, found
    except SharedCacheUnavailable:
        return None, local_generations(tags), False, {}


def lookup(
    key: str, tags: Sequence[str], policy: CachePolicy, extra_keys: Sequence[str] = ()
) -> Lookup:
    """Find the best entry for ``key`` in L1 and L2, checking generations once.

    ``extra_keys`` are read in the same round trip (``Lookup.extra``).
    """
    local = local_get(key)
    l2, generations, verified, extra = _read(key, tags, local is None, extra_keys)
    now = time.time()
    if (
        local is not None
        and verified
        and not (local.matches(generations) and now < local.fresh_until)
    ):
        l2, generations, verified, _ = _read(key, tags, with_l2=True)
    candidates = [(e, layer) for e, layer in ((local, "l1"), (l2, "l2")) if e is not None]
    candidates = [(e, layer) for e, layer in candidates if now < e.keep_until]
    candidates.sort(key=lambda c: c[0].stored_at, reverse=True)
    fallback = candidates[0][0] if candidates else None
    if l2 is not None and (local is None or l2.stored_at > local.stored_at):
        local_put(key, l2)
    if not verified and policy.verified_reads:
        return Lookup(None, "none", generations, verified, fallback, extra)
    for entry, layer in candidates:
        if entry.matches(generations) and now < entry.usable_until:
            return Lookup(entry, layer, generations, verified, fallback, extra)
    return Lookup(None, "none", generations, verified, fallback, extra)


def _compute_and_store(
    request: _Request, fallback: Entry | None, flight: flights.Flight | None = None
) -> CacheResult:
    """Run the computation with generations read first; store it, or fall back if it failed."""
    started = time.time()
    try:
        generations, _ = read_generations(request.tags, shard_key=request.key)
    except SharedCacheUnavailable:
        generations = local_generations(request.tags)
    if flight is not None:
        flight.started, flight.generations = started, generations
    try:
        computed = request.compute()
    except Exception:
        if fallback is None or time.time() >= fallback.keep_until:
            raise
        logger.exception("Computing %s failed; serving the last copy", request.key)
        computed = Computed(value=None, ok=False)
    if computed.ok:
        entry = store(
            request.key, computed, policy=request.policy, generations=generations, started=started
        )
        if entry is not None:
            return CacheResult.of(entry, from_cache=False)
        return CacheResult(computed.value, False, ttl=0)
    metrics.record(request.policy.namespace, "none", "error")
    if fallback is not None and time.time() < fallback.keep_until:
        return CacheResult.of(fallback, from_cache=True, stale=True, layer="l2")
    return CacheResult(computed.value, False, ok=False, ttl=0)


def _from_other_process(request: _Request) -> CacheResult | None:
    """Poll Redis for the entry another process is computing for this request."""

    def look() -> CacheResult | None:
        with shared_cache.reading_through():  # what the other process stores since
            entry, generations, verified, _ = _read(request.key, request.tags, with_l2=True)
        if not verified:
            raise SharedCacheUnavailable
        if (
            entry is not None
            and entry.matches(generations)
            and time.time() < entry.usable_until
            and not (request.bypass and entry.computed_from < request.started)
        ):
            local_put(request.key, entry)
            return CacheResult.of(entry, from_cache=True, layer="l2")
        return None

    return flights.wait_for_other_process(request.key, look)


def _follow(
    request: _Request, flight: flights.Flight, seen: Generations, fallback: Entry | None
) -> CacheResult:
    """Wait for this process's leader; compute ourselves if its result will not do."""
    shared = flights.wait(flight)
    too_old = flight.started < request.started if request.bypass else False
    behind = flight.generations is not None and any(
        flight.generations.get(tag, 0) < gen for tag, gen in seen.items()
    )
    if shared is not None and not too_old and not behind:
        metrics.record(request.policy.namespace, "none", "coalesced")
        return CacheResult(
            shared.value,
            shared.from_cache,
            stale=shared.stale,
            ok=shared.ok,
            layer="flight",
            ttl=shared.ttl,
            stored_at=shared.stored_at,
        )
    return _compute_and_store(request, fallback)


def _single_flight(request: _Request, seen: Generations, fallback: Entry | None) -> CacheResult:
    flight, leader = flights.join(request.key)
    if not leader:
        return _follow(request, flight, seen, fallback)
    result: CacheResult | None = None
    try:
        # With the lock: the generations to store the result with (not read yet on
        # a fresh=true request) and what the computation will read.
        read_ahead = [
            *generation_keys(request.tags, request.key),
            *(request.read_ahead() if request.read_ahead else ()),
        ]
        token = flights.try_lock(request.key, read_ahead)
        if token is None:  # another process computes it: take its result
            result = _from_other_process(request)
        if result is None:
            try:
                result = _compute_and_store(request, fallback, flight)
            finally:
                if token is not None:
                    flights.unlock(request.key, token)
        return result
    finally:
        flights.land(request.key, flight, result)


def _start_refresh(request: _Request) -> bool:
    """Recompute the key once in the background; False if a refresh already runs.

    The refresh is a flight like any other: requests in this process that miss
    meanwhile wait for it instead of computing again.
    """
    flight = flights.lead(request.key)
    if flight is None:
        return False
    token = flights.try_lock(request.key)
    if token is None:
        flights.land(request.key, flight, None)
        return False

    def run() -> None:
        close_old_connections()
        result = None
        try:
            result = _compute_and_store(request, None, flight)
        except Exception:
            logger.exception("Background refresh of %s failed", request.key)
        finally:
            flights.unlock(request.key, token)
            flights.land(request.key, flight, result)
            close_old_connections()

    refresh_pool.get().submit(run)
    return True


def get_or_compute(
    key: str,
    compute: Callable[[], Computed],
    *,
    tags: Sequence[str] = (),
    policy: CachePolicy,
    bypass: bool = False,
    read_ahead: Callable[[], Sequence[str]] | None = None,
) -> CacheResult:
    """Serve ``key`` from the cache, or compute it once and cache it (and count it).

    Past its soft TTL a copy is served stale while one background refresh runs
    (``stale_while_revalidate``); an invalidated copy is never served, except
    by stale-if-error when recomputing fails. ``bypass`` (``fresh=true``) never
    serves a copy, nor a computation that started before the call, but still
    goes through single-flight and stores the result. Never raises for a cache
    failure; raises what ``compute`` raises only when there is no copy to fall
    back on. ``read_ahead()``: the keys the computation will read, fetched with
    the lock (see ``shared.py``; the caller opens the read-ahead).
    """
    request = _Request(key, compute, sorted(set(tags)), policy, bypass, read_ahead)
    try:
        return _get_or_compute(request)
    finally:
        metrics.flush_stats()


def _get_or_compute(request: _Request) -> CacheResult:
    namespace = request.policy.namespace
    if request.bypass:
        # fresh=true: no copy may be served and none is a fallback (_error_fallback),
        # so nothing is looked up; the generations come with the lock.
        metrics.record(namespace, "none", "miss")
        return _single_flight(request, {}, None)
    found = lookup(request.key, request.tags, request.policy)
    entry = found.entry
    if entry is not None and not request.bypass:
        if time.time() < entry.fresh_until:
            metrics.record(namespace, found.layer, "hit")
            return CacheResult.of(entry, from_cache=True, layer=found.layer)
        if request.policy.stale_while_revalidate:
            metrics.record(namespace, found.layer, "stale")
            _start_refresh(request)
            return CacheResult.of(entry, from_cache=True, stale=True, layer=found.layer)
    metrics.record(namespace, "none", "miss")
    return _single_flight(request, found.generations, _error_fallback(request, found.fallback))


def _error_fallback(request: _Request, fallback: Entry | None) -> Entry | None:
    """The copy stale-if-error may serve if recomputing fails, if the policy allows one.

    Never for ``bypass`` (``fresh=true`` promises data computed after it began)
    nor under a policy without ``stale_if_error`` (read-your-writes data).
    """
    if fallback is None or request.bypass or request.policy.stale_if_error <= 0:
        return None
    if time.time() - fallback.stored_at > request.policy.stale_if_error:
        return None
    return fallback


def peek(key: str, *, tags: Sequence[str], policy: CachePolicy) -> CacheResult | None:
    """A fresh copy of ``key`` if there is one (counted as a hit); computes nothing."""
    return peek_with(key, tags=tags, policy=policy)[0]


def peek_with(
    key: str, *, tags: Sequence[str], policy: CachePolicy, extra_keys: Sequence[str] = ()
) -> tuple[CacheResult | None, dict[str, Any]]:
    """``peek``, plus the values of ``extra_keys`` read in the same round trip.

    A cached response and what deciding to serve it needs (the caller's
    token, say) then cost one round trip together.
    """
    found = lookup(key, sorted(set(tags)), policy, extra_keys)
    if found.entry is None or time.time() >= found.entry.fresh_until:
        return None, found.extra
    metrics.record(policy.namespace, found.layer, "hit")
    metrics.flush_stats()
    return CacheResult.of(found.entry, from_cache=True, layer=found.layer), found.extra


def lookup_many(
    keys: dict[str, Sequence[str]], *, namespace: str, values_too: bool = True
) -> tuple[dict[str, Any], dict[str, Generations]]:
    """Fresh values for many keys, each with its own tags, and each key's generations.

    One round trip for everything. A key's generations are those to store its
    new value with (read before anything is recomputed; on a cluster, the
    copies in the key's shard). Without Redis nothing can be verified and
    nothing is returned. ``values_too=False``: only the generations, for a
    caller that will not use what is stored (nothing is counted either).
    """
    if not values_too:
        try:
            return {}, read_generations_per_key(keys, ())[0]
        except SharedCacheUnavailable:
            return {}, {k: local_generations(tags) for k, tags in keys.items()}
    now = time.time()
    local = {k: local_get(k) for k in keys}
    need_l2 = [k for k, e in local.items() if e is None or now >= e.fresh_until]
    try:
        per_key, found = read_generations_per_key(keys, need_l2)
    except SharedCacheUnavailable:
        return {}, {k: local_generations(tags) for k, tags in keys.items()}
    values: dict[str, Any] = {}
    for key in keys:
        for entry, layer in ((local.get(key), "l1"), (found.get(key), "l2")):
            if entry is not None and entry.matches(per_key[key]) and now < entry.fresh_until:
                values[key] = entry.value
                metrics.record(namespace, layer, "hit")
                if layer == "l2":
                    local_put(key, entry)
                break
        else:
            metrics.record(namespace, "none", "miss")
    return values, per_key
