"""Full-response cache behind one small interface: ``get_or_compute``.

Values are stored in the default Django cache (django-redis in production and
tests, an in-process cache in the embedded mode) together with when they were
stored. A failing cache never fails a request: the value is computed instead
and the error reported in the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches

logger = logging.getLogger(__name__)

try:  # django-redis is optional for the engine: the embedded mode runs without it
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (ConnectionInterrupted, RedisError, OSError)
except ImportError:  # pragma: no cover
    CACHE_ERRORS = (OSError,)


@dataclass
class CacheResult:
    """A value and where it came from."""

    value: Any
    from_cache: bool
    ttl: int
    age: float = 0.0
    cache_error: bool = False


def get_or_compute(
    key: str,
    compute: Callable[[], tuple[Any, int]],
    *,
    bypass: bool = False,
    alias: str = "default",
) -> CacheResult:
    """Return the cached value for ``key``, or compute and store it.

    ``compute`` returns ``(value, ttl_seconds)``; a ttl of 0 means do not store
    (for instance a response where every section failed). ``bypass`` skips the
    read but still stores the new value.
    """
    cache = caches[alias]
    cache_error = False
    if not bypass:
        try:
            entry = cache.get(key)
        except CACHE_ERRORS:
            logger.warning("Cache read failed for %s", key, exc_info=True)
            entry, cache_error = None, True
        if entry is not None:
            return CacheResult(
                entry["value"], True, entry["ttl"], age=time.time() - entry["stored_at"]
            )
    value, ttl = compute()
    if ttl > 0:
        try:
            cache.set(key, {"value": value, "stored_at": time.time(), "ttl": ttl}, ttl)
        except CACHE_ERRORS:
            logger.warning("Cache write failed for %s", key, exc_info=True)
            cache_error = True
    return CacheResult(value, False, ttl, cache_error=cache_error)
