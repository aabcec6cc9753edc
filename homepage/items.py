"""Section items as plain dicts, built from ``.values()`` rows.

The item serializers (``serializers.py``) define the shapes and the OpenAPI
schema; building model instances and running nested serializers for every
item of every section cost more than the queries themselves, so the sections
build the same dicts from flat rows here. A test pins each builder to its
serializer, item for item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aggregation.formats import iso, iso_or_none

from .models import sale_running

Row = dict[str, Any]

PRODUCT_COLUMNS = (
    "id", "name", "brand", "image", "price", "original_price", "currency", "category",
    "rating", "cashback", "stock", "created_at", "views", "recommendation_score",
)  # fmt: skip
STORE_COLUMNS = (
    "id", "name", "logo", "image", "rating", "cashback", "category", "address", "city",
    "latitude", "longitude", "tags", "views",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "title", "subtitle", "image", "price", "venue", "city", "latitude", "longitude",
    "starts_at", "category", "organizer", "views",
)  # fmt: skip
OFFER_COLUMNS = (
    "id", "title", "subtitle", "image", "discounted_price", "original_price",
    "cashback_percentage", "valid_until", "category", "store_id",
    "flash_sale_active", "flash_sale_price", "flash_sale_ends_at", "flash_sale_stock", "views",
)  # fmt: skip
# An offer row also has ``store_name`` and ``store_logo`` (selectors._offers).
OFFER_STORE_COLUMNS = ("id", "name", "logo")


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _coordinates(row: Row) -> list[float] | None:
    if row["latitude"] is None or row["longitude"] is None:
        return None
    return [row["longitude"], row["latitude"]]


def _distance(row: Row) -> float | None:
    return row.get("distance_km")


def product_item(row: Row) -> Row:
    """``ProductItemSerializer``'s shape."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "brand": row["brand"],
        "image": row["image"],
        "price": float(row["price"]),
        "originalPrice": _float(row["original_price"]),
        "currency": row["currency"],
        "category": row["category"],
        "rating": float(row["rating"]),
        "cashback": float(row["cashback"]),
        "inventory": {"stock": row["stock"]},
        "createdAt": iso(row["created_at"]),
    }


def store_item(row: Row) -> Row:
    """``StoreItemSerializer``'s shape."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "logo": row["logo"],
        "image": row["image"],
        "rating": float(row["rating"]),
        "cashback": float(row["cashback"]),
        "category": row["category"],
        "location": {
            "address": row["address"],
            "city": row["city"],
            "coordinates": _coordinates(row),
        },
        "tags": [str(tag) for tag in row["tags"]],
        "distance": _distance(row),
    }


def event_item(row: Row) -> Row:
    """``EventItemSerializer``'s shape."""
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "subtitle": row["subtitle"],
        "image": row["image"],
        "price": float(row["price"]),
        "location": {"venue": row["venue"], "city": row["city"], "coordinates": _coordinates(row)},
        "date": iso(row["starts_at"]),
        "time": row["starts_at"].astimezone(UTC).strftime("%H:%M"),
        "category": row["category"],
        "organizer": row["organizer"],
        "distance": _distance(row),
    }


def offer_item(row: Row, now: datetime) -> Row:
    """``OfferItemSerializer``'s shape; a flash sale is active only until it ends."""
    flash_sale = None
    if row["flash_sale_active"]:
        flash_sale = {
            "isActive": sale_running(row["flash_sale_active"], row["flash_sale_ends_at"], now),
            "salePrice": _float(row["flash_sale_price"]),
            "endsAt": iso_or_none(row["flash_sale_ends_at"]),
            "stock": row["flash_sale_stock"],
        }
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "subtitle": row["subtitle"],
        "image": row["image"],
        "discountedPrice": float(row["discounted_price"]),
        "originalPrice": float(row["original_price"]),
        "cashbackPercentage": float(row["cashback_percentage"]),
        "validity": iso(row["valid_until"]),
        "category": row["category"],
        "store": {"id": str(row["store_id"]), "name": row["store_name"], "logo": row["store_logo"]},
        "metadata": {"flashSale": flash_sale},
    }
