"""The storefront's database as tests see it, on PostgreSQL or MongoDB alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections, router
from django.db.models import Model


def storefront_connection() -> Any:
    """The connection the storefront models read and write."""
    from homepage.models import Product

    return connections[router.db_for_write(Product)]


def write_behind_the_orm(
    instance: Model, *, set: dict | None = None, inc: dict | None = None
) -> None:
    """Change a row as another program would: no signal, no invalidation."""
    conn, table = storefront_connection(), instance._meta.db_table
    if conn.vendor == "mongodb":
        conn.get_collection(table).update_one(
            {"_id": instance.pk},
            {**({"$set": set} if set else {}), **({"$inc": inc} if inc else {})},
        )
        return
    assignments = [f"{column} = %s" for column in set or {}]
    assignments += [f"{column} = {column} + %s" for column in inc or {}]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(assignments)} WHERE id = %s",  # noqa: S608 (test columns)
            [*(set or {}).values(), *(inc or {}).values(), instance.pk],
        )


def relational_only(reason: str) -> pytest.MarkDecorator:
    """Skip in the MongoDB run: the test is about the relational storefront (``reason``)."""
    return pytest.mark.skipif(on_mongodb(), reason=f"relational storefront only: {reason}")


def counting_queries(captured: list[dict]) -> list[str]:
    """The captured queries that count rows (a total)."""
    marker = "'$group'" if storefront_connection().vendor == "mongodb" else "COUNT(*)"
    return [query["sql"] for query in captured if marker in query["sql"]]


def pk_order(pk: Any) -> int:
    """A key ordering primary keys as the database does (integers, or ObjectIds by their bytes)."""
    return pk if isinstance(pk, int) else int(str(pk), 16)


def on_mongodb() -> bool:
    """True in the ``--storefront=mongodb`` run."""
    from django.conf import settings

    return bool(settings.STOREFRONT_ON_MONGODB)
