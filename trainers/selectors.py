"""Trainer reads, one per bootstrap section (and its individual endpoint)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from aggregation.formats import iso_or_none
from aggregation.plans import Plan, Rows, planned

from .models import (
    Allocation,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    Session,
    Trainer,
    TrainerDocument,
)

TRAINER_SESSIONS_LIMIT = 200  # the seed's summary: the 200 most recent
PAYOUT_CLAIMS_LIMIT = 200


_PROFILE_COLUMNS = (
    "id", "user_id", "name", "email", "phone", "bio", "avatar", "specialties", "hourly_rate",
    "currency", "is_active", "updated_at", "address", "city", "latitude", "longitude",
    "service_radius_km", "performance__sessions_completed", "performance__sessions_cancelled",
    "performance__sessions_no_show", "performance__minutes_delivered",
    "performance__rating_sum", "performance__rating_count", "performance__earnings_total",
    "performance__updated_at",
)  # fmt: skip
_DOCUMENT_COLUMNS = ("id", "kind", "title", "url", "status", "uploaded_at", "expires_at")


def _performance(row: dict[str, Any]) -> dict[str, Any]:
    """``TrainerPerformanceSerializer``'s shape; zeros before the first session."""
    count = row["performance__rating_count"] or 0
    return {
        "sessionsCompleted": row["performance__sessions_completed"] or 0,
        "sessionsCancelled": row["performance__sessions_cancelled"] or 0,
        "sessionsNoShow": row["performance__sessions_no_show"] or 0,
        "hoursDelivered": round((row["performance__minutes_delivered"] or 0) / 60, 2),
        "ratingAverage": round(row["performance__rating_sum"] / count, 2) if count else None,
        "ratingCount": count,
        "earningsTotal": float(row["performance__earnings_total"] or 0),
        "updatedAt": iso_or_none(row["performance__updated_at"]),
    }


@planned
def trainer_overview(*, trainer_id: int) -> Plan[dict[str, Any]]:
    """Profile, performance (zeros before the first session), documents, location.

    ``TrainerOverviewSerializer``'s shape from two flat queries, sent together
    (pinned by a test). No such trainer: ``Trainer.DoesNotExist``.
    """
    profile = Trainer.objects.filter(pk=trainer_id).values(*_PROFILE_COLUMNS)[:1]
    documents = (
        TrainerDocument.objects.filter(trainer_id=trainer_id)
        .order_by("-uploaded_at", "-id")
        .values(*_DOCUMENT_COLUMNS)
    )
    found, document_rows = yield (Rows(profile), Rows(documents))
    if not found:
        raise Trainer.DoesNotExist(f"No trainer {trainer_id}")
    row = found[0]
    return {
        "profile": {
            "id": str(row["id"]),
            "userId": str(row["user_id"]),
            "name": row["name"],
            "email": row["email"],
            "phone": row["phone"],
            "bio": row["bio"],
            "avatar": row["avatar"],
            "specialties": row["specialties"],
            "hourlyRate": float(row["hourly_rate"]),
            "currency": row["currency"],
            "isActive": row["is_active"],
            "updatedAt": iso_or_none(row["updated_at"]),
        },
        "performance": _performance(row),
        "documents": [
            {
                "id": str(doc["id"]),
                "kind": doc["kind"],
                "title": doc["title"],
                "url": doc["url"],
                "status": doc["status"],
                "uploadedAt": iso_or_none(doc["uploaded_at"]),
                "expiresAt": iso_or_none(doc["expires_at"]),
            }
            for doc in document_rows
        ],
        "location": {
            "address": row["address"],
            "city": row["city"],
            "latitude": row["latitude"],
            "longitude": row["longitude"],
            "serviceRadiusKm": row["service_radius_km"],
        },
    }


_SESSION_COLUMNS = (
    "id", "allocation_id", "trainer_id", "trainer__name", "trainer__avatar", "student_id",
    "student__name", "student__avatar", "allocation__course_id", "allocation__course__title",
    "allocation__course__level", "allocation__course__total_sessions",
    "allocation__course__session_minutes", "scheduled_at", "duration_minutes", "status",
    "student_confirmed_at", "completed_at", "cancelled_at", "cancel_reason", "rating",
)  # fmt: skip


def _people_and_course(row: dict[str, Any], course: str) -> dict[str, Any]:
    """The trainer, student and course summaries of a session or allocation row.

    ``course`` is the path of the course's columns (``course`` or ``allocation__course``).
    """
    return {
        "trainer": {"id": str(row["trainer_id"]), "name": row["trainer__name"],
                    "avatar": row["trainer__avatar"]},
        "student": {"id": str(row["student_id"]), "name": row["student__name"],
                    "avatar": row["student__avatar"]},
        "course": {
            "id": str(row[f"{course}_id"]),
            "title": row[f"{course}__title"],
            "level": row[f"{course}__level"],
            "totalSessions": row[f"{course}__total_sessions"],
            "sessionMinutes": row[f"{course}__session_minutes"],
        },
    }  # fmt: skip


def session_query(sessions: QuerySet) -> Rows:
    """The flat rows ``session_items`` builds sessions from (tuples, not dicts)."""
    return Rows(sessions.values_list(*_SESSION_COLUMNS))


def session_items(found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Sessions in ``SessionSerializer``'s shape, built from ``session_query``'s rows.

    A bootstrap lists up to 200 sessions; building model instances and running
    nested serializers for them costs ~100 ms, plain rows ~2 ms (tuples, not
    dicts, from the database). The shape is pinned to the serializer by a test.
    """
    rows = []
    for values in found:
        row = dict(zip(_SESSION_COLUMNS, values, strict=True))
        confirmed = row["student_confirmed_at"]
        rows.append(
            {
                "id": str(row["id"]),
                "allocationId": str(row["allocation_id"]),
                **_people_and_course(row, "allocation__course"),
                "scheduledAt": iso_or_none(row["scheduled_at"]),
                "durationMinutes": row["duration_minutes"],
                "status": row["status"],
                "studentConfirmed": confirmed is not None,
                "studentConfirmedAt": iso_or_none(confirmed),
                "completedAt": iso_or_none(row["completed_at"]),
                "cancelledAt": iso_or_none(row["cancelled_at"]),
                "cancelReason": row["cancel_reason"],
                "rating": row["rating"],
            }
        )
    return rows


@planned
def trainer_sessions(*, trainer_id: int) -> Plan[list[dict[str, Any]]]:
    """The trainer's most recent sessions, whatever their status, newest first."""
    sessions = Session.objects.filter(trainer_id=trainer_id).order_by("-scheduled_at", "-id")
    (found,) = yield (session_query(sessions[:TRAINER_SESSIONS_LIMIT]),)
    return session_items(found)


_ALLOCATION_COLUMNS = (
    "id", "trainer_id", "trainer__name", "trainer__avatar", "student_id", "student__name",
    "student__avatar", "course_id", "course__title", "course__level", "course__total_sessions",
    "course__session_minutes", "status", "schedule", "sessions_total", "sessions_used",
    "start_date", "end_date", "notes", "approved_at", "created_at",
)  # fmt: skip


def allocation_items(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Allocations in ``AllocationSerializer``'s shape, from flat rows (pinned by a test)."""
    return [
        {
            "id": str(row["id"]),
            **_people_and_course(row, "course"),
            "status": row["status"],
            "schedule": row["schedule"],
            "sessionsTotal": row["sessions_total"],
            "sessionsUsed": row["sessions_used"],
            "sessionsRemaining": max(row["sessions_total"] - row["sessions_used"], 0),
            "startDate": row["start_date"].isoformat() if row["start_date"] else None,
            "endDate": row["end_date"].isoformat() if row["end_date"] else None,
            "notes": row["notes"],
            "approvedAt": iso_or_none(row["approved_at"]),
            "createdAt": iso_or_none(row["created_at"]),
        }
        for row in found
    ]  # fmt: skip


@planned
def approved_allocations(**person: int) -> Plan[list[dict[str, Any]]]:
    """Approved (active) allocations of ``trainer_id=`` or ``student_id=``, with details."""
    allocations = Allocation.objects.approved().filter(**person)
    (found,) = yield (Rows(allocations.values(*_ALLOCATION_COLUMNS)),)
    return allocation_items(found)


@planned
def trainer_allocations(*, trainer_id: int) -> Plan[list[dict[str, Any]]]:
    """Approved allocations, with student, course and schedule details."""
    return (yield from approved_allocations.plan(trainer_id=trainer_id))


_CLAIM_COLUMNS = ("id", "trainer_id", "amount", "currency", "status", "note", "created_at",
                  "decided_at")  # fmt: skip


def payout_claim_rows(claims: QuerySet) -> Plan[list[dict[str, Any]]]:
    """Payout claims in ``PayoutClaimSerializer``'s shape, from two flat queries (pinned).

    Sent together: the claimed sessions are found by the same query as the
    claims, as a subquery.
    """
    claimed = PayoutClaimSession.objects.filter(claim_id__in=claims.values("id")).order_by("pk")
    rows, pairs = yield (
        Rows(claims.values(*_CLAIM_COLUMNS)),
        Rows(claimed.values_list("claim_id", "session_id")),
    )
    sessions: dict[int, list[str]] = {row["id"]: [] for row in rows}
    for claim_id, session_id in pairs:
        sessions[claim_id].append(str(session_id))
    return [
        {
            "id": str(row["id"]),
            "trainerId": str(row["trainer_id"]),
            "amount": float(row["amount"]),
            "currency": row["currency"],
            "status": row["status"],
            "sessionIds": sessions[row["id"]],
            "note": row["note"],
            "createdAt": iso_or_none(row["created_at"]),
            "decidedAt": iso_or_none(row["decided_at"]),
        }
        for row in rows
    ]


@planned
def trainer_payout_claims(*, trainer_id: int) -> Plan[list[dict[str, Any]]]:
    """The trainer's payout claims, newest first."""
    claims = PayoutClaim.objects.filter(trainer_id=trainer_id).order_by("-created_at", "-id")
    return (yield from payout_claim_rows(claims[:PAYOUT_CLAIMS_LIMIT]))


def trainer_by_id(trainer_id: int) -> Trainer | None:
    """The trainer ``trainer_id``, or None."""
    return Trainer.objects.filter(pk=trainer_id).first()


def course_by_id(course_id: int) -> Course | None:
    """The course ``course_id``, or None."""
    return Course.objects.filter(pk=course_id).first()


def trainer_of_user(user_id: int) -> Trainer | None:
    """The trainer profile of a signed-in user, if they are a trainer."""
    return Trainer.objects.filter(user_id=user_id).first()


def trainer_owner(trainer_id: int) -> int | None:
    """The id of the user who is trainer ``trainer_id``, or None if there is no such trainer."""
    return Trainer.objects.filter(pk=trainer_id).values_list("user_id", flat=True).first()
