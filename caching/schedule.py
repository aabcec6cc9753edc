"""The beat schedule for cache warming, kept in the database (django-celery-beat).

Ops can edit or disable it in the admin; ``ensure_warming_schedule`` runs after
every ``migrate`` and brings the interval in line with ``CACHE_WARMING_INTERVAL``
and ``ENABLE_CACHE_WARMING``.
"""

from __future__ import annotations

from django.conf import settings

WARMING_TASK_NAME = "cache-warming"


def ensure_warming_schedule(**kwargs) -> None:
    """Create or update the periodic warming task (a ``post_migrate`` receiver)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    seconds = max(int(settings.CACHE_WARMING_INTERVAL / 1000), 1)
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=seconds, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=WARMING_TASK_NAME,
        defaults={
            "task": "caching.warm_all",
            "interval": interval,
            "enabled": settings.ENABLE_CACHE_WARMING,
            "expire_seconds": seconds,
        },
    )
