"""Loading storefront exports in the seed's document shape (``manage.py import_storefront``).

One JSON document per line (``mongoexport``'s default: Extended JSON, so
``{"$oid": ...}`` and ``{"$date": ...}`` are understood), one file per
collection. The seed nests where our rows are flat:

==============================  ==========================================
seed document                   our row
==============================  ==========================================
``isActive``                    ``is_active``
``inventory.stock``             ``stock``
``location.coordinates``        ``longitude``, ``latitude`` ([lng, lat])
``date`` + ``time`` (events)    ``starts_at`` (``time`` "HH:MM", UTC)
``validity`` (offers)           ``valid_until``
``metadata.flashSale.*``        ``flash_sale_active``, ``_price``,
                                ``_ends_at``, ``_stock``
``store`` (products, offers)    ``store`` (the store's ``_id`` in its file)
camelCase names                 snake_case names
==============================  ==========================================

Each document is validated (a serializer per collection) and a bad one stops
the import with its file and line (batches before it stay: ``--clear`` starts
again from nothing). On MongoDB a document keeps its ``_id``
when it is an ObjectId; on PostgreSQL rows get new keys, and references to
stores follow them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any, Literal

from bson import ObjectId, json_util
from bson.errors import InvalidId
from django.db import models
from rest_framework import serializers

from .models import Event, Offer, Product, Store
from .storage import written_on_mongodb

MAX_LINE = 1 << 20  # bytes: no storefront document is anywhere near a megabyte


class DocumentError(ValueError):
    """A document that cannot be imported, with where it is."""


def _decimal(max_digits: int, **kwargs: Any) -> serializers.DecimalField:
    """A non-negative amount with two decimal places (prices, ratings, percentages)."""
    return serializers.DecimalField(
        max_digits=max_digits, decimal_places=2, min_value=Decimal(0), **kwargs
    )


def _optional_text(max_length: int) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, default=""
    )


def _optional_url() -> serializers.URLField:
    return serializers.URLField(max_length=500, required=False, allow_blank=True, default="")


class _Location(serializers.Serializer):
    coordinates = serializers.ListField(
        child=serializers.FloatField(min_value=-180, max_value=180),
        min_length=2,
        max_length=2,
        allow_null=True,
        required=False,
    )
    address = _optional_text(300)
    city = _optional_text(100)
    venue = _optional_text(200)

    def validate_coordinates(self, value: list[float] | None) -> list[float] | None:
        if value is not None and not -90 <= value[1] <= 90:
            raise serializers.ValidationError("latitude must be between -90 and 90")
        return value


class _Inventory(serializers.Serializer):
    stock = serializers.IntegerField(min_value=0, max_value=2**31 - 1)


class _FlashSale(serializers.Serializer):
    isActive = serializers.BooleanField(default=False)
    salePrice = _decimal(10, allow_null=True)
    endsAt = serializers.DateTimeField(allow_null=True, default_timezone=UTC)
    stock = serializers.IntegerField(min_value=0, max_value=2**31 - 1, allow_null=True)


class _Metadata(serializers.Serializer):
    flashSale = _FlashSale(required=False, allow_null=True)


class _Document(serializers.Serializer):
    """What every storefront document has."""

    _id = serializers.CharField(max_length=64)
    category = serializers.CharField(max_length=100)
    featured = serializers.BooleanField(default=False)
    isActive = serializers.BooleanField(default=True)
    views = serializers.IntegerField(min_value=0, default=0)
    createdAt = serializers.DateTimeField(required=False, default_timezone=UTC)

    def common(self, data: dict) -> dict[str, Any]:
        row = {
            "category": data["category"],
            "featured": data["featured"],
            "is_active": data["isActive"],
            "views": data["views"],
        }
        if "createdAt" in data:
            row["created_at"] = data["createdAt"]
        return row

    def row(self, data: dict, refs: Refs) -> dict[str, Any]:
        """The model's fields for a validated document."""
        raise NotImplementedError


def _point(location: dict | None) -> dict[str, float | None]:
    coordinates = (location or {}).get("coordinates")
    if not coordinates:
        return {"longitude": None, "latitude": None}
    return {"longitude": coordinates[0], "latitude": coordinates[1]}


class StoreDocument(_Document):
    name = serializers.CharField(max_length=200)
    logo = _optional_url()
    image = _optional_url()
    rating = _decimal(3, default=Decimal(0))
    cashback = _decimal(5, default=Decimal(0))
    location = _Location(required=False, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, default=list
    )

    def row(self, data: dict, refs: Refs) -> dict[str, Any]:
        location = data.get("location") or {}
        return {
            **self.common(data),
            "name": data["name"],
            "logo": data["logo"],
            "image": data["image"],
            "rating": data["rating"],
            "cashback": data["cashback"],
            "address": location.get("address", ""),
            "city": location.get("city", ""),
            "tags": data["tags"],
            **_point(location),
        }


class ProductDocument(_Document):
    name = serializers.CharField(max_length=200)
    brand = _optional_text(100)
    image = _optional_url()
    price = _decimal(10)
    originalPrice = _decimal(10, required=False, allow_null=True)
    currency = serializers.CharField(max_length=3, default="USD")
    rating = _decimal(3, default=Decimal(0))
    cashback = _decimal(5, default=Decimal(0))
    inventory = _Inventory()
    store = serializers.CharField(max_length=64, required=False, allow_null=True)
    recommendationScore = serializers.FloatField(default=0)

    def row(self, data: dict, refs: Refs) -> dict[str, Any]:
        return {
            **self.common(data),
            "name": data["name"],
            "brand": data["brand"],
            "image": data["image"],
            "price": data["price"],
            "original_price": data.get("originalPrice"),
            "currency": data["currency"],
            "rating": data["rating"],
            "cashback": data["cashback"],
            "stock": data["inventory"]["stock"],
            "store_id": refs.store(data["store"]) if data.get("store") else None,
            "recommendation_score": data["recommendationScore"],
        }


class EventDocument(_Document):
    title = serializers.CharField(max_length=200)
    subtitle = _optional_text(300)
    image = _optional_url()
    price = _decimal(10, default=Decimal(0))
    location = _Location(required=False, allow_null=True)
    date = serializers.DateTimeField(default_timezone=UTC)
    time = serializers.TimeField(
        required=False, allow_null=True, input_formats=["%H:%M", "%H:%M:%S"]
    )
    organizer = _optional_text(200)

    def row(self, data: dict, refs: Refs) -> dict[str, Any]:
        location = data.get("location") or {}
        starts_at = data["date"].astimezone(UTC)
        if data.get("time") is not None:  # the seed keeps the time of day apart
            starts_at = datetime.combine(starts_at.date(), data["time"], tzinfo=UTC)
        return {
            **self.common(data),
            "title": data["title"],
            "subtitle": data["subtitle"],
            "image": data["image"],
            "price": data["price"],
            "venue": location.get("venue", ""),
            "city": location.get("city", ""),
            "starts_at": starts_at,
            "organizer": data["organizer"],
            **_point(location),
        }


class OfferDocument(_Document):
    title = serializers.CharField(max_length=200)
    subtitle = _optional_text(300)
    image = _optional_url()
    originalPrice = _decimal(10)
    discountedPrice = _decimal(10)
    cashbackPercentage = _decimal(5, default=Decimal(0))
    validity = serializers.DateTimeField(default_timezone=UTC)
    store = serializers.CharField(max_length=64)
    metadata = _Metadata(required=False, allow_null=True)

    def row(self, data: dict, refs: Refs) -> dict[str, Any]:
        sale = (data.get("metadata") or {}).get("flashSale") or {}
        return {
            **self.common(data),
            "title": data["title"],
            "subtitle": data["subtitle"],
            "image": data["image"],
            "original_price": data["originalPrice"],
            "discounted_price": data["discountedPrice"],
            "cashback_percentage": data["cashbackPercentage"],
            "valid_until": data["validity"],
            "store_id": refs.store(data["store"]),
            "flash_sale_active": sale.get("isActive", False),
            "flash_sale_price": sale.get("salePrice"),
            "flash_sale_ends_at": sale.get("endsAt"),
            "flash_sale_stock": sale.get("stock"),
        }


@dataclass
class Refs:
    """Store ids as the export names them -> our primary keys."""

    stores: dict[str, Any] = field(default_factory=dict)

    def store(self, source_id: str) -> Any:
        if source_id not in self.stores:
            key = _key_or_none(source_id)  # imported earlier: the same key
            if key is None or not Store.objects.filter(pk=key).exists():
                raise DocumentError(f"store {source_id!r} is in no stores file")
            self.stores[source_id] = key  # looked up once, not once per document
        return self.stores[source_id]


# The seed's collections (``stores.jsonl``...), each loaded into its model.
CollectionName = Literal["stores", "products", "events", "offers"]

# Import order: stores first, so products and offers can point at them.
COLLECTIONS: dict[CollectionName, tuple[type[models.Model], type[_Document]]] = {
    "stores": (Store, StoreDocument),
    "products": (Product, ProductDocument),
    "events": (Event, EventDocument),
    "offers": (Offer, OfferDocument),
}


def _keeps_object_ids(model: type[models.Model]) -> bool:
    return written_on_mongodb(model)


def _key_or_none(source_id: str) -> Any:
    """The primary key ``source_id`` is on this backend (None when it cannot be one)."""
    if _keeps_object_ids(Store):
        try:
            return ObjectId(source_id)
        except (InvalidId, TypeError):
            return None
    return int(source_id) if source_id.isdigit() else None


def documents(lines: IO[bytes], name: str) -> Iterator[tuple[int, dict]]:
    """``(line number, document)`` for each non-empty line; a bad line raises ``DocumentError``."""
    for number, raw in enumerate(lines, 1):
        where = f"{name}:{number}"
        if len(raw) > MAX_LINE:
            raise DocumentError(f"{where}: longer than {MAX_LINE} bytes")
        if not raw.strip():
            continue
        if b"\x00" in raw:
            raise DocumentError(f"{where}: contains a NUL byte")
        try:
            document = json_util.loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise DocumentError(f"{where}: not a JSON document ({exc})") from None
        if not isinstance(document, dict):
            raise DocumentError(f"{where}: not a JSON object")
        yield number, _plain(document)


def _plain(value: Any) -> Any:
    """Extended JSON's types as the serializers read them (ObjectIds as strings)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _errors(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_errors(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return ", ".join(_errors(item) for item in detail)
    return str(detail)


def load(
    collection: CollectionName,
    lines: IO[bytes],
    *,
    refs: Refs,
    name: str,
    batch_size: int = 5_000,
    progress: Callable[[int], None] = lambda count: None,
) -> int:
    """Validate and insert one collection's documents in batches; the number inserted."""
    model, document_class = COLLECTIONS[collection]
    keep_ids = _keeps_object_ids(model)
    batch: list[tuple[str, models.Model]] = []
    total = 0
    for number, document in documents(lines, name):
        document.setdefault("_id", document.pop("id", None))
        serializer = document_class(data=document)
        if not serializer.is_valid():
            raise DocumentError(f"{name}:{number}: {_errors(serializer.errors)}")
        data = serializer.validated_data
        try:
            row = serializer.row(data, refs)
        except DocumentError as exc:
            raise DocumentError(f"{name}:{number}: {exc}") from None
        if keep_ids and ObjectId.is_valid(data["_id"]):  # else MongoDB gives it a new one
            row["id"] = ObjectId(data["_id"])
        batch.append((data["_id"], model(**row)))
        if len(batch) >= batch_size:
            total += _insert(model, batch, refs, collection)
            progress(total)
            batch = []
    total += _insert(model, batch, refs, collection)
    progress(total)
    return total


def _insert(
    model: type[models.Model],
    batch: list[tuple[str, models.Model]],
    refs: Refs,
    collection: CollectionName,
) -> int:
    if not batch:
        return 0
    created = model._default_manager.bulk_create([row for _, row in batch])
    if collection == "stores":
        pairs = zip(batch, created, strict=True)
        refs.stores.update((source, row.pk) for (source, _), row in pairs)
    return len(created)
