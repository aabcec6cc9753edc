"""Student reads, one per bootstrap section (and its individual endpoint)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from aggregation.plans import Aggregate, Plan, Rows, planned
from trainers.models import Session, Student
from trainers.selectors import approved_allocations, session_items, session_query

from .models import Achievement, CourseProgress, StudentProgress
from .serializers import CourseProgressSerializer, StudentOverviewSerializer

UPCOMING_SESSIONS_LIMIT = 100


@planned
def student_overview(*, student_id: int) -> Plan[dict[str, Any]]:
    """Profile, progress summary and achievements (four queries, sent together)."""
    in_progress = CourseProgress.objects.filter(
        student_id=student_id, status=CourseProgress.Status.IN_PROGRESS
    )
    students, progress, counted, achievements = yield (
        Rows(Student.objects.filter(pk=student_id)[:1]),
        Rows(StudentProgress.objects.filter(student_id=student_id).order_by("pk")[:1]),
        Aggregate(in_progress, {"n": Count("*")}),
        Rows(Achievement.objects.filter(student_id=student_id)),
    )
    if not students:
        raise Student.DoesNotExist(f"No student {student_id}")
    student = students[0]
    return StudentOverviewSerializer(
        {
            "profile": student,
            "progress": progress[0] if progress else StudentProgress(student=student),
            "achievements": achievements,
        },
        context={"courses_in_progress": counted["n"]},
    ).data


@planned
def student_upcoming_sessions(*, student_id: int, now: datetime) -> Plan[list[dict[str, Any]]]:
    """Scheduled sessions that have not started, soonest first."""
    sessions = (
        Session.objects.scheduled()
        .filter(student_id=student_id, scheduled_at__gte=now)
        .order_by("scheduled_at", "id")
    )
    (found,) = yield (session_query(sessions[:UPCOMING_SESSIONS_LIMIT]),)
    return session_items(found)


@planned
def student_allocations(*, student_id: int) -> Plan[list[dict[str, Any]]]:
    """Active (approved) allocations, with trainer, course and schedule details."""
    return (yield from approved_allocations.plan(student_id=student_id))


@planned
def student_courses(*, student_id: int) -> Plan[list[dict[str, Any]]]:
    """Progress in each course the student has started."""
    progress = CourseProgress.objects.filter(student_id=student_id).select_related("course")
    (found,) = yield (Rows(progress),)
    return list(CourseProgressSerializer(found, many=True).data)


def student_owner(student_id: int) -> int | None:
    """The id of the user who is student ``student_id``, or None if there is no such student."""
    return Student.objects.filter(pk=student_id).values_list("user_id", flat=True).first()
