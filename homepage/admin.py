"""Admin for staff who curate the storefront: flag featured items, run flash sales."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import CategoryAffinity, Event, Offer, Product, Store

FLASH_SALE_DEFAULT_HOURS = 24
FLASH_SALE_DEFAULT_DISCOUNT = Decimal("0.80")  # sale price, as a share of the offer price


@admin.action(description="Feature selected items")
def make_featured(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    """Flag the selected rows featured in one UPDATE."""
    count = queryset.update(featured=True)
    modeladmin.message_user(request, f"Featured {count} item(s).", messages.SUCCESS)


@admin.action(description="Unfeature selected items")
def make_unfeatured(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    """Clear the featured flag of the selected rows in one UPDATE."""
    count = queryset.update(featured=False)
    modeladmin.message_user(request, f"Unfeatured {count} item(s).", messages.SUCCESS)


class CuratedAdmin(admin.ModelAdmin):
    """Shared list behaviour: featured editable in the list, bulk (un)feature."""

    actions = [make_featured, make_unfeatured]
    list_editable = ("featured",)
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over a million rows per page view
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Product)
class ProductAdmin(CuratedAdmin):
    list_display = ("name", "brand", "category", "price", "stock", "featured", "is_active", "views")
    list_filter = ("featured", "is_active", "category")
    search_fields = ("name", "brand")
    raw_id_fields = ("store",)
    date_hierarchy = "created_at"


@admin.register(Store)
class StoreAdmin(CuratedAdmin):
    list_display = ("name", "category", "city", "rating", "featured", "is_active", "views")
    list_filter = ("featured", "is_active", "category", "city")
    search_fields = ("name", "city")


@admin.register(Event)
class EventAdmin(CuratedAdmin):
    list_display = ("title", "category", "city", "starts_at", "featured", "is_active")
    list_filter = ("featured", "is_active", "category", "city")
    search_fields = ("title", "organizer", "venue")
    date_hierarchy = "starts_at"


@admin.action(description="Start a 24-hour flash sale on selected offers")
def start_flash_sale(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    """Start a flash sale ending in 24 hours (or at the offer's end, if sooner)."""
    ends_at = timezone.now() + timedelta(hours=FLASH_SALE_DEFAULT_HOURS)
    started = 0
    for offer in queryset.filter(flash_sale_active=False):
        offer.flash_sale_active = True
        offer.flash_sale_ends_at = min(ends_at, offer.valid_until)
        if offer.flash_sale_price is None:
            offer.flash_sale_price = (
                offer.discounted_price * FLASH_SALE_DEFAULT_DISCOUNT
            ).quantize(Decimal("0.01"))
        offer.save(update_fields=["flash_sale_active", "flash_sale_ends_at", "flash_sale_price"])
        started += 1
    modeladmin.message_user(request, f"Started {started} flash sale(s).", messages.SUCCESS)


@admin.action(description="Stop the flash sale on selected offers")
def stop_flash_sale(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    """End the running flash sales among the selected offers."""
    count = queryset.filter(flash_sale_active=True).update(flash_sale_active=False)
    modeladmin.message_user(request, f"Stopped {count} flash sale(s).", messages.SUCCESS)


@admin.register(Offer)
class OfferAdmin(CuratedAdmin):
    actions = [make_featured, make_unfeatured, start_flash_sale, stop_flash_sale]
    # Narrow enough for a 1,400 px screen; category and is_active are filters.
    list_display = (
        "title",
        "store",
        "discounted_price",
        "valid_until",
        "featured",
        "flash_sale_active",
    )
    list_filter = ("featured", "flash_sale_active", "is_active", "category")
    search_fields = ("title", "store__name")
    raw_id_fields = ("store",)
    list_select_related = ("store",)


@admin.register(CategoryAffinity)
class CategoryAffinityAdmin(admin.ModelAdmin):
    list_display = ("user", "category", "score")
    list_filter = ("category",)
    search_fields = ("user__username", "category")
    raw_id_fields = ("user",)
