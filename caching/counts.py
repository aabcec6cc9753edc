"""Shared totals: a ``COUNT(*)`` many cached entries share, kept until it can change.

Counting a large filtered set costs far more than reading a page of it, and
the total is the same for everyone (every user's "just for you" counts the
same featured products). It is computed once, single-flight, and kept under
the tags of the data it counts; a set bounded by time (offers still valid,
events not yet started) also gives the moment its next item leaves, and the
total is not kept past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from django.conf import settings

from . import metrics
from .engine import CachePolicy, Computed, get_or_compute, lookup, store
from .tags import Generations


def count_policy(namespace: str) -> CachePolicy:
    """Shared totals: kept ``CACHE_SECTION_TTL_S`` at most, counted under ``namespace``."""
    return CachePolicy(
        namespace=namespace,
        soft_ttl=settings.CACHE_SECTION_TTL_S,
        hard_ttl=settings.CACHE_SECTION_TTL_S,
    )


def cached_total(
    key: str,
    count: Callable[[], tuple[int, float | None]],
    *,
    tags: Sequence[str],
    namespace: str,
) -> tuple[int, float | None]:
    """``count()``, shared under ``key`` until a tag moves or the next item leaves the set.

    ``count`` returns ``(total, leaves_at)``: the epoch second the next item
    leaves the counted set, or None when nothing leaves by time. Both are
    returned, so whatever shows the total can end when it does.
    """

    def compute() -> Computed:
        total, leaves_at = count()
        return Computed((total, leaves_at), expires_at=leaves_at)

    return get_or_compute(key, compute, tags=tags, policy=count_policy(namespace)).value


def peek_total(
    key: str, *, tags: Sequence[str], namespace: str
) -> tuple[tuple[int, float | None] | None, Generations]:
    """The shared total under ``key`` if a valid copy is cached, and the generations read.

    For a caller that counts by itself when there is none (a batch of queries):
    it stores what it counted with ``store_total`` and these generations.
    """
    policy = count_policy(namespace)
    found = lookup(key, sorted(set(tags)), policy)
    if found.entry is None or time.time() >= found.entry.fresh_until:
        metrics.record(namespace, "none", "miss")
        return None, found.generations
    metrics.record(namespace, found.layer, "hit")
    return found.entry.value, found.generations


def store_total(
    key: str,
    total: tuple[int, float | None],
    *,
    namespace: str,
    generations: Generations,
    started: float,
) -> None:
    """Share a total counted after ``peek_total`` found none (``started``: when counting began)."""
    computed = Computed(total, expires_at=total[1])
    store(key, computed, policy=count_policy(namespace), generations=generations, started=started)
