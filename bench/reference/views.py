"""What a Django team would write in an afternoon, to measure the service against.

The homepage: one DRF view, ModelSerializers, the six section querysets run one
after another with their ``COUNT(*)`` totals, no threads (and the same view
under Django's ``cache_page`` for the warm comparison). The trainer app: the
four individual endpoints, plain DRF views with ModelSerializers, no cache.
The ceiling: fixed bytes of the homepage's size through the same middleware,
alone and after the one Redis round trip a verified cache hit cannot skip.
"""

from __future__ import annotations

import os
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caching.tags import read_generations
from homepage.models import Event, Offer, Product, Store
from trainers.models import Allocation, PayoutClaim, Session, Trainer
from trainers.serializers import (
    AllocationSerializer,
    PayoutClaimSerializer,
    SessionSerializer,
    TrainerOverviewSerializer,
)

LIMIT = 10
HOMEPAGE_TAGS = ("events", "offers", "products", "stores")  # the anonymous homepage's


@cache
def _fixed_bytes() -> bytes:
    return open(os.environ["BENCH_CEILING_FILE"], "rb").read()  # noqa: SIM115


def ceiling(request: HttpRequest) -> HttpResponse:
    """The limit: the homepage's bytes, fixed, through the same middleware stack."""
    return HttpResponse(_fixed_bytes(), content_type="application/json")


def ceiling_with_redis(request: HttpRequest) -> HttpResponse:
    """The limit of a verified hit: the fixed bytes after reading the homepage's tags.

    Every cache hit checks its tags' generations in Redis (so an invalidation
    anywhere is seen at once); this is that one round trip and nothing else.
    """
    read_generations(HOMEPAGE_TAGS)
    return HttpResponse(_fixed_bytes(), content_type="application/json")


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "brand", "image", "price", "original_price", "currency",
                  "category", "rating", "cashback", "stock", "created_at"]  # fmt: skip


class StoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Store
        fields = ["id", "name", "logo", "image", "rating", "cashback", "category", "address",
                  "city", "latitude", "longitude", "tags"]  # fmt: skip


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "title", "subtitle", "image", "price", "venue", "city", "latitude",
                  "longitude", "starts_at", "category", "organizer"]  # fmt: skip


class OfferSerializer(serializers.ModelSerializer):
    store_name = serializers.CharField(source="store.name")

    class Meta:
        model = Offer
        fields = ["id", "title", "subtitle", "image", "discounted_price", "original_price",
                  "cashback_percentage", "valid_until", "category", "store", "store_name",
                  "flash_sale_active", "flash_sale_price", "flash_sale_ends_at",
                  "flash_sale_stock"]  # fmt: skip


class ConventionalHomepage(APIView):
    """Six querysets one after another, each page serialized and counted."""

    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        now = timezone.now()
        offers = Offer.objects.select_related("store")
        lists = {
            "justForYou": (
                Product.objects.filter(featured=True, is_active=True, stock__gt=0)
                .order_by("-views", "-created_at", "-pk"), ProductSerializer),
            "newArrivals": (
                Product.objects.filter(is_active=True, stock__gt=0).order_by("-created_at", "-pk"),
                ProductSerializer),
            "trendingStores": (
                Store.objects.filter(featured=True, is_active=True).order_by("-rating", "-views"),
                StoreSerializer),
            "events": (
                Event.objects.filter(featured=True, is_active=True, starts_at__gte=now)
                .order_by("starts_at"), EventSerializer),
            "offers": (
                offers.filter(featured=True, is_active=True, valid_until__gte=now)
                .order_by("-created_at", "-pk"), OfferSerializer),
            "flashSales": (
                offers.filter(is_active=True, valid_until__gte=now, flash_sale_active=True,
                              flash_sale_ends_at__gt=now).order_by("flash_sale_price"),
                OfferSerializer),
        }  # fmt: skip
        sections = {}
        for name, (queryset, serializer) in lists.items():
            total = queryset.count()
            sections[name] = {
                "items": serializer(queryset[:LIMIT], many=True).data,
                "total": total,
                "hasMore": total > LIMIT,
            }
        return Response({"success": True, "data": {"sections": sections}})


class _TrainerView(APIView):
    def trainer(self, request: Request, pk: int) -> Trainer:
        trainer = Trainer.objects.get(pk=pk)
        if trainer.user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied()
        return trainer


class TrainerOverview(_TrainerView):
    def get(self, request: Request, pk: int) -> Response:
        trainer = self.trainer(request, pk)
        data = TrainerOverviewSerializer(
            {"profile": trainer, "performance": trainer.performance,
             "documents": list(trainer.documents.all()), "location": trainer}
        ).data  # fmt: skip
        return Response({"success": True, "data": data})


class TrainerSessions(_TrainerView):
    def get(self, request: Request, pk: int) -> Response:
        trainer = self.trainer(request, pk)
        sessions = (
            Session.objects.filter(trainer=trainer)
            .select_related("trainer", "student", "allocation__course")
            .order_by("-scheduled_at")[:200]
        )
        return Response({"success": True, "data": SessionSerializer(sessions, many=True).data})


class TrainerAllocations(_TrainerView):
    def get(self, request: Request, pk: int) -> Response:
        trainer = self.trainer(request, pk)
        allocations = Allocation.objects.filter(trainer=trainer, status="approved").select_related(
            "trainer", "student", "course"
        )
        return Response(
            {"success": True, "data": AllocationSerializer(allocations, many=True).data}
        )


class TrainerPayoutClaims(_TrainerView):
    def get(self, request: Request, pk: int) -> Response:
        trainer = self.trainer(request, pk)
        claims = PayoutClaim.objects.filter(trainer=trainer).prefetch_related("claimed")[:200]
        return Response({"success": True, "data": PayoutClaimSerializer(claims, many=True).data})
