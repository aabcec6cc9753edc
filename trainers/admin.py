"""Admin for trainers, courses, allocations, sessions and payout claims.

Staff edit profiles and catalogue data here; everything derived from sessions
(performance figures, sessions used) is read-only, and status changes go
through admin actions that call the same services as the API, with the same
rules (an invalid transition is refused with a message, as the API's 409) and
the same invalidation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import (
    Allocation,
    AllocationStatus,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    PayoutClaimStatus,
    Session,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)
from .services import InvalidTransition


def _apply(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    change: Callable[[Any], object],
    done: str,
) -> None:
    """Run ``change`` (a service call) on each selected object; report what was refused."""
    changed, refused = 0, []
    for obj in queryset:
        try:
            change(obj)
            changed += 1
        except InvalidTransition as exc:
            refused.append(f"{obj}: {exc.detail}")
    if changed:
        modeladmin.message_user(request, f"{done}: {changed}.", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.ERROR)


class SpecialtiesField(forms.Field):
    """A list of specialties edited as one comma-separated line."""

    widget = forms.TextInput(attrs={"size": 60})

    def prepare_value(self, value: object) -> str:
        if isinstance(value, list):
            return ", ".join(value)
        return str(value or "")

    def to_python(self, value: str | None) -> list[str]:
        return [part.strip() for part in (value or "").split(",") if part.strip()]


class TrainerForm(forms.ModelForm):
    avatar = forms.URLField(assume_scheme="https", required=False, max_length=500)
    specialties = SpecialtiesField(required=False, help_text="Comma-separated, e.g. Yoga, Pilates.")

    class Meta:
        model = Trainer
        fields = [
            "user", "name", "email", "phone", "bio", "avatar", "specialties", "hourly_rate",
            "currency", "address", "city", "latitude", "longitude", "service_radius_km",
            "is_active",
        ]  # fmt: skip


URL_FIELDS: dict[type[models.Field], dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


class DocumentInline(admin.StackedInline):  # tabular: too wide for 1,400 px with its URL
    model = TrainerDocument
    formfield_overrides = URL_FIELDS
    fields = ("kind", "title", "url", "status", "expires_at")
    extra = 0


DERIVED_PERFORMANCE = (
    "sessions_completed", "sessions_cancelled", "sessions_no_show", "minutes_delivered",
    "rating_sum", "rating_count", "earnings_total", "updated_at",
)  # fmt: skip


class PerformanceInline(admin.StackedInline):
    """Figures derived from sessions: corrected through the API's performance endpoint only."""

    model = TrainerPerformance
    can_delete = False
    readonly_fields = DERIVED_PERFORMANCE
    fields = DERIVED_PERFORMANCE


@admin.register(Trainer)
class TrainerAdmin(admin.ModelAdmin):
    form = TrainerForm
    formfield_overrides = URL_FIELDS
    list_display = ("name", "email", "city", "hourly_rate", "is_active")
    list_filter = ("is_active", "city")
    search_fields = ("name", "email", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [PerformanceInline, DocumentInline]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "level", "total_sessions", "session_minutes")
    list_filter = ("level",)
    search_fields = ("title",)


AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet], None]


def service_action(name: str, description: str, change: Callable[[Any], object]) -> AdminAction:
    """An admin action applying a service call to each selected object (``_apply``)."""

    @admin.action(description=description)
    def act(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        _apply(modeladmin, request, queryset, change, description.split(" selected")[0])

    act.__name__ = name
    return act


def _set_allocation_status(new_status: AllocationStatus) -> Callable[[Allocation], object]:
    return lambda a: services.allocation_set_status(allocation=a, new_status=new_status)


def _set_claim_status(new_status: PayoutClaimStatus) -> Callable[[PayoutClaim], object]:
    return lambda c: services.payout_claim_set_status(claim=c, new_status=new_status)


# The statuses staff can move selected rows to, with their actions' verbs.
ALLOCATION_ACTIONS: tuple[tuple[AllocationStatus, str], ...] = (
    ("approved", "Approve"), ("rejected", "Reject"), ("completed", "Complete"),
    ("cancelled", "Cancel"),
)  # fmt: skip
CLAIM_ACTIONS: tuple[tuple[PayoutClaimStatus, str], ...] = (
    ("approved", "Approve"), ("rejected", "Reject"), ("paid", "Mark paid"),
)  # fmt: skip


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ("id", "trainer", "student", "course", "status", "sessions")
    list_filter = ("status",)
    search_fields = ("trainer__name", "student__name", "course__title")
    raw_id_fields = ("trainer", "student", "course")
    list_select_related = ("trainer", "student", "course")
    readonly_fields = ("status", "sessions_used", "approved_at", "created_at", "updated_at")
    actions = [
        service_action(f"allocation_{status}", f"{label} selected allocations",
                       _set_allocation_status(status))
        for status, label in ALLOCATION_ACTIONS
    ]  # fmt: skip

    @admin.display(description="sessions used")
    def sessions(self, obj: Allocation) -> str:
        return f"{obj.sessions_used} / {obj.sessions_total}"


SESSION_ACTIONS = [
    service_action(
        "complete_sessions",
        "Complete selected sessions (no rating)",
        lambda s: services.session_complete(session=s),
    ),
    service_action(
        "cancel_sessions",
        "Cancel selected sessions",
        lambda s: services.session_cancel(session=s, reason="Cancelled by staff."),
    ),
    service_action(
        "no_show_sessions",
        "Mark selected sessions as no-shows",
        lambda s: services.session_mark_no_show(session=s),
    ),
]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("id", "trainer", "student", "scheduled_at", "status", "rating")
    list_filter = ("status",)
    search_fields = ("trainer__name", "student__name")
    raw_id_fields = ("allocation", "trainer", "student")
    list_select_related = ("trainer", "student")
    readonly_fields = (
        "trainer", "student", "status", "student_confirmed_at", "completed_at", "cancelled_at",
        "cancel_reason", "rating", "feedback", "created_at", "updated_at",
    )  # fmt: skip
    date_hierarchy = "scheduled_at"
    show_full_result_count = False
    actions = SESSION_ACTIONS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # scheduled through the API, which checks the allocation's rules


class ClaimedSessionInline(admin.TabularInline):
    model = PayoutClaimSession
    fields = ("session", "active")
    readonly_fields = ("session", "active")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PayoutClaim)
class PayoutClaimAdmin(admin.ModelAdmin):
    """Claims are made by trainers; staff decide them with the actions (pending -> ...)."""

    list_display = ("id", "trainer", "amount", "currency", "status", "created_at", "decided_at")
    list_filter = ("status",)
    search_fields = ("trainer__name",)
    list_select_related = ("trainer",)
    fields = ("trainer", "amount", "currency", "status", "note", "created_at", "decided_at")
    readonly_fields = ("trainer", "amount", "currency", "status", "created_at", "decided_at")
    inlines = [ClaimedSessionInline]
    actions = [
        service_action(f"claim_{status}", f"{label} selected payout claims",
                       _set_claim_status(status))
        for status, label in CLAIM_ACTIONS
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # trainers claim their sessions through the API
