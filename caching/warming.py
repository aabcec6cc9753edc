"""Cache warmers: a registry of named jobs that fill the cache before anyone asks.

Domain apps register warmers (the anonymous homepage, each section's defaults)
with the tags they depend on. Celery beat runs all of them every
``CACHE_WARMING_INTERVAL``; an invalidation re-runs the ones whose tags it
touched, debounced: the first bump in a window schedules one re-warm after the
window, later bumps only add their tags to it, so a bulk edit of a thousand
rows causes one re-warm, not a thousand.

Scheduling never blocks a request: it runs on a small background thread and a
broker that is down only costs a log line (the next beat run re-warms).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from .shared import SharedCacheUnavailable, shared_cache
from .tags import on_invalidation

logger = logging.getLogger(__name__)

PENDING_TAGS_KEY = "rewarm:tags"
SCHEDULED_KEY = "rewarm:scheduled"
LAST_WARM_KEY = "warm:last:{name}"


@dataclass(frozen=True)
class Warmer:
    """A named job that fills cache entries depending on ``tags``."""

    name: str
    tags: tuple[str, ...]
    run: Callable[[], None]


_warmers: dict[str, Warmer] = {}
_scheduler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewarm-scheduler")


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
        shared_cache.set(LAST_WARM_KEY.format(name=name), time.time(), None)
    return True


def last_warm_times() -> dict[str, float | None]:
    """When each warmer last ran (epoch seconds), as far as the shared cache knows."""
    keys = {w.name: LAST_WARM_KEY.format(name=w.name) for w in warmers()}
    try:
        found = shared_cache.get_many(keys.values())
    except SharedCacheUnavailable:
        found = {}
    return {name: found.get(key) for name, key in keys.items()}


def _schedule(tags: list[str]) -> None:
    from .tasks import rewarm  # Celery tasks import this module

    try:
        shared_cache.add_to_set(PENDING_TAGS_KEY, tags)
        first = shared_cache.add(SCHEDULED_KEY, 1, settings.CACHE_REWARM_DEBOUNCE)
    except SharedCacheUnavailable:
        return
    if first:
        try:
            rewarm.apply_async(countdown=settings.CACHE_REWARM_DEBOUNCE, retry=False)
        except Exception:  # a broker outage must not fail or slow a write
            logger.warning(
                "Could not schedule a re-warm; the next beat run will warm", exc_info=True
            )


def schedule_rewarm(tags: list[str]) -> None:
    """Listener for invalidations: schedule a debounced re-warm off the request path."""
    if not settings.ENABLE_CACHE_WARMING or settings.CELERY_TASK_ALWAYS_EAGER:
        return  # without a worker the next request computes anyway
    if warmers_for(tags):
        # The copied context carries the request id to the task's headers.
        _scheduler.submit(contextvars.copy_context().run, _schedule, list(tags))


on_invalidation(schedule_rewarm)
