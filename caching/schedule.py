"""The beat schedules of the cache, kept in the database (django-celery-beat).

Warming and the consistency monitor. Ops can edit or disable them in the
admin; ``ensure_warming_schedule`` runs after every ``migrate`` and brings them
in line with ``CACHE_WARMING_INTERVAL`` / ``ENABLE_CACHE_WARMING`` and
``CACHE_VERIFY_INTERVAL_S`` / ``ENABLE_CONSISTENCY_MONITOR``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

WARMING_TASK_NAME = "cache-warming"
CONSISTENCY_TASK_NAME = "cache-consistency"


def _every(name: str, task: str, seconds: int, enabled: bool) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=seconds, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": task, "interval": interval, "enabled": enabled,
                  "expire_seconds": seconds},
    )  # fmt: skip


def ensure_warming_schedule(using: str = "default", **kwargs: Any) -> None:
    """Create or update the periodic warming and consistency tasks (a ``post_migrate`` receiver)."""
    from django.db import connections, router
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if not router.allow_migrate_model(using, PeriodicTask):
        return  # another database was migrated (the storefront's): the beat tables are not there
    tables = connections[using].introspection.table_names()
    if not {PeriodicTask._meta.db_table, IntervalSchedule._meta.db_table} <= set(tables):
        return  # a partial migrate (``migrate <app> <migration>``) before beat's own
    warming = max(int(settings.CACHE_WARMING_INTERVAL / 1000), 1)
    _every(WARMING_TASK_NAME, "caching.warm_all", warming, settings.ENABLE_CACHE_WARMING)
    _every(
        CONSISTENCY_TASK_NAME,
        "caching.verify_consistency",
        max(settings.CACHE_VERIFY_INTERVAL_S, 1),
        settings.ENABLE_CONSISTENCY_MONITOR,
    )
