from django.apps import AppConfig


class StudentsConfig(AppConfig):
    """Students, progress, achievements and course progress (bootstrap domain)."""

    name = "students"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals, warmers

        signals.connect()
        warmers.register()
