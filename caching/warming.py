"""Cache warmers: a registry of named jobs that fill the cache before anyone asks.

Domain apps register warmers (the anonymous homepage, each section's defaults)
with the tags they depend on. Celery beat runs all of them every
``CACHE_WARMING_INTERVAL``; an invalidation re-runs the ones whose tags it
touched, debounced by construction: the first bump schedules one re-warm
(``CACHE_REWARM_DEBOUNCE_S`` seconds later) and raises a flag; every bump while
the flag is up only adds its tags to the pending set. The re-warm task lowers
the flag as it starts and takes the set, so a bulk edit of a thousand rows
causes one re-warm however long the bumps take, and a bump after the task
started is never lost (it schedules the next one).

Scheduling never blocks a request: it runs on a small background thread and a
broker that is down only costs a log line (the next beat run re-warms).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

from .keys import REWARM_SCHEDULED_KEY, REWARM_TAGS_KEY, last_warm_key
from .process import rewarm_scheduler
from .shared import SharedCacheUnavailable, shared_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Warmer:
    """A named job that fills cache entries depending on ``tags``."""

    name: str
    tags: tuple[str, ...]
    run: Callable[[], None]


_warmers: dict[str, Warmer] = {}


def register_warmer(name: str, tags: Iterable[str], run: Callable[[], None]) -> None:
    """Register (or replace) a warmer."""
    _warmers[name] = Warmer(name, tuple(tags), run)


def warmers() -> list[Warmer]:
    """Every registered warmer, by name."""
    return [_warmers[name] for name in sorted(_warmers)]


def warmers_for(tags: Iterable[str]) -> list[Warmer]:
    """The warmers depending on any of ``tags``."""
    tags = set(tags)
    return [w for w in warmers() if tags & set(w.tags)]


def run_warmer(name: str) -> bool:
    """Run one warmer and record when; False if no such warmer exists."""
    warmer = _warmers.get(name)
    if warmer is None:
        return False
    warmer.run()
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.set(last_warm_key(name), time.time(), None)
    return True


def last_warm_times() -> dict[str, float | None]:
    """When each warmer last ran (epoch seconds), as far as the shared cache knows."""
    keys = {w.name: last_warm_key(w.name) for w in warmers()}
    try:
        found = shared_cache.get_many(keys.values())
    except SharedCacheUnavailable:
        found = {}
    return {name: found.get(key) for name, key in keys.items()}


def _schedule(tags: list[str], enqueue: Callable[[float], None]) -> None:
    try:
        shared_cache.add_to_set(REWARM_TAGS_KEY, tags)
        # The flag outlives the debounce window: it stays up until the task starts
        # (bounded by the warming interval, in case the task is lost).
        ttl = max(settings.CACHE_WARMING_INTERVAL / 1000, settings.CACHE_REWARM_DEBOUNCE_S * 2)
        first = shared_cache.add(REWARM_SCHEDULED_KEY, 1, ttl)
    except SharedCacheUnavailable:
        return
    if first:
        try:
            enqueue(settings.CACHE_REWARM_DEBOUNCE_S)
        except Exception:  # a broker outage must not fail or slow a write
            with contextlib.suppress(SharedCacheUnavailable):
                shared_cache.delete(REWARM_SCHEDULED_KEY)
            logger.warning(
                "Could not schedule a re-warm; the next beat run will warm", exc_info=True
            )


def schedule_rewarm(tags: list[str], *, enqueue: Callable[[float], None]) -> None:
    """Invalidation listener: schedule a debounced re-warm off the request path.

    ``enqueue(countdown)`` queues the re-warm task (``tasks.py`` provides it).
    """
    if not settings.ENABLE_CACHE_WARMING or settings.CELERY_TASK_ALWAYS_EAGER:
        return  # without a worker the next request computes anyway
    if warmers_for(tags):
        # The copied context carries the request id to the task's headers.
        scheduler = rewarm_scheduler.get()
        scheduler.submit(contextvars.copy_context().run, _schedule, list(tags), enqueue)


def take_pending_tags() -> set[str]:
    """Lower the scheduled flag, then take the tags gathered for the re-warm now starting.

    In that order: a bump in between schedules the next re-warm instead of
    adding to a set nobody will read.
    """
    shared_cache.delete(REWARM_SCHEDULED_KEY)
    return shared_cache.pop_set(REWARM_TAGS_KEY)


def wait_for_scheduled(timeout: float = 30.0) -> None:
    """Block until every re-warm scheduling requested so far in this process has run."""
    rewarm_scheduler.get().submit(lambda: None).result(timeout=timeout)
