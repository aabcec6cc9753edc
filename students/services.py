"""A student's own write rules: progress, course progress and achievements.

Run by the receivers of the training domain's signals, inside the transaction
of the change that caused them (a session completed, an allocation approved),
so a student's figures never disagree with the sessions they count.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from trainers.models import Allocation

from .models import Achievement, CourseProgress, StudentProgress

MILESTONES = {1: ("first_session", "First session"), 10: ("ten_sessions", "Ten sessions")}


def _progress(student_id: int) -> StudentProgress:
    StudentProgress.objects.get_or_create(student_id=student_id)
    return StudentProgress.objects.select_for_update().get(student_id=student_id)


@transaction.atomic
def course_progress_start(*, allocation: Allocation) -> CourseProgress:
    """Start tracking the student's progress in the allocation's course (once)."""
    progress, _ = CourseProgress.objects.get_or_create(
        student_id=allocation.student_id,
        course_id=allocation.course_id,
        defaults={"sessions_total": allocation.sessions_total},
    )
    return progress


@transaction.atomic
def student_session_record(
    *, allocation: Allocation, minutes: int, completed_at: datetime
) -> StudentProgress:
    """Count one completed session of ``allocation`` in its student's figures.

    Progress, course progress (completing the course at its total) and the
    achievements they earn change together. Locks progress, then course progress.
    """
    student_id = allocation.student_id
    progress = _progress(student_id)
    course_progress, _ = CourseProgress.objects.select_for_update().get_or_create(
        student_id=student_id,
        course_id=allocation.course_id,
        defaults={"sessions_total": allocation.sessions_total},
    )
    course_progress.sessions_completed += 1
    course_progress.last_activity_at = completed_at
    finished_course = (
        course_progress.status == CourseProgress.Status.IN_PROGRESS
        and course_progress.sessions_completed >= course_progress.sessions_total
    )
    if finished_course:
        course_progress.status = CourseProgress.Status.COMPLETED
    course_progress.save()

    progress.sessions_completed += 1
    progress.minutes_completed += minutes
    progress.last_session_at = completed_at
    progress.courses_completed += int(finished_course)
    progress.save()

    milestone = MILESTONES.get(progress.sessions_completed)
    if milestone:
        Achievement.objects.get_or_create(
            student_id=student_id, code=milestone[0], defaults={"title": milestone[1]}
        )
    if finished_course:
        Achievement.objects.get_or_create(
            student_id=student_id,
            code=f"course_{allocation.course_id}",
            defaults={"title": f"Completed {allocation.course.title}"},
        )
    return progress
