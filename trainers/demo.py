"""Demo data for training: courses, trainers with hundreds of sessions each, payout claims.

Figures are derived from the generated sessions (sessions used, performance),
so a demo bootstrap is internally consistent; what the sessions mean for each
student is returned for the students app to seed. Rows are built in memory and
written with ``bulk_create`` in batches.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

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
SESSIONS_PER_CLAIM = 3
CLAIM_STATUSES = ("paid", "approved", "rejected", "pending")


@dataclass
class Enrolments:
    """What the generated sessions mean for each student (the students app seeds it)."""

    sessions_completed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    course_sessions: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    sessions_total: int = SESSIONS_PER_ALLOCATION + 5


def clear_enrolments() -> None:
    """Delete payout claims, sessions and allocations (what references students)."""
    PayoutClaim.objects.all().delete()
    Session.objects.all().delete()
    Allocation.objects.all().delete()


def clear_trainers() -> None:
    """Delete trainers and courses (after the students whose progress names courses)."""
    Trainer.objects.all().delete()
    Course.objects.all().delete()


def seed_trainers(users: list, *, rng: random.Random, names: list[str]) -> list[Trainer]:
    """A trainer with two documents for each of ``users``; and the course catalogue."""
    Course.objects.bulk_create(
        [Course(title=t, level=lv, total_sessions=20, session_minutes=60) for t, lv in COURSES]
    )
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
            for user in users
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
    return trainers


def seed_enrolments(
    trainers: list[Trainer],
    student_ids: list[int],
    *,
    sessions_per_trainer: int,
    rng: random.Random,
    now: datetime,
) -> Enrolments:
    """Allocations and sessions between ``trainers`` and students, with the trainers' figures.

    Sessions are mostly past (completed, a few cancelled or missed), some ahead;
    each trainer's performance is derived from them, and a few completed
    sessions are claimed for payout. Returns what they mean for each student.
    """
    courses = list(Course.objects.all())
    enrolments = Enrolments()
    if not trainers or not student_ids or not courses:
        return enrolments
    allocations: list[Allocation] = []
    plans: list[list[tuple[datetime, str, int | None]]] = []
    for trainer in trainers:
        for _ in range(max(sessions_per_trainer // SESSIONS_PER_ALLOCATION, 1)):
            plan = _session_plan(rng, now)
            allocations.append(
                Allocation(
                    trainer=trainer,
                    student_id=rng.choice(student_ids),
                    course=rng.choice(courses),
                    status="approved",
                    sessions_total=enrolments.sessions_total,
                    sessions_used=sum(status in ("completed", "no_show") for _, status, _ in plan),
                    schedule={"days": rng.sample(["mon", "tue", "wed", "thu", "fri", "sat"], 2)},
                    start_date=(now - timedelta(days=180)).date(),
                    approved_at=now - timedelta(days=180),
                )
            )
            plans.append(plan)
    allocations = Allocation.objects.bulk_create(allocations, batch_size=BATCH_SIZE)

    sessions: list[Session] = []
    performance: dict[int, dict] = defaultdict(lambda: defaultdict(Decimal))
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
                enrolments.sessions_completed[allocation.student_id] += 1
                enrolments.course_sessions[(allocation.student_id, allocation.course_id)] += 1
    sessions = Session.objects.bulk_create(sessions, batch_size=BATCH_SIZE)

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
    _seed_payout_claims(trainers, sessions, rng=rng, now=now)
    return enrolments


def _seed_payout_claims(
    trainers: list[Trainer], sessions: list[Session], *, rng: random.Random, now: datetime
) -> None:
    """Each trainer claims their oldest completed sessions, in a few claims of each status."""
    by_trainer: dict[int, list[Session]] = defaultdict(list)
    for session in sessions:
        if session.status == "completed":
            by_trainer[session.trainer_id].append(session)
    rates = {t.pk: t.hourly_rate for t in trainers}
    claims: list[PayoutClaim] = []
    claimed: list[list[Session]] = []
    for trainer_id, done in by_trainer.items():
        done.sort(key=lambda s: s.scheduled_at)
        for i, status in enumerate(CLAIM_STATUSES):
            batch = done[i * SESSIONS_PER_CLAIM : (i + 1) * SESSIONS_PER_CLAIM]
            if not batch:
                break
            created = now - timedelta(days=rng.randint(1, 60))
            claims.append(
                PayoutClaim(
                    trainer_id=trainer_id,
                    amount=(rates[trainer_id] * len(batch)).quantize(CENTS, ROUND_HALF_UP),
                    status=status,
                    created_at=created,
                    decided_at=None if status == "pending" else created + timedelta(days=1),
                )
            )
            claimed.append(batch)
    claims = PayoutClaim.objects.bulk_create(claims, batch_size=BATCH_SIZE)
    PayoutClaimSession.objects.bulk_create(
        [
            PayoutClaimSession(claim=claim, session=session, active=claim.status != "rejected")
            for claim, batch in zip(claims, claimed, strict=True)
            for session in batch
        ],
        batch_size=BATCH_SIZE,
    )


def _session_plan(rng: random.Random, now: datetime) -> list[tuple[datetime, str, int | None]]:
    """One allocation's sessions: mostly past (completed, a few cancelled or missed), some ahead."""
    plan: list[tuple[datetime, str, int | None]] = []
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
