"""What a Django team would write in an afternoon, to measure the service against.

The homepage: one DRF view, ModelSerializers, the six section querysets run one
after another with their ``COUNT(*)`` totals, no threads (and the same view
under Django's ``cache_page`` for the warm comparison); each of those lists
alone, as the legacy list endpoints. The trainer and student apps: their four
individual endpoints each, plain DRF views with ModelSerializers, no cache;
the trainer's profile as a partial update through a ModelSerializer.
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
from students.models import CourseProgress, Student, StudentProgress
from students.serializers import CourseProgressSerializer, StudentOverviewSerializer
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


def _lists() -> dict[str, tuple]:
    """The homepage's six lists: (queryset, serializer) by section name."""
    now = timezone.now()
    offers = Offer.objects.select_related("store")
    return {
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


def _page(queryset, serializer) -> dict:
    total = queryset.count()
    return {
        "items": serializer(queryset[:LIMIT], many=True).data,
        "total": total,
        "hasMore": total > LIMIT,
    }


class ConventionalHomepage(APIView):
    """Six querysets one after another, each page serialized and counted."""

    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        sections = {name: _page(*query) for name, query in _lists().items()}
        return Response({"success": True, "data": {"sections": sections}})


class ConventionalList(APIView):
    """One of the homepage's lists alone (``products/featured``...): a page and its count."""

    authentication_classes: list = []

    def get(self, request: Request, section: str) -> Response:
        return Response({"success": True, "data": _page(*_lists()[section])})


class _TrainerView(APIView):
    def trainer(self, request: Request, pk: int) -> Trainer:
        trainer = Trainer.objects.get(pk=pk)
        if trainer.user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied()
        return trainer


class TrainerProfileChanges(serializers.ModelSerializer):
    class Meta:
        model = Trainer
        fields = ["name", "email", "phone", "bio", "avatar", "specialties", "hourly_rate",
                  "address", "city", "latitude", "longitude", "service_radius_km"]  # fmt: skip


class TrainerProfile(_TrainerView):
    def patch(self, request: Request, pk: int) -> Response:
        trainer = self.trainer(request, pk)
        changes = TrainerProfileChanges(trainer, data=request.data, partial=True)
        changes.is_valid(raise_exception=True)
        changes.save()
        return Response({"success": True, "data": changes.data})


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


class _StudentView(APIView):
    def student(self, request: Request, pk: int) -> Student:
        student = Student.objects.get(pk=pk)
        if student.user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied()
        return student


class StudentOverview(_StudentView):
    def get(self, request: Request, pk: int) -> Response:
        student = self.student(request, pk)
        progress = StudentProgress.objects.filter(student=student).first()
        in_progress = CourseProgress.objects.filter(
            student=student, status=CourseProgress.Status.IN_PROGRESS
        ).count()
        data = StudentOverviewSerializer(
            {"profile": student, "progress": progress or StudentProgress(student=student),
             "achievements": list(student.achievements.all())},
            context={"courses_in_progress": in_progress},
        ).data  # fmt: skip
        return Response({"success": True, "data": data})


class StudentSessions(_StudentView):
    def get(self, request: Request, pk: int) -> Response:
        student = self.student(request, pk)
        sessions = (
            Session.objects.filter(
                student=student, status="scheduled", scheduled_at__gte=timezone.now()
            )
            .select_related("trainer", "student", "allocation__course")
            .order_by("scheduled_at", "id")[:100]
        )
        return Response({"success": True, "data": SessionSerializer(sessions, many=True).data})


class StudentAllocations(_StudentView):
    def get(self, request: Request, pk: int) -> Response:
        student = self.student(request, pk)
        allocations = Allocation.objects.filter(student=student, status="approved").select_related(
            "trainer", "student", "course"
        )
        return Response(
            {"success": True, "data": AllocationSerializer(allocations, many=True).data}
        )


class StudentCourses(_StudentView):
    def get(self, request: Request, pk: int) -> Response:
        student = self.student(request, pk)
        courses = CourseProgress.objects.filter(student=student).select_related("course")
        return Response(
            {"success": True, "data": CourseProgressSerializer(courses, many=True).data}
        )
