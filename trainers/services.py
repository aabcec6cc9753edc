"""Writes: sessions, allocations, payout claims, trainer profile and performance.

Each service is one transaction. Rows that change together are locked in one
order (session, allocation, performance, then whatever the receivers of
``session_completed`` lock: student progress, course progress) so concurrent
mutations serialise instead of losing updates or deadlocking. No service
invalidates by itself: every row it saves or bulk-writes bumps, on commit, the
tags of everyone it is shown to (``signals.py``, ``querysets.py``). Invalid
state transitions raise ``InvalidTransition`` (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from aggregation.errors import ErrorCode
from api.errors import APIError

from .models import (
    Allocation,
    AllocationStatus,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    PayoutClaimStatus,
    Session,
    Trainer,
    TrainerPerformance,
)
from .signals import allocation_approved, session_completed

# The rows a service locks by primary key.
_Locked = TypeVar("_Locked", Allocation, Session, PayoutClaim)

CENTS = Decimal("0.01")

ALLOCATION_TRANSITIONS: dict[str, set[str]] = {
    Allocation.Status.PENDING: {
        Allocation.Status.APPROVED,
        Allocation.Status.REJECTED,
        Allocation.Status.CANCELLED,
    },
    Allocation.Status.APPROVED: {Allocation.Status.COMPLETED, Allocation.Status.CANCELLED},
}
PAYOUT_TRANSITIONS: dict[str, set[str]] = {
    PayoutClaim.Status.PENDING: {PayoutClaim.Status.APPROVED, PayoutClaim.Status.REJECTED},
    PayoutClaim.Status.APPROVED: {PayoutClaim.Status.PAID},
}


class InvalidTransition(APIError):
    """The object is not in a state that allows this change."""

    status_code: int = status.HTTP_409_CONFLICT
    code = ErrorCode.CONFLICT
    default_detail = "This change is not allowed in the object's current state."


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidTransition(message)


def _locked(model: type[_Locked], pk: int) -> _Locked:
    return model.objects.select_for_update().get(pk=pk)


def _performance(trainer_id: int) -> TrainerPerformance:
    TrainerPerformance.objects.get_or_create(trainer_id=trainer_id)
    return TrainerPerformance.objects.select_for_update().get(trainer_id=trainer_id)


def _use_session(allocation: Allocation) -> None:
    """Count one more session used; the allocation completes at its total."""
    allocation.sessions_used += 1
    if allocation.sessions_used >= allocation.sessions_total:
        allocation.status = Allocation.Status.COMPLETED
    allocation.save(update_fields=["sessions_used", "status", "updated_at"])


# --- sessions -----------------------------------------------------------------------


@transaction.atomic
def session_create(
    *, allocation: Allocation, scheduled_at: datetime, duration_minutes: int | None = None
) -> Session:
    """Schedule a session on an approved allocation that has sessions left."""
    allocation = _locked(Allocation, allocation.pk)
    _require(
        allocation.status == Allocation.Status.APPROVED,
        f"Sessions need an approved allocation (this one is {allocation.status}).",
    )
    _require(scheduled_at > timezone.now(), "A session must be scheduled in the future.")
    planned = allocation.sessions.scheduled().count()
    _require(
        allocation.sessions_used + planned < allocation.sessions_total,
        "No sessions left on this allocation.",
    )
    session = Session.objects.create(
        allocation=allocation,
        trainer_id=allocation.trainer_id,
        student_id=allocation.student_id,
        scheduled_at=scheduled_at,
        duration_minutes=duration_minutes or allocation.course.session_minutes,
    )
    return session


def _scheduled(session: Session, action: str) -> Session:
    session = _locked(Session, session.pk)
    _require(
        session.status == Session.Status.SCHEDULED,
        f"A {session.status.replace('_', '-')} session cannot be {action}.",
    )
    return session


@transaction.atomic
def session_complete(*, session: Session, rating: int | None = None, feedback: str = "") -> Session:
    """Complete a session; move every figure that counts it, in the same transaction.

    The allocation's sessions used and the trainer's performance change here;
    ``session_completed`` lets the student's side (progress, course progress,
    achievements) change in the same transaction.
    """
    session = _scheduled(session, "completed")
    allocation = _locked(Allocation, session.allocation_id)
    performance = _performance(session.trainer_id)
    trainer = Trainer.objects.get(pk=session.trainer_id)
    now = timezone.now()

    session.status = Session.Status.COMPLETED
    session.completed_at = now
    session.rating = rating
    session.feedback = feedback
    session.save(update_fields=["status", "completed_at", "rating", "feedback", "updated_at"])
    _use_session(allocation)

    performance.sessions_completed += 1
    performance.minutes_delivered += session.duration_minutes
    earned = trainer.hourly_rate * session.duration_minutes / 60
    performance.earnings_total += earned.quantize(CENTS, ROUND_HALF_UP)
    if rating is not None:
        performance.rating_sum += rating
        performance.rating_count += 1
    performance.save()

    session_completed.send(Session, session=session, allocation=allocation, completed_at=now)
    return session


@transaction.atomic
def session_cancel(*, session: Session, reason: str = "") -> Session:
    """Cancel a scheduled session."""
    session = _scheduled(session, "cancelled")
    performance = _performance(session.trainer_id)
    session.status = Session.Status.CANCELLED
    session.cancelled_at = timezone.now()
    session.cancel_reason = reason
    session.save(update_fields=["status", "cancelled_at", "cancel_reason", "updated_at"])
    performance.sessions_cancelled += 1
    performance.save()
    return session


@transaction.atomic
def session_mark_no_show(*, session: Session) -> Session:
    """The student did not come: the session is used up, and counted as a no-show."""
    session = _scheduled(session, "marked as a no-show")
    allocation = _locked(Allocation, session.allocation_id)
    performance = _performance(session.trainer_id)
    session.status = Session.Status.NO_SHOW
    session.save(update_fields=["status", "updated_at"])
    _use_session(allocation)
    performance.sessions_no_show += 1
    performance.save()
    return session


@transaction.atomic
def session_confirm(*, session: Session) -> Session:
    """The student confirms they will attend a scheduled session (once)."""
    session = _scheduled(session, "confirmed")
    _require(session.student_confirmed_at is None, "This session is already confirmed.")
    session.student_confirmed_at = timezone.now()
    session.save(update_fields=["student_confirmed_at", "updated_at"])
    return session


# --- allocations -----------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationTerms:
    """What a request for an allocation may ask beyond who and which course."""

    sessions_total: int | None = None  # None (or 0): the course's total
    schedule: dict[str, Any] | None = None
    start_date: date | None = None
    end_date: date | None = None
    notes: str = ""


@transaction.atomic
def allocation_create(
    *, trainer: Trainer, student_id: int, course: Course, terms: AllocationTerms | None = None
) -> Allocation:
    """Request a trainer for a course; it starts pending."""
    _require(trainer.is_active, "This trainer is not taking allocations.")
    terms = terms or AllocationTerms()
    allocation = Allocation.objects.create(
        trainer=trainer,
        student_id=student_id,
        course=course,
        sessions_total=terms.sessions_total or course.total_sessions,
        schedule=terms.schedule or {},
        start_date=terms.start_date,
        end_date=terms.end_date,
        notes=terms.notes,
    )
    return allocation


@transaction.atomic
def allocation_set_status(*, allocation: Allocation, new_status: AllocationStatus) -> Allocation:
    """Move an allocation along its lifecycle; cancelling cancels its scheduled sessions."""
    allocation = _locked(Allocation, allocation.pk)
    allowed = ALLOCATION_TRANSITIONS.get(allocation.status, set())
    _require(
        new_status in allowed,
        f"A {allocation.status} allocation cannot become {new_status}.",
    )
    allocation.status = new_status
    if new_status == Allocation.Status.APPROVED:
        allocation.approved_at = timezone.now()
        allocation_approved.send(Allocation, allocation=allocation)
    if new_status == Allocation.Status.CANCELLED:
        allocation.sessions.scheduled().update(
            status=Session.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancel_reason="Allocation cancelled.",
        )
    allocation.save()
    return allocation


# --- payout claims -----------------------------------------------------------------------


@transaction.atomic
def payout_claim_create(*, trainer: Trainer, session_ids: list[int], note: str = "") -> PayoutClaim:
    """Claim payment for completed sessions; a session can be claimed only once."""
    ids = sorted(set(session_ids))
    sessions = list(
        Session.objects.select_for_update().filter(pk__in=ids, trainer=trainer).order_by("pk")
    )
    if len(sessions) != len(ids):
        raise APIError("Unknown sessions for this trainer.", field="sessionIds")
    not_done = [str(s.pk) for s in sessions if s.status != Session.Status.COMPLETED]
    _require(not not_done, f"Only completed sessions can be claimed (not {', '.join(not_done)}).")
    claimed = PayoutClaimSession.objects.filter(session_id__in=ids, active=True)
    taken = sorted(str(pk) for pk in claimed.values_list("session_id", flat=True))
    _require(not taken, f"Sessions already claimed: {', '.join(taken)}.")
    minutes = sum(s.duration_minutes for s in sessions)
    amount = (trainer.hourly_rate * minutes / 60).quantize(CENTS, ROUND_HALF_UP)
    claim = PayoutClaim.objects.create(
        trainer=trainer, amount=amount, currency=trainer.currency, note=note
    )
    try:
        with transaction.atomic():
            PayoutClaimSession.objects.bulk_create(
                [PayoutClaimSession(claim=claim, session=s) for s in sessions]
            )
    except IntegrityError as exc:  # a concurrent claim won the race
        raise InvalidTransition("Some of these sessions were just claimed.") from exc
    return claim


@transaction.atomic
def payout_claim_set_status(*, claim: PayoutClaim, new_status: PayoutClaimStatus) -> PayoutClaim:
    """Approve, reject or mark paid; a rejected claim frees its sessions."""
    claim = _locked(PayoutClaim, claim.pk)
    allowed = PAYOUT_TRANSITIONS.get(claim.status, set())
    _require(new_status in allowed, f"A {claim.status} claim cannot become {new_status}.")
    claim.status = new_status
    claim.decided_at = timezone.now()
    claim.save(update_fields=["status", "decided_at", "updated_at"])
    if new_status == PayoutClaim.Status.REJECTED:
        claim.claimed.update(active=False)
    return claim


# --- trainer profile and performance ---------------------------------------------------

PROFILE_FIELDS = frozenset(
    {"name", "email", "phone", "bio", "avatar", "specialties", "hourly_rate", "address", "city",
     "latitude", "longitude", "service_radius_km"}
)  # fmt: skip
PERFORMANCE_FIELDS = frozenset(
    {"sessions_completed", "sessions_cancelled", "sessions_no_show", "minutes_delivered",
     "earnings_total"}
)  # fmt: skip


def _assign(obj: object, changes: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"Not editable here: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(obj, name, value)


@transaction.atomic(savepoint=False)
def trainer_profile_update(*, trainer: Trainer, **changes: Any) -> Trainer:
    """Change profile fields (model field names); students who see this trainer see it too.

    Only the fields sent are written (with ``updated_at``), in one ``UPDATE``
    without a lock: a concurrent change to other fields is kept, and the
    request makes five round trips to the database rather than six (no
    ``SELECT ... FOR UPDATE``). In one transaction all the same, as every
    service here: the change listener is told which tags it bumps, and a
    failure before the commit undoes the write. ``trainer`` is the row as read
    for the access check: its other fields are as they were read.
    """
    _assign(trainer, changes, PROFILE_FIELDS)
    if changes:
        trainer.save(update_fields=[*changes, "updated_at"])
    return trainer


@transaction.atomic
def trainer_performance_update(*, trainer: Trainer, **changes: Any) -> TrainerPerformance:
    """Staff corrections to a trainer's running figures (model field names)."""
    performance = _performance(trainer.pk)
    _assign(performance, changes, PERFORMANCE_FIELDS)
    performance.save()
    return performance
