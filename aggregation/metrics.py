"""Prometheus metrics of the aggregation engine (django-prometheus covers HTTP).

Section latency and failures, responses with partial failures, the section
thread pool's backlog and the database connection pool, read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

section_duration = Histogram(
    "aggregation_section_duration_seconds",
    "Time to fetch one section, by section.",
    ["section"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
section_failures = Counter(
    "aggregation_section_failures_total", "Sections that failed, by section and code.",
    ["section", "code"],
)  # fmt: skip
batch_responses = Counter(
    "aggregation_batch_responses_total",
    "Aggregated responses sent, by endpoint and whether a section had failed.",
    ["endpoint", "partial_failure"],
)
section_queue_depth = Gauge(
    "aggregation_section_pool_queue_depth", "Sections waiting for a worker thread."
)


class DatabasePoolCollector:
    """psycopg pool statistics of this process's default database, at scrape time."""

    def describe(self) -> list:
        """Nothing up front: registering must not open the pool (settings may still change)."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield pool size, idle connections and waiting requests (nothing without a pool)."""
        from django.db import connections

        pool = getattr(connections["default"], "pool", None)
        if pool is None:
            return
        stats = pool.get_stats()
        for name, key, text in (
            ("aggregation_db_pool_size", "pool_size", "Connections open in the pool."),
            ("aggregation_db_pool_available", "pool_available", "Idle connections in the pool."),
            (
                "aggregation_db_pool_waiting",
                "requests_waiting",
                "Requests waiting for a connection.",
            ),
            ("aggregation_db_pool_max", "pool_max", "Most connections the pool may open."),
        ):
            yield GaugeMetricFamily(name, text, value=stats.get(key, 0))


_registered = False


def register_collectors() -> None:
    """Register the scrape-time collectors once per process."""
    global _registered
    if not _registered:
        REGISTRY.register(DatabasePoolCollector())
        _registered = True
