"""Item serializers (also the OpenAPI item schemas) and query-parameter validation."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.batch_serializers import (
    KNOWN_HELP,
    BatchMetadataSerializer,
    FieldsetField,
    KnownField,
    SectionListField,
    section_serializer,
)
from api.serializers import ErrorItemSerializer, IdField, StrIdMixin

from .models import Event, Offer, Product, Store, flash_sale_running


class InventorySerializer(serializers.Serializer):
    stock = serializers.IntegerField()


class ProductItemSerializer(StrIdMixin, serializers.ModelSerializer):
    price = serializers.FloatField()
    originalPrice = serializers.FloatField(source="original_price", allow_null=True)
    rating = serializers.FloatField()
    cashback = serializers.FloatField()
    inventory = InventorySerializer(source="*")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "brand",
            "image",
            "price",
            "originalPrice",
            "currency",
            "category",
            "rating",
            "cashback",
            "inventory",
            "createdAt",
        ]


_COORDINATES_SCHEMA = serializers.ListField(
    child=serializers.FloatField(), allow_null=True, min_length=2, max_length=2
)


def _coordinates(obj: Store | Event) -> list[float] | None:
    if obj.latitude is None or obj.longitude is None:
        return None
    return [obj.longitude, obj.latitude]


class StoreLocationSerializer(serializers.Serializer):
    address = serializers.CharField()
    city = serializers.CharField()
    coordinates = serializers.SerializerMethodField(help_text="[longitude, latitude], or null.")

    @extend_schema_field(_COORDINATES_SCHEMA)
    def get_coordinates(self, obj: Store) -> list[float] | None:
        return _coordinates(obj)


class EventLocationSerializer(serializers.Serializer):
    venue = serializers.CharField()
    city = serializers.CharField()
    coordinates = serializers.SerializerMethodField(help_text="[longitude, latitude], or null.")

    @extend_schema_field(_COORDINATES_SCHEMA)
    def get_coordinates(self, obj: Event) -> list[float] | None:
        return _coordinates(obj)


class StoreItemSerializer(StrIdMixin, serializers.ModelSerializer):
    rating = serializers.FloatField()
    cashback = serializers.FloatField()
    location = StoreLocationSerializer(source="*")
    tags = serializers.ListField(child=serializers.CharField())
    distance = serializers.FloatField(
        source="distance_km",
        allow_null=True,
        default=None,
        help_text="Kilometres from the requested location; null without one.",
    )

    class Meta:
        model = Store
        fields = [
            "id",
            "name",
            "logo",
            "image",
            "rating",
            "cashback",
            "category",
            "location",
            "tags",
            "distance",
        ]


class EventItemSerializer(StrIdMixin, serializers.ModelSerializer):
    price = serializers.FloatField()
    location = EventLocationSerializer(source="*")
    date = serializers.DateTimeField(source="starts_at")
    time = serializers.SerializerMethodField(help_text="Start time, HH:MM (UTC).")
    distance = serializers.FloatField(
        source="distance_km",
        allow_null=True,
        default=None,
        help_text="Kilometres from the requested location; null without one.",
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "title",
            "subtitle",
            "image",
            "price",
            "location",
            "date",
            "time",
            "category",
            "organizer",
            "distance",
        ]

    @extend_schema_field({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"})
    def get_time(self, obj: Event) -> str:
        return obj.starts_at.astimezone(UTC).strftime("%H:%M")


class OfferStoreSerializer(StrIdMixin, serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "name", "logo"]


class FlashSaleSerializer(serializers.Serializer):
    isActive = serializers.SerializerMethodField(
        help_text="True while the sale runs: flagged and not yet ended."
    )
    salePrice = serializers.FloatField(source="flash_sale_price", allow_null=True)
    endsAt = serializers.DateTimeField(source="flash_sale_ends_at", allow_null=True)
    stock = serializers.IntegerField(source="flash_sale_stock", allow_null=True)

    def get_isActive(self, obj: Offer) -> bool:
        return flash_sale_running(obj, self.context.get("now") or timezone.now())


class OfferMetadataSerializer(serializers.Serializer):
    flashSale = serializers.SerializerMethodField()

    @extend_schema_field(FlashSaleSerializer(allow_null=True))
    def get_flashSale(self, obj: Offer) -> dict | None:
        if not obj.flash_sale_active:
            return None
        return FlashSaleSerializer(obj, context=self.context).data


class OfferItemSerializer(StrIdMixin, serializers.ModelSerializer):
    discountedPrice = serializers.FloatField(source="discounted_price")
    originalPrice = serializers.FloatField(source="original_price")
    cashbackPercentage = serializers.FloatField(source="cashback_percentage")
    validity = serializers.DateTimeField(source="valid_until")
    store = OfferStoreSerializer()
    metadata = OfferMetadataSerializer(source="*")

    class Meta:
        model = Offer
        fields = [
            "id",
            "title",
            "subtitle",
            "image",
            "discountedPrice",
            "originalPrice",
            "cashbackPercentage",
            "validity",
            "category",
            "store",
            "metadata",
        ]


# --- Query parameters -----------------------------------------------------------


class LocationField(serializers.CharField):
    """``location=lng,lat``: two numbers in range, rounded to about 100 m.

    Rounding keeps nearby callers on one cache entry; the content is computed
    for the rounded point, so the entry matches its key.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Longitude,latitude, e.g. 77.5946,12.9716.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> tuple[float, float]:  # type: ignore[override]
        raw = super().to_internal_value(data)
        parts = raw.split(",")
        if len(parts) != 2:
            raise serializers.ValidationError("Must be 'lng,lat'.")
        try:
            lng, lat = (float(p) for p in parts)
        except ValueError as exc:
            raise serializers.ValidationError("Must be two numbers: 'lng,lat'.") from exc
        if not (-180 <= lng <= 180) or not (-90 <= lat <= 90):
            raise serializers.ValidationError(
                "Longitude must be within [-180, 180] and latitude within [-90, 90]."
            )
        return round(lng, 3), round(lat, 3)


class LimitQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=20, default=10, help_text="Items per section (1-20)."
    )


class LocatedListQuerySerializer(LimitQuerySerializer):
    location = LocationField()


class OffersQuerySerializer(LimitQuerySerializer):
    featured = serializers.BooleanField(
        default=False, help_text="true: the homepage's offers section; otherwise every valid offer."
    )


class HomepageQuerySerializer(LocatedListQuerySerializer):
    sections = SectionListField(
        help_text="Comma-separated section ids (camelCase or snake_case); all when absent."
    )
    includeAnalytics = serializers.BooleanField(default=False)
    fresh = serializers.BooleanField(
        default=False, help_text="Bypass the cache read (still cached afterwards)."
    )
    userId = IdField(
        required=False,
        help_text="Personalise for this user: your own id (staff: anyone's).",
    )
    fields = FieldsetField(  # type: ignore[assignment]  # the fields= parameter
        help_text="Sparse fieldset: comma-separated paths such as justForYou.items.name."
    )
    known = KnownField(help_text=KNOWN_HELP)


# --- Responses (OpenAPI) --------------------------------------------------------

ProductSectionSerializer = section_serializer("ProductSection", ProductItemSerializer)
StoreSectionSerializer = section_serializer("StoreSection", StoreItemSerializer)
EventSectionSerializer = section_serializer("EventSection", EventItemSerializer)
OfferSectionSerializer = section_serializer("OfferSection", OfferItemSerializer)


class HomepageSectionsSerializer(serializers.Serializer):
    justForYou = ProductSectionSerializer(required=False)
    newArrivals = ProductSectionSerializer(required=False)
    trendingStores = StoreSectionSerializer(required=False)
    events = EventSectionSerializer(required=False)
    offers = OfferSectionSerializer(required=False)
    flashSales = OfferSectionSerializer(required=False)


class HomepageAnalyticsSerializer(serializers.Serializer):
    sectionViews = serializers.DictField(
        child=serializers.IntegerField(), help_text="Summed view counts of each section's items."
    )
    recommendationScore = serializers.FloatField(
        required=False, allow_null=True, help_text="Mean recommendation score of justForYou."
    )


class HomepageDataSerializer(serializers.Serializer):
    sections = HomepageSectionsSerializer()
    metadata = BatchMetadataSerializer()
    analytics = HomepageAnalyticsSerializer(required=False)


class HomepageResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    data = HomepageDataSerializer()  # type: ignore[assignment]  # fields, not .data/.errors
    errors = ErrorItemSerializer(many=True, required=False)  # type: ignore[assignment]
    message = serializers.CharField(required=False)
    version = serializers.CharField()


def legacy_response_serializer(
    name: str, section: type[serializers.Serializer]
) -> type[serializers.Serializer]:
    """``{"success": true, "data": <section>}`` for a legacy list endpoint."""
    return type(
        name,
        (serializers.Serializer,),
        {"success": serializers.BooleanField(), "data": section()},
    )
