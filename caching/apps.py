from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class CachingConfig(AppConfig):
    """Generic engine: two-layer cache, tag generations, warming, visibility."""

    name = "caching"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import warming  # noqa: F401  (registers the re-warm listener)
        from .schedule import ensure_warming_schedule

        # After the beat tables exist (this app has no models to send its own signal).
        post_migrate.connect(
            ensure_warming_schedule,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="caching.warming_schedule",
        )
