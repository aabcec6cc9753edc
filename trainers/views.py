"""Trainer bootstrap and individual endpoints; session, allocation and payout mutations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.access import User, require_staff
from api.errors import APIError
from api.ratelimits import RateLimit
from api.serializers import envelope_serializer, error_responses, validated
from api.viewsets import ID_PATTERN, BootstrapViewSet, section_endpoint

from . import selectors, services
from .access import (
    Role,
    allocation_for,
    payout_claim_for,
    session_for,
    student_for_allocation,
    trainer_for,
)
from .models import AllocationStatus, Trainer
from .sections import trainer_bootstrap
from .serializers import (
    AllocationCreateSerializer,
    AllocationSerializer,
    AllocationStatusSerializer,
    PayoutClaimCreateSerializer,
    PayoutClaimSerializer,
    PayoutClaimStatusSerializer,
    ReasonSerializer,
    SessionCompleteSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    TrainerOverviewSerializer,
    TrainerPerformanceSerializer,
    TrainerPerformanceUpdateSerializer,
    TrainerProfileSerializer,
    TrainerProfileUpdateSerializer,
)

WRITE_ERRORS = error_responses(
    {
        400: "Invalid input (VALIDATION_ERROR, naming the field).",
        401: "Not signed in (NOT_AUTHENTICATED).",
        403: "Not yours (PERMISSION_DENIED), whether or not it exists.",
        404: "Not found (staff only).",
        409: "Not allowed in the object's current state (CONFLICT).",
    }
)


def _ok(data: Mapping[str, Any], code: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, "data": data}, status=code)


TRAINER_PROFILE = envelope_serializer("TrainerProfileResponse", TrainerProfileSerializer())
TRAINER_PERFORMANCE = envelope_serializer(
    "TrainerPerformanceResponse", TrainerPerformanceSerializer()
)


@extend_schema(tags=["trainers"])
class TrainerViewSet(BootstrapViewSet):
    """``/api/v1/trainers/{trainerId}/...``: the trainer's own data, or staff."""

    spec = trainer_bootstrap
    lookup_field = "trainerId"

    def subject_for(self, user: User, subject_id: int) -> Trainer:
        return trainer_for(user, subject_id)

    overview = section_endpoint(
        "overview",
        TrainerOverviewSerializer(allow_null=True),
        "Profile, performance, documents, location.",
    )
    sessions = section_endpoint(
        "sessions", SessionSerializer(many=True), "The 200 most recent sessions."
    )
    allocations = section_endpoint(
        "allocations", AllocationSerializer(many=True), "Approved allocations with details."
    )
    payout_claims = section_endpoint(
        "payoutClaims", PayoutClaimSerializer(many=True), "Payout claims.", url_path="payout-claims"
    )

    @extend_schema(
        request=TrainerProfileUpdateSerializer,
        responses={200: TRAINER_PROFILE, **WRITE_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["patch"])
    def profile(self, request: Request, trainerId: str) -> Response:
        """Update the trainer's profile (the trainer or staff)."""
        trainer = trainer_for(request.user, int(trainerId))
        changes = validated(TrainerProfileUpdateSerializer, request.data)
        trainer = services.trainer_profile_update(trainer=trainer, **changes)
        return _ok(TrainerProfileSerializer(trainer).data)

    @extend_schema(
        request=TrainerPerformanceUpdateSerializer,
        responses={200: TRAINER_PERFORMANCE, **WRITE_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["patch"])
    def performance(self, request: Request, trainerId: str) -> Response:
        """Correct the trainer's performance figures (staff only)."""
        require_staff(request.user)
        trainer = trainer_for(request.user, int(trainerId))
        changes = validated(TrainerPerformanceUpdateSerializer, request.data)
        performance = services.trainer_performance_update(trainer=trainer, **changes)
        return _ok(TrainerPerformanceSerializer(performance).data)


SessionResponse = envelope_serializer("SessionResponse", SessionSerializer())


class SessionViewSet(viewsets.ViewSet):
    """``/api/v1/sessions``: schedule, complete, cancel, mark no-show, confirm."""

    throttle_classes = [RateLimit]

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=SessionCreateSerializer,
        responses={201: SessionResponse, **WRITE_ERRORS},
        tags=["sessions"],
    )
    def create(self, request: Request) -> Response:
        """Schedule a session on an approved allocation (its trainer, or staff)."""
        data = validated(SessionCreateSerializer, request.data)
        allocation = allocation_for(request.user, data["allocationId"], roles=["trainer"])
        session = services.session_create(
            allocation=allocation,
            scheduled_at=data["scheduledAt"],
            duration_minutes=data.get("durationMinutes"),
        )
        return _ok(SessionSerializer(session).data, status.HTTP_201_CREATED)

    @extend_schema(
        request=SessionCompleteSerializer,
        responses={200: SessionResponse, **WRITE_ERRORS},
        tags=["sessions"],
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        """Complete a scheduled session (its trainer, or staff)."""
        session = session_for(request.user, int(pk), roles=["trainer"])
        data = validated(SessionCompleteSerializer, request.data)
        session = services.session_complete(
            session=session, rating=data.get("rating"), feedback=data.get("feedback", "")
        )
        return _ok(SessionSerializer(session).data)

    @extend_schema(
        request=ReasonSerializer,
        responses={200: SessionResponse, **WRITE_ERRORS},
        tags=["sessions"],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel a scheduled session (its trainer or student, or staff)."""
        session = session_for(request.user, int(pk), roles=["trainer", "student"])
        reason = validated(ReasonSerializer, request.data).get("reason", "")
        return _ok(SessionSerializer(services.session_cancel(session=session, reason=reason)).data)

    @extend_schema(
        request=None, responses={200: SessionResponse, **WRITE_ERRORS}, tags=["sessions"]
    )
    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request: Request, pk: str) -> Response:
        """Mark a scheduled session as a no-show (its trainer, or staff)."""
        session = session_for(request.user, int(pk), roles=["trainer"])
        return _ok(SessionSerializer(services.session_mark_no_show(session=session)).data)

    @extend_schema(
        request=None, responses={200: SessionResponse, **WRITE_ERRORS}, tags=["sessions"]
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """The student confirms a scheduled session (its student, or staff)."""
        session = session_for(request.user, int(pk), roles=["student"])
        return _ok(SessionSerializer(services.session_confirm(session=session)).data)


AllocationResponse = envelope_serializer("AllocationResponse", AllocationSerializer())


class AllocationViewSet(viewsets.ViewSet):
    """``/api/v1/allocations``: request, approve, change status, cancel."""

    throttle_classes = [RateLimit]

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=AllocationCreateSerializer,
        responses={201: AllocationResponse, **WRITE_ERRORS},
        tags=["allocations"],
    )
    def create(self, request: Request) -> Response:
        """Request a trainer for a course (the student for themselves, or staff)."""
        data = validated(AllocationCreateSerializer, request.data)
        student = student_for_allocation(request.user, data["studentId"])
        trainer = selectors.trainer_by_id(data["trainerId"])
        course = selectors.course_by_id(data["courseId"])
        if trainer is None:
            raise APIError("No such trainer.", field="trainerId")
        if course is None:
            raise APIError("No such course.", field="courseId")
        allocation = services.allocation_create(
            trainer=trainer,
            student_id=student.pk,
            course=course,
            terms=services.AllocationTerms(
                sessions_total=data.get("sessionsTotal"),
                schedule=data.get("schedule"),
                start_date=data.get("startDate"),
                end_date=data.get("endDate"),
                notes=data.get("notes", ""),
            ),
        )
        return _ok(AllocationSerializer(allocation).data, status.HTTP_201_CREATED)

    def _transition(
        self, request: Request, pk: str, new_status: AllocationStatus, roles: list[Role]
    ) -> Response:
        allocation = allocation_for(request.user, int(pk), roles=roles)
        allocation = services.allocation_set_status(allocation=allocation, new_status=new_status)
        return _ok(AllocationSerializer(allocation).data)

    @extend_schema(
        request=None, responses={200: AllocationResponse, **WRITE_ERRORS}, tags=["allocations"]
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Approve a pending allocation (its trainer, or staff)."""
        return self._transition(request, pk, "approved", ["trainer"])

    @extend_schema(
        request=None, responses={200: AllocationResponse, **WRITE_ERRORS}, tags=["allocations"]
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel an allocation and its scheduled sessions (its trainer or student, or staff)."""
        return self._transition(request, pk, "cancelled", ["trainer", "student"])

    @extend_schema(
        request=AllocationStatusSerializer,
        responses={200: AllocationResponse, **WRITE_ERRORS},
        tags=["allocations"],
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str) -> Response:
        """Move an allocation to any allowed status (its trainer, or staff)."""
        new_status = validated(AllocationStatusSerializer, request.data)["status"]
        return self._transition(request, pk, new_status, ["trainer"])


PayoutClaimResponse = envelope_serializer("PayoutClaimResponse", PayoutClaimSerializer())


class PayoutClaimViewSet(viewsets.ViewSet):
    """``/api/v1/payout-claims``: a trainer claims completed sessions; staff decide."""

    throttle_classes = [RateLimit]

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=PayoutClaimCreateSerializer,
        responses={201: PayoutClaimResponse, **WRITE_ERRORS},
        tags=["payout claims"],
    )
    def create(self, request: Request) -> Response:
        """Claim payment for completed sessions (the trainer, or staff with trainerId)."""
        data = validated(PayoutClaimCreateSerializer, request.data)
        trainer_id = data.get("trainerId")
        if trainer_id is None:
            own = selectors.trainer_of_user(request.user.pk) if request.user.pk else None
            if own is None:
                raise APIError("trainerId is required.", field="trainerId")
            trainer_id = own.pk
        trainer = trainer_for(request.user, trainer_id)
        claim = services.payout_claim_create(
            trainer=trainer, session_ids=data["sessionIds"], note=data.get("note", "")
        )
        return _ok(PayoutClaimSerializer(claim).data, status.HTTP_201_CREATED)

    @extend_schema(
        request=PayoutClaimStatusSerializer,
        responses={200: PayoutClaimResponse, **WRITE_ERRORS},
        tags=["payout claims"],
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str) -> Response:
        """Approve, reject or mark paid (staff only)."""
        claim = payout_claim_for(request.user, int(pk))
        new_status = validated(PayoutClaimStatusSerializer, request.data)["status"]
        claim = services.payout_claim_set_status(claim=claim, new_status=new_status)
        return _ok(PayoutClaimSerializer(claim).data)
