"""Output shapes of the student bootstrap (also its OpenAPI schemas)."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers import StrIdMixin
from trainers.models import Student
from trainers.serializers import CourseSummarySerializer

from .models import Achievement, CourseProgress, StudentProgress


class StudentProfileSerializer(StrIdMixin, serializers.ModelSerializer):
    userId = serializers.CharField(source="user_id")
    joinedAt = serializers.DateTimeField(source="joined_at")

    class Meta:
        model = Student
        fields = ["id", "userId", "name", "email", "phone", "avatar", "level", "goals", "joinedAt"]


class ProgressSummarySerializer(serializers.ModelSerializer):
    sessionsCompleted = serializers.IntegerField(source="sessions_completed")
    hoursCompleted = serializers.SerializerMethodField()
    coursesCompleted = serializers.IntegerField(source="courses_completed")
    coursesInProgress = serializers.SerializerMethodField()
    lastSessionAt = serializers.DateTimeField(source="last_session_at", allow_null=True)

    class Meta:
        model = StudentProgress
        fields = [
            "sessionsCompleted", "hoursCompleted", "coursesCompleted", "coursesInProgress",
            "lastSessionAt",
        ]  # fmt: skip

    def get_hoursCompleted(self, obj: StudentProgress) -> float:
        return round(obj.minutes_completed / 60, 2)

    def get_coursesInProgress(self, obj: StudentProgress) -> int:
        return self.context.get("courses_in_progress", 0)


class AchievementSerializer(StrIdMixin, serializers.ModelSerializer):
    earnedAt = serializers.DateTimeField(source="earned_at")

    class Meta:
        model = Achievement
        fields = ["id", "code", "title", "description", "earnedAt"]


class StudentOverviewSerializer(serializers.Serializer):
    profile = StudentProfileSerializer()
    progress = ProgressSummarySerializer()
    achievements = AchievementSerializer(many=True)


class CourseProgressSerializer(StrIdMixin, serializers.ModelSerializer):
    course = CourseSummarySerializer()
    sessionsCompleted = serializers.IntegerField(source="sessions_completed")
    sessionsTotal = serializers.IntegerField(source="sessions_total")
    percent = serializers.FloatField()
    lastActivityAt = serializers.DateTimeField(source="last_activity_at", allow_null=True)

    class Meta:
        model = CourseProgress
        fields = [
            "id", "course", "sessionsCompleted", "sessionsTotal", "percent", "status",
            "lastActivityAt",
        ]  # fmt: skip
