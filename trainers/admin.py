"""Admin for trainers, courses, allocations, sessions and payout claims.

Edits here go through ``save()`` and the models' signals, so they invalidate the
bootstraps of the trainer and student concerned like any API mutation.
"""

from __future__ import annotations

from django.contrib import admin

from .models import (
    Allocation,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    Session,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)


class DocumentInline(admin.TabularInline):
    model = TrainerDocument
    extra = 0


class PerformanceInline(admin.StackedInline):
    model = TrainerPerformance
    can_delete = False


@admin.register(Trainer)
class TrainerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "city", "hourly_rate", "is_active")
    list_filter = ("is_active", "city")
    search_fields = ("name", "email", "user__username")
    raw_id_fields = ("user",)
    inlines = [PerformanceInline, DocumentInline]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "level", "total_sessions", "session_minutes")
    list_filter = ("level",)
    search_fields = ("title",)


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "trainer",
        "student",
        "course",
        "status",
        "sessions_used",
        "sessions_total",
    )
    list_filter = ("status",)
    search_fields = ("trainer__name", "student__name", "course__title")
    raw_id_fields = ("trainer", "student", "course")
    list_select_related = ("trainer", "student", "course")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("id", "trainer", "student", "scheduled_at", "status", "rating")
    list_filter = ("status",)
    search_fields = ("trainer__name", "student__name")
    raw_id_fields = ("allocation", "trainer", "student")
    list_select_related = ("trainer", "student")
    date_hierarchy = "scheduled_at"
    show_full_result_count = False


class ClaimedSessionInline(admin.TabularInline):
    model = PayoutClaimSession
    raw_id_fields = ("session",)
    extra = 0


@admin.register(PayoutClaim)
class PayoutClaimAdmin(admin.ModelAdmin):
    list_display = ("id", "trainer", "amount", "currency", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("trainer__name",)
    raw_id_fields = ("trainer",)
    inlines = [ClaimedSessionInline]
