"""Demo data for students: profiles, enrolments with trainers, and the figures they imply.

Enrolments (allocations and sessions) are the training domain's to create;
this module asks for them and derives each student's progress, course
progress and achievements from what they contain.
"""

from __future__ import annotations

import random
from datetime import datetime

from trainers.demo import seed_enrolments
from trainers.models import Student, Trainer

from .models import Achievement, CourseProgress, StudentProgress

BATCH_SIZE = 5_000
LEVELS = ("beginner", "beginner", "intermediate", "advanced")
GOALS = ("Get fit", "Learn something new", "Prepare for an exam", "Play in a band", "")


def clear_students() -> None:
    """Delete every student (run after the training rows that reference them)."""
    Student.objects.all().delete()


def seed_students(
    users: list,
    trainers: list[Trainer],
    *,
    sessions_per_trainer: int,
    rng: random.Random,
    now: datetime,
    names: list[str],
) -> list[Student]:
    """A student for each of ``users``, enrolled with ``trainers``, with consistent figures."""
    students = Student.objects.bulk_create(
        [
            Student(
                user=user,
                name=f"{rng.choice(names)} {rng.choice(names)}",
                email=user.email,
                level=rng.choice(LEVELS),
                goals=rng.choice(GOALS),
            )
            for user in users
        ],
        batch_size=BATCH_SIZE,
    )
    enrolments = seed_enrolments(
        trainers, [s.pk for s in students],
        sessions_per_trainer=sessions_per_trainer, rng=rng, now=now,
    )  # fmt: skip
    done = enrolments.sessions_completed
    StudentProgress.objects.bulk_create(
        [
            StudentProgress(
                student=s,
                sessions_completed=done.get(s.pk, 0),
                minutes_completed=done.get(s.pk, 0) * 60,
            )
            for s in students
        ],
        batch_size=BATCH_SIZE,
    )
    CourseProgress.objects.bulk_create(
        [
            CourseProgress(student_id=student_id, course_id=course_id, sessions_completed=n,
                           sessions_total=enrolments.sessions_total, last_activity_at=now)
            for (student_id, course_id), n in enrolments.course_sessions.items()
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )  # fmt: skip
    Achievement.objects.bulk_create(
        [
            Achievement(student_id=student_id, code="first_session", title="First session")
            for student_id, n in done.items()
            if n >= 1
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    return students
