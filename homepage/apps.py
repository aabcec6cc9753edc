from django.apps import AppConfig


class HomepageConfig(AppConfig):
    """Storefront domain: products, stores, events, offers and the homepage batch."""

    name = "homepage"

    @property
    def default_auto_field(self) -> str:  # type: ignore[override]
        """ObjectId keys on MongoDB (it has no auto-increment); 64-bit integers elsewhere."""
        from .storage import MONGODB_AUTO_FIELD, RELATIONAL_AUTO_FIELD, on_mongodb

        return MONGODB_AUTO_FIELD if on_mongodb() else RELATIONAL_AUTO_FIELD

    def ready(self) -> None:
        from . import signals, verifiers, warmers

        signals.connect()
        warmers.register()
        verifiers.register()
