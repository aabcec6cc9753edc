"""Student reads, one per bootstrap section (and its individual endpoint)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trainers.models import Session, Student
from trainers.selectors import approved_allocations, session_rows

from .models import CourseProgress, StudentProgress
from .serializers import CourseProgressSerializer, StudentOverviewSerializer

UPCOMING_SESSIONS_LIMIT = 100


def student_overview(*, student_id: int) -> dict[str, Any]:
    """Profile, progress summary and achievements."""
    student = Student.objects.get(pk=student_id)
    progress = StudentProgress.objects.filter(student_id=student_id).first()
    in_progress = CourseProgress.objects.filter(
        student_id=student_id, status=CourseProgress.Status.IN_PROGRESS
    ).count()
    return StudentOverviewSerializer(
        {
            "profile": student,
            "progress": progress or StudentProgress(student=student),
            "achievements": list(student.achievements.all()),
        },
        context={"courses_in_progress": in_progress},
    ).data


def student_upcoming_sessions(*, student_id: int, now: datetime) -> list[dict[str, Any]]:
    """Scheduled sessions that have not started, soonest first."""
    sessions = (
        Session.objects.scheduled()
        .filter(student_id=student_id, scheduled_at__gte=now)
        .order_by("scheduled_at", "id")
    )
    return session_rows(sessions[:UPCOMING_SESSIONS_LIMIT])


def student_allocations(*, student_id: int) -> list[dict[str, Any]]:
    """Active (approved) allocations, with trainer, course and schedule details."""
    return approved_allocations(student_id=student_id)


def student_courses(*, student_id: int) -> list[dict[str, Any]]:
    """Progress in each course the student has started."""
    progress = CourseProgress.objects.filter(student_id=student_id).select_related("course")
    return list(CourseProgressSerializer(progress, many=True).data)


def student_owner(student_id: int) -> int | None:
    """The id of the user who is student ``student_id``, or None if there is no such student."""
    return Student.objects.filter(pk=student_id).values_list("user_id", flat=True).first()
