"""Admin for students; their progress, course progress and achievements are read-only.

Those figures are derived from completed sessions (``services.py``), so staff
see them but change them only by changing sessions.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from trainers.models import Student

from .models import Achievement, CourseProgress, StudentProgress


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ProgressInline(ReadOnlyInline):
    model = StudentProgress
    fields = ("sessions_completed", "minutes_completed", "courses_completed", "last_session_at")


class CourseProgressInline(ReadOnlyInline):
    model = CourseProgress
    fields = ("course", "sessions_completed", "sessions_total", "status", "last_activity_at")


class AchievementInline(ReadOnlyInline):
    model = Achievement
    fields = ("code", "title", "earned_at")


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "email", "level", "joined_at")
    list_filter = ("level",)
    search_fields = ("name", "email", "user__username")
    raw_id_fields = ("user",)
    inlines = [ProgressInline, CourseProgressInline, AchievementInline]
