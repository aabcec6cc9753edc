"""Admin for students, their progress, achievements and course progress."""

from __future__ import annotations

from django.contrib import admin

from .models import Achievement, CourseProgress, Student, StudentProgress


class ProgressInline(admin.StackedInline):
    model = StudentProgress
    can_delete = False


class AchievementInline(admin.TabularInline):
    model = Achievement
    extra = 0


class CourseProgressInline(admin.TabularInline):
    model = CourseProgress
    raw_id_fields = ("course",)
    extra = 0


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "level", "joined_at")
    list_filter = ("level",)
    search_fields = ("name", "email", "user__username")
    raw_id_fields = ("user",)
    inlines = [ProgressInline, CourseProgressInline, AchievementInline]
