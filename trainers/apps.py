from django.apps import AppConfig


class TrainersConfig(AppConfig):
    """Trainers, courses, allocations, sessions and payout claims (bootstrap domain)."""

    name = "trainers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals, warmers

        signals.connect()
        warmers.register()
