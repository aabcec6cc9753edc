from django.apps import AppConfig


class AggregationConfig(AppConfig):
    """Generic engine: sections, the concurrent runner, envelopes, sparse fields."""

    name = "aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import metrics

        metrics.register_collectors()
