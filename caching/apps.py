from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class CachingConfig(AppConfig):
    """Generic engine: two-layer cache, tag generations, warming, visibility."""

    name = "caching"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from functools import partial

        from . import capture, consistency, edge
        from .schedule import ensure_warming_schedule
        from .tags import on_invalidation, on_transaction_tags
        from .tasks import enqueue_edge_purge, enqueue_rewarm
        from .warming import schedule_rewarm

        # After each bump: first the edge (its refetch then sees the new data),
        # then re-warming (an enqueue, off the request path).
        consistency.register_collector()  # the monitor's window, on /metrics
        on_invalidation(edge.purge)
        edge.on_retry(enqueue_edge_purge)
        on_invalidation(partial(schedule_rewarm, enqueue=enqueue_rewarm))
        if capture.listening():  # the change listener skips what the app bumps itself
            on_transaction_tags(capture.announce)
        # After the beat tables exist (this app has no models to send its own signal).
        post_migrate.connect(
            ensure_warming_schedule,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="caching.warming_schedule",
        )
