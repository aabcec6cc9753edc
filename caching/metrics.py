"""Cache counters: Prometheus metrics for scraping, and cluster-wide totals in Redis.

Each process counts in memory (cheap on the request path) and adds its counts to
one Redis hash at most every ``FLUSH_INTERVAL`` seconds, so the admin dashboard
and ``manage.py cache stats`` show totals across processes. Lookups are counted
by the namespace their cache policy names (``homepage``, ``trainer:bootstrap``...),
never by parsing keys.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as _Counter
from typing import Literal

from prometheus_client import Counter

from .keys import STATS_KEY
from .process import register_state
from .shared import SharedCacheUnavailable, shared_cache

FLUSH_INTERVAL = 5.0
Outcome = Literal["hit", "miss", "stale", "error", "coalesced"]

requests_total = Counter(
    "aggregation_cache_requests_total",
    "Cache lookups by namespace, layer (l1, l2, none) and outcome.",
    ["namespace", "layer", "outcome"],
)
invalidations_total = Counter(
    "aggregation_cache_invalidations_total", "Tag invalidations by tag family.", ["tag"]
)

_pending: _Counter[str] = _Counter()
_pending_lock = threading.Lock()
_last_flush = [time.monotonic()]


def record(namespace: str, layer: str, outcome: Outcome) -> None:
    """Count one lookup outcome."""
    requests_total.labels(namespace, layer, outcome).inc()
    with _pending_lock:
        _pending[f"{namespace}|{layer}|{outcome}"] += 1


def take_pending(force: bool = False) -> dict[str, int]:
    """Counts not yet flushed, if the flush interval has passed (or ``force``)."""
    now = time.monotonic()
    with _pending_lock:
        if not _pending or (not force and now - _last_flush[0] < FLUSH_INTERVAL):
            return {}
        counts = dict(_pending)
        _pending.clear()
        _last_flush[0] = now
    return counts


def _restore_pending(counts: dict[str, int]) -> None:
    with _pending_lock:
        _pending.update(counts)


def flush_stats(force: bool = False) -> None:
    """Add this process's counts to the cluster-wide totals, at most every few seconds."""
    counts = take_pending(force)
    if counts:
        try:
            shared_cache.hincrby_many(STATS_KEY, counts)
        except SharedCacheUnavailable:
            _restore_pending(counts)


def cluster_stats() -> dict[str, dict[str, int]]:
    """Counts per namespace (``namespace|layer|outcome`` fields summed by outcome)."""
    flush_stats(force=True)
    try:
        raw = shared_cache.hgetall(STATS_KEY)
    except SharedCacheUnavailable:
        raw = {}
    stats: dict[str, dict[str, int]] = {}
    for field_name, count in raw.items():
        namespace, layer, outcome = field_name.rsplit("|", 2)
        row = stats.setdefault(namespace, {})
        row[outcome] = row.get(outcome, 0) + count
        row[f"{layer}_{outcome}"] = row.get(f"{layer}_{outcome}", 0) + count
    return stats


def _forget_pending() -> None:
    take_pending(force=True)


register_state("metrics: lookups counted, not yet flushed", _forget_pending)
