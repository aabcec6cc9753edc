from django.apps import AppConfig


class HomepageConfig(AppConfig):
    """Storefront domain: products, stores, events, offers and the homepage batch."""

    name = "homepage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals, verifiers, warmers

        signals.connect()
        warmers.register()
        verifiers.register()
