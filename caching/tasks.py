"""Celery tasks: warming (all, one, re-warm after invalidations) and edge purge retries.

Each warming task is small and expires, so a backlog after an outage does not
replay stale work; an edge purge is retried with backoff until a time limit.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import consistency, edge
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
def warm_on_worker_start(sender: object = None, **kwargs: Any) -> None:
    """Warm once when a worker starts, before the first beat tick."""
    if settings.ENABLE_CACHE_WARMING:
        warm_all.delay()


EDGE_RETRY_TIMEOUT = 2.0  # seconds a retry may wait for the edge (off the request path)


@shared_task(name="caching.edge_purge", bind=True, max_retries=None, acks_late=True)
def edge_purge(self: Task, url: str, tags: list[str], since: float) -> bool:
    """Purge ``tags`` at the edge ``url`` again, with backoff, until ``EDGE_PURGE_RETRY_FOR_S``."""
    if url not in settings.EDGE_PURGE_URLS:
        return False  # no longer configured
    if edge.purge_one(url, tags, EDGE_RETRY_TIMEOUT):
        edge.record("ok")
        return True
    if time.time() - since >= settings.EDGE_PURGE_RETRY_FOR_S:
        edge.record("abandoned", f"{url}: gave up purging {' '.join(tags)}")
        return False
    edge.record("failed", f"{url}: purge of {' '.join(tags)} not confirmed")
    raise self.retry(countdown=min(2**self.request.retries, 30))


def enqueue_edge_purge(url: str, tags: list[str], since: float) -> None:
    """Retry a purge from a worker soon; with no worker (eager mode) it is abandoned."""
    if edge_purge.app.conf.task_always_eager:
        edge.record("abandoned", f"{url}: no Celery worker to retry the purge")
        return
    edge_purge.apply_async(args=[url, tags, since], countdown=1, retry=False)


@shared_task(name="caching.verify_consistency")
def verify_consistency() -> dict[str, dict[str, int]]:
    """One pass of the consistency monitor (Celery beat runs it)."""
    if not settings.ENABLE_CONSISTENCY_MONITOR:
        return {}
    report = consistency.verify(settings.CACHE_VERIFY_SAMPLE)
    return {"sampled": report.sampled, "inconsistent": report.inconsistent}
