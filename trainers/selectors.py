"""Trainer reads, one per bootstrap section (and its individual endpoint)."""

from __future__ import annotations

from typing import Any

from .models import Allocation, PayoutClaim, Session, Trainer, TrainerPerformance
from .serializers import (
    AllocationSerializer,
    PayoutClaimSerializer,
    SessionSerializer,
    TrainerOverviewSerializer,
)

TRAINER_SESSIONS_LIMIT = 200  # the seed's summary: the 200 most recent
PAYOUT_CLAIMS_LIMIT = 200

SESSION_RELATED = ("trainer", "student", "allocation__course")


def trainer_overview(*, trainer_id: int) -> dict[str, Any]:
    """Profile, performance (zeros before the first session), documents, location."""
    trainer = Trainer.objects.get(pk=trainer_id)
    performance = TrainerPerformance.objects.filter(trainer_id=trainer_id).first()
    return TrainerOverviewSerializer(
        {
            "profile": trainer,
            "performance": performance or TrainerPerformance(trainer=trainer),
            "documents": list(trainer.documents.all()),
            "location": trainer,
        }
    ).data


def trainer_sessions(*, trainer_id: int) -> list[dict[str, Any]]:
    """The trainer's most recent sessions, whatever their status, newest first."""
    sessions = (
        Session.objects.filter(trainer_id=trainer_id)
        .select_related(*SESSION_RELATED)
        .order_by("-scheduled_at", "-id")[:TRAINER_SESSIONS_LIMIT]
    )
    return SessionSerializer(sessions, many=True).data


def trainer_allocations(*, trainer_id: int) -> list[dict[str, Any]]:
    """Approved allocations, with student, course and schedule details."""
    allocations = Allocation.objects.filter(
        trainer_id=trainer_id, status=Allocation.Status.APPROVED
    ).select_related("trainer", "student", "course")
    return AllocationSerializer(allocations, many=True).data


def trainer_payout_claims(*, trainer_id: int) -> list[dict[str, Any]]:
    """The trainer's payout claims, newest first."""
    claims = (
        PayoutClaim.objects.filter(trainer_id=trainer_id)
        .prefetch_related("claimed")
        .order_by("-created_at", "-id")[:PAYOUT_CLAIMS_LIMIT]
    )
    return PayoutClaimSerializer(claims, many=True).data
