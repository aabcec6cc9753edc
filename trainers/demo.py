"""Demo data for the bootstraps: trainers with hundreds of sessions each.

Figures are derived from the generated sessions (sessions used, performance,
progress, course progress), so a demo bootstrap is internally consistent.
Rows are built in memory and written with ``bulk_create`` in batches.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from students.models import Achievement, CourseProgress, Student, StudentProgress

from .models import Allocation, Course, Session, Trainer, TrainerDocument, TrainerPerformance

BATCH_SIZE = 5_000
SESSIONS_PER_ALLOCATION = 25
COURSES = [
    ("Yoga foundations", "beginner"), ("Strength training", "intermediate"),
    ("Spoken English", "beginner"), ("Piano", "beginner"), ("Guitar", "intermediate"),
    ("Python programming", "beginner"), ("Swimming", "beginner"), ("Public speaking", "advanced"),
    ("Chess", "intermediate"), ("Maths tutoring", "advanced"), ("Painting", "beginner"),
    ("Dance fitness", "intermediate"),
]  # fmt: skip
CENTS = Decimal("0.01")


@dataclass
class TrainingCounts:
    trainers: int
    students: int
    sessions_per_trainer: int


def seed_training(
    counts: TrainingCounts, *, rng: random.Random, now: datetime, names: list[str], password: str
) -> None:
    """Create courses, trainers, students, allocations, sessions and their figures."""
    if counts.trainers == 0 or counts.students == 0:
        return
    courses = Course.objects.bulk_create(
        [Course(title=t, level=lv, total_sessions=20, session_minutes=60) for t, lv in COURSES]
    )
    trainer_users = _users("trainer", counts.trainers, password)
    student_users = _users("student", counts.students, password)
    trainers = Trainer.objects.bulk_create(
        [
            Trainer(
                user=user,
                name=f"{rng.choice(names)} {rng.choice(names)}",
                email=user.email,
                bio="Certified coach.",
                specialties=rng.sample([c[0] for c in COURSES], 2),
                hourly_rate=Decimal(rng.choice([25, 30, 40, 50, 65])),
                city="Bengaluru",
                latitude=12.97 + rng.uniform(-0.1, 0.1),
                longitude=77.59 + rng.uniform(-0.1, 0.1),
            )
            for user in trainer_users
        ],
        batch_size=BATCH_SIZE,
    )
    TrainerDocument.objects.bulk_create(
        [
            TrainerDocument(trainer=t, kind=kind, title=kind.replace("_", " ").title(),
                            url=f"https://docs.example.com/{t.pk}/{kind}.pdf",
                            status=rng.choice(["verified", "verified", "pending"]))
            for t in trainers
            for kind in ("id_proof", "certificate")
        ],
        batch_size=BATCH_SIZE,
    )  # fmt: skip
    students = Student.objects.bulk_create(
        [
            Student(user=user, name=f"{rng.choice(names)} {rng.choice(names)}", email=user.email)
            for user in student_users
        ],
        batch_size=BATCH_SIZE,
    )

    allocations: list[Allocation] = []
    plans: list[list[tuple[datetime, str, int | None]]] = []
    for trainer in trainers:
        for _ in range(max(counts.sessions_per_trainer // SESSIONS_PER_ALLOCATION, 1)):
            course = rng.choice(courses)
            plan = _session_plan(rng, now)
            used = sum(status in ("completed", "no_show") for _, status, _ in plan)
            allocations.append(
                Allocation(
                    trainer=trainer,
                    student=rng.choice(students),
                    course=course,
                    status="approved",
                    sessions_total=SESSIONS_PER_ALLOCATION + 5,
                    sessions_used=used,
                    schedule={"days": rng.sample(["mon", "tue", "wed", "thu", "fri", "sat"], 2)},
                    start_date=(now - timedelta(days=180)).date(),
                    approved_at=now - timedelta(days=180),
                )
            )
            plans.append(plan)
    allocations = Allocation.objects.bulk_create(allocations, batch_size=BATCH_SIZE)

    sessions: list[Session] = []
    performance: dict[int, dict] = defaultdict(lambda: defaultdict(Decimal))
    progress: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    course_done: dict[tuple[int, int], int] = defaultdict(int)
    for allocation, plan in zip(allocations, plans, strict=True):
        for moment, status, rating in plan:
            sessions.append(
                Session(
                    allocation=allocation, trainer_id=allocation.trainer_id,
                    student_id=allocation.student_id, scheduled_at=moment, status=status,
                    rating=rating, completed_at=moment if status == "completed" else None,
                    cancelled_at=moment if status == "cancelled" else None,
                )
            )  # fmt: skip
            figures = performance[allocation.trainer_id]
            figures[status] += 1
            if status == "completed":
                figures["minutes"] += 60
                figures["earnings"] += allocation.trainer.hourly_rate
                if rating:
                    figures["rating_sum"] += rating
                    figures["rating_count"] += 1
                progress[allocation.student_id]["sessions"] += 1
                course_done[(allocation.student_id, allocation.course_id)] += 1
    Session.objects.bulk_create(sessions, batch_size=BATCH_SIZE)

    TrainerPerformance.objects.bulk_create(
        [
            TrainerPerformance(
                trainer=t,
                sessions_completed=int(performance[t.pk]["completed"]),
                sessions_cancelled=int(performance[t.pk]["cancelled"]),
                sessions_no_show=int(performance[t.pk]["no_show"]),
                minutes_delivered=int(performance[t.pk]["minutes"]),
                rating_sum=int(performance[t.pk]["rating_sum"]),
                rating_count=int(performance[t.pk]["rating_count"]),
                earnings_total=Decimal(performance[t.pk]["earnings"]).quantize(
                    CENTS, ROUND_HALF_UP
                ),
            )
            for t in trainers
        ],
        batch_size=BATCH_SIZE,
    )
    StudentProgress.objects.bulk_create(
        [
            StudentProgress(
                student=s,
                sessions_completed=progress[s.pk]["sessions"],
                minutes_completed=progress[s.pk]["sessions"] * 60,
            )
            for s in students
        ],
        batch_size=BATCH_SIZE,
    )
    CourseProgress.objects.bulk_create(
        [
            CourseProgress(student_id=student_id, course_id=course_id, sessions_completed=done,
                           sessions_total=SESSIONS_PER_ALLOCATION + 5, last_activity_at=now)
            for (student_id, course_id), done in course_done.items()
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )  # fmt: skip
    Achievement.objects.bulk_create(
        [
            Achievement(student_id=student_id, code="first_session", title="First session")
            for student_id, figures in progress.items()
            if figures["sessions"] >= 1
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )


def _session_plan(rng: random.Random, now: datetime) -> list[tuple[datetime, str, int | None]]:
    """One allocation's sessions: mostly past (completed, a few cancelled or missed), some ahead."""
    plan = []
    start = now - timedelta(days=rng.randint(60, 170))
    for i in range(SESSIONS_PER_ALLOCATION):
        moment = start + timedelta(days=i * 7, hours=rng.randint(8, 19))
        if moment > now:
            plan.append((moment, "scheduled", None))
            continue
        roll = rng.random()
        status = "completed" if roll < 0.85 else ("cancelled" if roll < 0.95 else "no_show")
        plan.append(
            (moment, status, rng.choice([None, 4, 5, 5]) if status == "completed" else None)
        )
    return plan


def _users(prefix: str, count: int, password: str) -> list:
    """``{prefix}1`` ... with tokens; only ``{prefix}1`` can sign in (the demo login)."""
    User = get_user_model()  # noqa: N806
    existing = set(
        User.objects.filter(username__startswith=prefix).values_list("username", flat=True)
    )
    new = [User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com")
           for i in range(1, count + 1) if f"{prefix}{i}" not in existing]  # fmt: skip
    for user in new:
        user.set_unusable_password()
    User.objects.bulk_create(new, batch_size=BATCH_SIZE)
    users = list(User.objects.filter(username__in=[f"{prefix}{i}" for i in range(1, count + 1)]))
    users.sort(key=lambda u: int(u.username.removeprefix(prefix)))
    first = users[0]
    first.set_password(password)
    first.save(update_fields=["password"])
    have_token = set(Token.objects.filter(user__in=users).values_list("user_id", flat=True))
    Token.objects.bulk_create(
        [Token(user=u, key=Token.generate_key()) for u in users if u.pk not in have_token]
    )
    return users
