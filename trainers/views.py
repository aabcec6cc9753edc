"""Trainer bootstrap and individual endpoints; session, allocation and payout mutations."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aggregation.bootstrap import bootstrap_response, section_response
from aggregation.errors import APIError
from aggregation.serializers import (
    BootstrapQuerySerializer,
    ErrorEnvelopeSerializer,
    bootstrap_response_serializer,
    envelope_serializer,
)
from caching.activity import record_activity

from . import services
from .access import (
    allocation_for,
    payout_claim_for,
    require_staff,
    session_for,
    student_for,
    trainer_for,
)
from .keys import bootstrap_policy, trainer_bootstrap_cache_key
from .models import Course, Trainer
from .sections import trainer_context, trainer_sections
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

ID_PATTERN = r"[0-9]{1,18}"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input (VALIDATION_ERROR, naming the field).",
        401: "Not signed in (NOT_AUTHENTICATED).",
        403: "Not yours (PERMISSION_DENIED), whether or not it exists.",
        404: "Not found (staff only).",
        409: "Not allowed in the object's current state (CONFLICT).",
        503: "Database unavailable.",
    }
    return {c: OpenApiResponse(ErrorEnvelopeSerializer, description=text[c]) for c in codes}


def _input(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _ok(data, code: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, "data": data}, status=code)


READ_ERRORS = _errors(400, 401, 403, 404, 503)
WRITE_ERRORS = _errors(400, 401, 403, 404, 409)


TRAINER_OVERVIEW = envelope_serializer("TrainerOverviewResponse", TrainerOverviewSerializer())
TRAINER_SESSIONS = envelope_serializer("TrainerSessionsResponse", SessionSerializer(many=True))
TRAINER_ALLOCATIONS = envelope_serializer(
    "TrainerAllocationsResponse", AllocationSerializer(many=True)
)
TRAINER_PAYOUT_CLAIMS = envelope_serializer(
    "TrainerPayoutClaimsResponse", PayoutClaimSerializer(many=True)
)
TRAINER_PROFILE = envelope_serializer("TrainerProfileResponse", TrainerProfileSerializer())
TRAINER_PERFORMANCE = envelope_serializer(
    "TrainerPerformanceResponse", TrainerPerformanceSerializer()
)


class TrainerViewSet(viewsets.ViewSet):
    """``/api/v1/trainers/{trainerId}/...``: the trainer's own data, or staff."""

    throttle_scope = "api"

    lookup_field = "trainerId"
    lookup_value_regex = ID_PATTERN

    @extend_schema(
        operation_id="trainer_bootstrap",
        parameters=[BootstrapQuerySerializer],
        responses={
            200: bootstrap_response_serializer(
                "TrainerBootstrap",
                {
                    "overview": TrainerOverviewSerializer(allow_null=True),
                    "sessions": SessionSerializer(many=True),
                    "allocations": AllocationSerializer(many=True),
                    "payoutClaims": PayoutClaimSerializer(many=True),
                },
            ),
            304: None,
            **READ_ERRORS,
        },
        tags=["trainers"],
    )
    @action(detail=True, methods=["get"])
    def bootstrap(self, request: Request, trainerId: str) -> HttpResponse:
        """Overview, the 200 most recent sessions, approved allocations, payout claims."""
        trainer = trainer_for(request.user, int(trainerId))
        fresh = _input(BootstrapQuerySerializer, request.query_params)["fresh"]
        record_activity("trainer", trainer.pk)
        return bootstrap_response(
            request,
            registry=trainer_sections,
            context=trainer_context(trainer.pk),
            cache_key=trainer_bootstrap_cache_key(trainer.pk),
            policy=bootstrap_policy(),
            fresh=fresh,
        )

    def _section(self, request: Request, trainerId: str, section_id: str) -> Response:
        trainer = trainer_for(request.user, int(trainerId))
        return section_response(
            registry=trainer_sections,
            section=trainer_sections[section_id],
            context=trainer_context(trainer.pk),
            policy=bootstrap_policy(),
        )

    @extend_schema(
        responses={200: TRAINER_OVERVIEW, **READ_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["get"])
    def overview(self, request: Request, trainerId: str) -> Response:
        """Profile, performance, documents, location (``trainer:overview:{id}``)."""
        return self._section(request, trainerId, "overview")

    @extend_schema(
        responses={200: TRAINER_SESSIONS, **READ_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["get"])
    def sessions(self, request: Request, trainerId: str) -> Response:
        """The 200 most recent sessions (``trainer:sessions:{id}``)."""
        return self._section(request, trainerId, "sessions")

    @extend_schema(
        responses={200: TRAINER_ALLOCATIONS, **READ_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["get"])
    def allocations(self, request: Request, trainerId: str) -> Response:
        """Approved allocations with details (``trainer:allocations:{id}``)."""
        return self._section(request, trainerId, "allocations")

    @extend_schema(
        responses={200: TRAINER_PAYOUT_CLAIMS, **READ_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["get"], url_path="payout-claims")
    def payout_claims(self, request: Request, trainerId: str) -> Response:
        """Payout claims (``trainer:payout-claims:{id}``)."""
        return self._section(request, trainerId, "payoutClaims")

    @extend_schema(
        request=TrainerProfileUpdateSerializer,
        responses={200: TRAINER_PROFILE, **WRITE_ERRORS},
        tags=["trainers"],
    )
    @action(detail=True, methods=["patch"])
    def profile(self, request: Request, trainerId: str) -> Response:
        """Update the trainer's profile (the trainer or staff)."""
        trainer = trainer_for(request.user, int(trainerId))
        changes = _input(TrainerProfileUpdateSerializer, request.data)
        trainer = services.trainer_profile_update(trainer=trainer, changes=changes)
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
        changes = _input(TrainerPerformanceUpdateSerializer, request.data)
        performance = services.trainer_performance_update(trainer=trainer, changes=changes)
        return _ok(TrainerPerformanceSerializer(performance).data)


SessionResponse = envelope_serializer("SessionResponse", SessionSerializer())


class SessionViewSet(viewsets.ViewSet):
    """``/api/v1/sessions``: schedule, complete, cancel, mark no-show, confirm."""

    throttle_scope = "api"

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=SessionCreateSerializer,
        responses={201: SessionResponse, **WRITE_ERRORS},
        tags=["sessions"],
    )
    def create(self, request: Request) -> Response:
        """Schedule a session on an approved allocation (its trainer, or staff)."""
        data = _input(SessionCreateSerializer, request.data)
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
        data = _input(SessionCompleteSerializer, request.data)
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
        reason = _input(ReasonSerializer, request.data).get("reason", "")
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

    throttle_scope = "api"

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=AllocationCreateSerializer,
        responses={201: AllocationResponse, **WRITE_ERRORS},
        tags=["allocations"],
    )
    def create(self, request: Request) -> Response:
        """Request a trainer for a course (the student for themselves, or staff)."""
        data = _input(AllocationCreateSerializer, request.data)
        student = student_for(request.user, data["studentId"])
        trainer = Trainer.objects.filter(pk=data["trainerId"]).first()
        course = Course.objects.filter(pk=data["courseId"]).first()
        if trainer is None:
            raise APIError("No such trainer.", field="trainerId")
        if course is None:
            raise APIError("No such course.", field="courseId")
        allocation = services.allocation_create(
            trainer=trainer,
            student=student,
            course=course,
            sessions_total=data.get("sessionsTotal"),
            schedule=data.get("schedule"),
            start_date=data.get("startDate"),
            end_date=data.get("endDate"),
            notes=data.get("notes", ""),
        )
        return _ok(AllocationSerializer(allocation).data, status.HTTP_201_CREATED)

    def _transition(self, request: Request, pk: str, new_status: str, roles: list[str]) -> Response:
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
        new_status = _input(AllocationStatusSerializer, request.data)["status"]
        return self._transition(request, pk, new_status, ["trainer"])


PayoutClaimResponse = envelope_serializer("PayoutClaimResponse", PayoutClaimSerializer())


class PayoutClaimViewSet(viewsets.ViewSet):
    """``/api/v1/payout-claims``: a trainer claims completed sessions; staff decide."""

    throttle_scope = "api"

    lookup_value_regex = ID_PATTERN

    @extend_schema(
        request=PayoutClaimCreateSerializer,
        responses={201: PayoutClaimResponse, **WRITE_ERRORS},
        tags=["payout claims"],
    )
    def create(self, request: Request) -> Response:
        """Claim payment for completed sessions (the trainer, or staff with trainerId)."""
        data = _input(PayoutClaimCreateSerializer, request.data)
        trainer_id = data.get("trainerId")
        if trainer_id is None:
            own = Trainer.objects.filter(user_id=request.user.pk).first()
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
        new_status = _input(PayoutClaimStatusSerializer, request.data)["status"]
        claim = services.payout_claim_set_status(claim=claim, new_status=new_status)
        return _ok(PayoutClaimSerializer(claim).data)
