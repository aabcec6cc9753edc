"""Cached totals: a ``COUNT(*)`` that many cached entries share, invalidated by tag.

Counting a large filtered set costs far more than reading a page of it, and
the total is often the same for everyone (every user's "just for you" counts
the same featured products). It is computed once per invalidation, single-flight.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db.models import QuerySet

from .engine import CachePolicy, Computed, get_or_compute


def count_policy(namespace: str) -> CachePolicy:
    """Shared totals: kept ``CACHE_SECTION_TTL``, counted under ``namespace``."""
    return CachePolicy(
        namespace=namespace,
        soft_ttl=settings.CACHE_SECTION_TTL,
        hard_ttl=settings.CACHE_SECTION_TTL,
    )


def cached_count(queryset: QuerySet, *, key: str, tags: Sequence[str], namespace: str) -> int:
    """``queryset.count()``, cached under ``key`` until one of ``tags`` is invalidated."""
    policy = count_policy(namespace)
    result = get_or_compute(
        key, lambda: Computed(queryset.order_by().count()), tags=tags, policy=policy
    )
    return result.value
