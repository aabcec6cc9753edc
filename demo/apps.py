from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for every app (``manage.py seed_demo``); listed after the domains.

    Installed in the local and test settings only: production has no demo data
    and no Faker.
    """

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
