"""Who was active recently, for warming: a Redis sorted set per kind, never a key scan.

Each read of a subject (a trainer's bootstrap, say) scores it with the current
time; warmers take the most recent few. The set is trimmed to ``MAX_TRACKED``.
A process writes a subject's score at most once per ``RECORD_INTERVAL``: the
warmers need minutes of precision, and a cache hit should not pay a Redis
write on every request.
"""

from __future__ import annotations

import contextlib
import threading
import time

from cachetools import LRUCache

from .keys import recent_key
from .process import register_state
from .shared import SharedCacheUnavailable, shared_cache

MAX_TRACKED = 10_000
RECORD_INTERVAL = 60.0  # seconds between two writes of one subject's score, per process

_recorded: LRUCache = LRUCache(maxsize=MAX_TRACKED)
_recorded_lock = threading.Lock()


def record_activity(kind: str, subject_id: int) -> None:
    """Mark ``subject_id`` of ``kind`` active now; silently skipped without Redis."""
    now = time.monotonic()
    with _recorded_lock:
        last = _recorded.get((kind, subject_id))
        if last is not None and now - last < RECORD_INTERVAL:
            return
        _recorded[(kind, subject_id)] = now
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.zadd_trim(recent_key(kind), str(subject_id), time.time(), MAX_TRACKED)


def forget_recorded() -> None:
    """Let the next read of every subject be recorded (tests)."""
    with _recorded_lock:
        _recorded.clear()


def recently_active(kind: str, limit: int) -> list[int]:
    """Up to ``limit`` most recently active ids of ``kind``, most recent first."""
    try:
        return [int(member) for member in shared_cache.ztop(recent_key(kind), limit)]
    except SharedCacheUnavailable:
        return []


register_state("activity: subjects recorded recently", forget_recorded)
