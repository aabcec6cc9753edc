"""Layer 1: a small bounded LRU of cache entries in this process.

It saves the Redis read of a value, never the check of its tag generations:
the engine verifies every L1 hit against Redis in the round trip it makes
anyway. Its size is ``CACHE_L1_MAX_ENTRIES`` (0 turns it off).
"""

from __future__ import annotations

import threading
from typing import Any

from cachetools import LRUCache
from django.conf import settings

from .process import register_state

_cache: LRUCache = LRUCache(maxsize=1)
_lock = threading.Lock()


def _sized() -> LRUCache:
    """The process's LRU, rebuilt if its configured size changed (tests change it)."""
    global _cache
    size = max(settings.CACHE_L1_MAX_ENTRIES, 1)
    if _cache.maxsize != size:
        with _lock:
            if _cache.maxsize != size:
                _cache = LRUCache(maxsize=size)
    return _cache


def local_get(key: str) -> Any | None:
    """The entry under ``key`` in this process, or None."""
    cache = _sized()
    with _lock:
        return cache.get(key)


def local_put(key: str, entry: Any) -> None:
    """Keep ``entry`` under ``key`` (nothing when L1 is off)."""
    if settings.CACHE_L1_MAX_ENTRIES > 0:
        cache = _sized()
        with _lock:
            cache[key] = entry


def clear_local() -> None:
    """Empty this process's L1 (tests; a deploy that changes value shapes)."""
    cache = _sized()
    with _lock:
        cache.clear()


register_state("cache: in-process entries (L1)", clear_local)
