from django.apps import AppConfig


class AggregationConfig(AppConfig):
    """Generic engine: sections, the concurrent runner, envelopes, sparse fields."""

    name = "aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import metrics, request_logs  # noqa: F401  (signal receivers)

        metrics.register_collectors()
