"""Cache counters for Prometheus (``caching/metrics.py``)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


def test_lookups_are_counted_for_prometheus(api_client):
    def count(outcome: str, layer: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "aggregation_cache_requests_total",
                {"namespace": "homepage", "layer": layer, "outcome": outcome},
            )
            or 0.0
        )

    misses, hits = count("miss", "none"), count("hit", "l1")
    api_client.get("/api/v1/homepage")
    api_client.get("/api/v1/homepage")
    assert count("miss", "none") == misses + 1
    assert count("hit", "l1") == hits + 1
