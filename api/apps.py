from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP edge every endpoint shares: errors, rate limits, request logs, access."""

    name = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from caching.views import add_panel

        from . import authentication, deprecation, request_logs  # noqa: F401  (receivers)

        authentication.connect()
        add_panel("admin/legacy_calls_panel.html", deprecation.panel)
