"""Where the storefront lives: every switch on its own MongoDB goes through here.

Unset ``STOREFRONT_DATABASE_URL``: the storefront is on ``default`` with
everything else. Set (a ``mongodb://`` URL): products, stores, events,
offers and category affinities are read and written on the ``storefront``
alias and migrated only there; every other app stays on ``default``.
Affinities keep their users' ids, but users live on the other database: no
join, no referential integrity (a user's affinities are deleted by a signal,
see signals.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router

STOREFRONT_DB = "storefront"
STOREFRONT_APPS = frozenset({"homepage"})
MONGODB_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
RELATIONAL_AUTO_FIELD = "django.db.models.BigAutoField"


def on_mongodb() -> bool:
    """True when the storefront has a MongoDB of its own (``STOREFRONT_DATABASE_URL``)."""
    return bool(settings.STOREFRONT_ON_MONGODB)


def is_mongodb(alias: str) -> bool:
    """True when the database ``alias`` is a MongoDB."""
    return connections[alias].vendor == "mongodb"


def storefront_database() -> str:
    """The alias the storefront's models live on (its sections run there)."""
    return STOREFRONT_DB if on_mongodb() else DEFAULT_DB_ALIAS


def written_on_mongodb(model: Any) -> bool:
    """True when ``model``'s rows are written to a MongoDB."""
    return is_mongodb(router.db_for_write(model))


class StorefrontRouter:
    """Storefront models to ``storefront``; no opinion on anything else."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return STOREFRONT_DB if model._meta.app_label in STOREFRONT_APPS else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        """Within the storefront, and from an affinity to its user (by id only)."""
        return True if STOREFRONT_APPS & {obj1._meta.app_label, obj2._meta.app_label} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label in STOREFRONT_APPS:
            return db == STOREFRONT_DB
        return False if db == STOREFRONT_DB else None
