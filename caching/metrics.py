"""Cache counters: Prometheus metrics for scraping, and cluster-wide totals in Redis.

Each process counts in memory (cheap on the request path) and adds its counts to
one Redis hash at most every ``FLUSH_INTERVAL`` seconds, so the admin dashboard
and ``manage.py cache stats`` show totals across processes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as _Counter

from prometheus_client import Counter

FLUSH_INTERVAL = 5.0
STATS_KEY = "cache:stats"
OUTCOMES = ("hit", "miss", "stale", "error", "coalesced")

requests_total = Counter(
    "aggregation_cache_requests_total",
    "Cache lookups by key namespace, layer (l1, l2, none) and outcome.",
    ["namespace", "layer", "outcome"],
)
shared_cache_errors = Counter(
    "aggregation_shared_cache_errors_total", "Failed calls to the shared cache (Redis)."
)
invalidations_total = Counter(
    "aggregation_cache_invalidations_total", "Tag invalidations by tag family.", ["tag"]
)

_pending: _Counter[str] = _Counter()
_pending_lock = threading.Lock()
_last_flush = [time.monotonic()]


def namespace_of(key: str) -> str:
    """``homepage`` for ``homepage:anonymous:v1``; sections get their own namespace."""
    parts = key.split(":")
    if len(parts) > 2 and parts[1] == "section":
        return f"{parts[0]}:section"
    if parts[0] in {"trainer", "student"} and len(parts) > 2:
        return f"{parts[0]}:{parts[1]}"
    return parts[0]


def record(key: str, layer: str, outcome: str) -> None:
    """Count one lookup outcome."""
    namespace = namespace_of(key)
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


def restore_pending(counts: dict[str, int]) -> None:
    """Put counts back after a failed flush."""
    with _pending_lock:
        _pending.update(counts)
