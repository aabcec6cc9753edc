"""Who was active recently, for warming: a Redis sorted set per kind, never a key scan.

Each read of a subject (a trainer's bootstrap, say) scores it with the current
time; warmers take the most recent few. The set is trimmed to ``MAX_TRACKED``.
"""

from __future__ import annotations

import contextlib
import time

from .keys import recent_key
from .shared import SharedCacheUnavailable, shared_cache

MAX_TRACKED = 10_000


def record_activity(kind: str, subject_id: int) -> None:
    """Mark ``subject_id`` of ``kind`` active now; silently skipped without Redis."""
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.zadd_trim(recent_key(kind), str(subject_id), time.time(), MAX_TRACKED)


def recently_active(kind: str, limit: int) -> list[int]:
    """Up to ``limit`` most recently active ids of ``kind``, most recent first."""
    try:
        return [int(member) for member in shared_cache.ztop(recent_key(kind), limit)]
    except SharedCacheUnavailable:
        return []
