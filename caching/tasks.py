"""Celery tasks: warm all warmers (beat), one warmer, or re-warm after invalidations.

Each task is small and expires, so a backlog after an outage does not replay
stale work.
"""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from .keys import WARM_RUNS_KEY
from .shared import SharedCacheUnavailable, shared_cache
from .warming import run_warmer, take_pending_tags, warmers, warmers_for

logger = logging.getLogger(__name__)


def _interval_seconds() -> float:
    return settings.CACHE_WARMING_INTERVAL / 1000


def _count_run(task: str) -> None:
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.hincrby_many(WARM_RUNS_KEY, {task: 1})


@shared_task(
    name="caching.warm_one",
    autoretry_for=(SharedCacheUnavailable,),
    retry_backoff=True,
    max_retries=3,
)
def warm_one(name: str) -> bool:
    """Run one warmer by name; quietly does nothing if it no longer exists."""
    return run_warmer(name)


@shared_task(name="caching.warm_all")
def warm_all() -> int:
    """Fan out one ``warm_one`` per registered warmer (Celery beat runs this)."""
    if not settings.ENABLE_CACHE_WARMING:
        return 0
    _count_run("warm_all")
    names = [w.name for w in warmers()]
    for name in names:
        warm_one.apply_async(args=[name], expires=_interval_seconds())
    return len(names)


@shared_task(name="caching.rewarm")
def rewarm() -> int:
    """Re-run the warmers touched by the invalidations gathered since it was scheduled."""
    try:
        tags = take_pending_tags()
    except SharedCacheUnavailable:
        return 0
    if not tags:
        return 0  # an earlier re-warm took them
    _count_run("rewarm")
    names = [w.name for w in warmers_for(tags)]
    for name in names:
        warm_one.apply_async(args=[name], expires=_interval_seconds())
    logger.info("Re-warming %s after invalidation of %s", names, sorted(tags))
    return len(names)


def enqueue_rewarm(countdown: float) -> None:
    """Queue one ``rewarm`` to run in ``countdown`` seconds (no broker retries)."""
    rewarm.apply_async(countdown=countdown, retry=False)


@worker_ready.connect(dispatch_uid="caching.warm_on_worker_start")
def warm_on_worker_start(sender=None, **kwargs) -> None:
    """Warm once when a worker starts, before the first beat tick."""
    if settings.ENABLE_CACHE_WARMING:
        warm_all.delay()
