"""The storefront's own database (``STOREFRONT_DATABASE_URL``: MongoDB).

Products, stores, events, offers and category affinities are read and written
on the ``storefront`` alias and migrated only there; every other app stays on
``default``. Affinities keep their users' ids, but users live on the other
database: no join, no referential integrity (a user's affinities are deleted
by a signal, see signals.py).
"""

from __future__ import annotations

from typing import Any

STOREFRONT_DB = "storefront"
STOREFRONT_APPS = frozenset({"homepage"})


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
