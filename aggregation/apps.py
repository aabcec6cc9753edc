from django.apps import AppConfig


class AggregationConfig(AppConfig):
    """Generic engine: sections, the concurrent runner, envelopes, sparse fields."""

    name = "aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from caching.tags import before_invalidation

        from . import metrics, replicas

        metrics.register_collectors()
        before_invalidation(replicas.record_write_position)
