from django.apps import AppConfig


class CachingConfig(AppConfig):
    """Generic engine: full-response caching behind one small interface."""

    name = "caching"
    default_auto_field = "django.db.models.BigAutoField"
