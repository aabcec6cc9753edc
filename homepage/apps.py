from django.apps import AppConfig
from django.conf import settings


class HomepageConfig(AppConfig):
    """Storefront domain: products, stores, events, offers and the homepage batch."""

    name = "homepage"

    @property
    def default_auto_field(self) -> str:  # type: ignore[override]
        """ObjectId keys on MongoDB (it has no auto-increment); 64-bit integers elsewhere."""
        if settings.STOREFRONT_ON_MONGODB:
            return "django_mongodb_backend.fields.ObjectIdAutoField"
        return "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals, verifiers, warmers

        signals.connect()
        warmers.register()
        verifiers.register()
