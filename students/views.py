"""Student bootstrap and individual endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from aggregation.viewsets import BootstrapViewSet, bootstrap_schema, section_endpoint
from api.access import User
from api.serializers import envelope_serializer
from trainers.serializers import AllocationSerializer, SessionSerializer

from .access import student_for
from .models import Student
from .sections import student_bootstrap
from .serializers import CourseProgressSerializer, StudentOverviewSerializer

STUDENT_OVERVIEW = envelope_serializer("StudentOverviewResponse", StudentOverviewSerializer())
STUDENT_SESSIONS = envelope_serializer("StudentSessionsResponse", SessionSerializer(many=True))
STUDENT_ALLOCATIONS = envelope_serializer(
    "StudentAllocationsResponse", AllocationSerializer(many=True)
)
STUDENT_COURSES = envelope_serializer("StudentCoursesResponse", CourseProgressSerializer(many=True))


@extend_schema(tags=["students"])
@extend_schema_view(
    bootstrap=bootstrap_schema(
        "student",
        {
            "overview": StudentOverviewSerializer(allow_null=True),
            "sessions": SessionSerializer(many=True),
            "allocations": AllocationSerializer(many=True),
            "courses": CourseProgressSerializer(many=True),
        },
    )
)
class StudentViewSet(BootstrapViewSet):
    """``/api/v1/students/{studentId}/...``: the student's own data, or staff."""

    spec = student_bootstrap
    lookup_field = "studentId"

    def subject_for(self, user: User, subject_id: int) -> Student:
        return student_for(user, subject_id)

    overview = section_endpoint(
        "overview", STUDENT_OVERVIEW, "Profile, progress summary, achievements."
    )
    sessions = section_endpoint("sessions", STUDENT_SESSIONS, "Upcoming sessions.")
    allocations = section_endpoint("allocations", STUDENT_ALLOCATIONS, "Active allocations.")
    courses = section_endpoint("courses", STUDENT_COURSES, "Progress in each course.")
