"""Student bootstrap and individual endpoints."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aggregation.bootstrap import bootstrap_response, section_response
from aggregation.serializers import (
    BootstrapQuerySerializer,
    bootstrap_response_serializer,
    envelope_serializer,
)
from caching.activity import record_activity
from trainers.access import student_for
from trainers.keys import bootstrap_policy
from trainers.serializers import AllocationSerializer, SessionSerializer
from trainers.views import ID_PATTERN, READ_ERRORS, _input

from .keys import student_bootstrap_cache_key
from .sections import student_context, student_sections
from .serializers import CourseProgressSerializer, StudentOverviewSerializer

STUDENT_OVERVIEW = envelope_serializer("StudentOverviewResponse", StudentOverviewSerializer())
STUDENT_SESSIONS = envelope_serializer("StudentSessionsResponse", SessionSerializer(many=True))
STUDENT_ALLOCATIONS = envelope_serializer(
    "StudentAllocationsResponse", AllocationSerializer(many=True)
)
STUDENT_COURSES = envelope_serializer("StudentCoursesResponse", CourseProgressSerializer(many=True))


class StudentViewSet(viewsets.ViewSet):
    """``/api/v1/students/{studentId}/...``: the student's own data, or staff."""

    throttle_scope = "api"

    lookup_field = "studentId"
    lookup_value_regex = ID_PATTERN

    @extend_schema(
        operation_id="student_bootstrap",
        parameters=[BootstrapQuerySerializer],
        responses={
            200: bootstrap_response_serializer(
                "StudentBootstrap",
                {
                    "overview": StudentOverviewSerializer(allow_null=True),
                    "sessions": SessionSerializer(many=True),
                    "allocations": AllocationSerializer(many=True),
                    "courses": CourseProgressSerializer(many=True),
                },
            ),
            304: None,
            **READ_ERRORS,
        },
        tags=["students"],
    )
    @action(detail=True, methods=["get"])
    def bootstrap(self, request: Request, studentId: str) -> HttpResponse:
        """Overview, upcoming sessions, active allocations, course progress."""
        student = student_for(request.user, int(studentId))
        fresh = _input(BootstrapQuerySerializer, request.query_params)["fresh"]
        record_activity("student", student.pk)
        return bootstrap_response(
            request,
            registry=student_sections,
            context=student_context(student.pk),
            cache_key=student_bootstrap_cache_key(student.pk),
            policy=bootstrap_policy(),
            fresh=fresh,
        )

    def _section(self, request: Request, studentId: str, section_id: str) -> Response:
        student = student_for(request.user, int(studentId))
        return section_response(
            registry=student_sections,
            section=student_sections[section_id],
            context=student_context(student.pk),
            policy=bootstrap_policy(),
        )

    @extend_schema(
        responses={200: STUDENT_OVERVIEW, **READ_ERRORS},
        tags=["students"],
    )
    @action(detail=True, methods=["get"])
    def overview(self, request: Request, studentId: str) -> Response:
        """Profile, progress summary, achievements (``student:overview:{id}``)."""
        return self._section(request, studentId, "overview")

    @extend_schema(
        responses={200: STUDENT_SESSIONS, **READ_ERRORS},
        tags=["students"],
    )
    @action(detail=True, methods=["get"])
    def sessions(self, request: Request, studentId: str) -> Response:
        """Upcoming sessions (``student:sessions:{id}``)."""
        return self._section(request, studentId, "sessions")

    @extend_schema(
        responses={200: STUDENT_ALLOCATIONS, **READ_ERRORS},
        tags=["students"],
    )
    @action(detail=True, methods=["get"])
    def allocations(self, request: Request, studentId: str) -> Response:
        """Active allocations (``student:allocations:{id}``)."""
        return self._section(request, studentId, "allocations")

    @extend_schema(
        responses={200: STUDENT_COURSES, **READ_ERRORS},
        tags=["students"],
    )
    @action(detail=True, methods=["get"])
    def courses(self, request: Request, studentId: str) -> Response:
        """Course progress (``student:courses:{id}``)."""
        return self._section(request, studentId, "courses")
