from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP edge every endpoint shares: errors, rate limits, request logs, access."""

    name = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import authentication, request_logs  # noqa: F401  (signal receivers)

        authentication.connect()
