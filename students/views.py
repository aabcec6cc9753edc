"""Student bootstrap and individual endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from api.access import User
from api.viewsets import BootstrapViewSet, section_endpoint
from trainers.models import Student
from trainers.serializers import AllocationSerializer, SessionSerializer

from .access import student_for
from .sections import student_bootstrap
from .serializers import CourseProgressSerializer, StudentOverviewSerializer


@extend_schema(tags=["students"])
class StudentViewSet(BootstrapViewSet):
    """``/api/v1/students/{studentId}/...``: the student's own data, or staff."""

    spec = student_bootstrap
    lookup_field = "studentId"

    def subject_for(self, user: User, subject_id: int) -> Student:
        return student_for(user, subject_id)

    overview = section_endpoint(
        "overview",
        StudentOverviewSerializer(allow_null=True),
        "Profile, progress summary, achievements.",
    )
    sessions = section_endpoint("sessions", SessionSerializer(many=True), "Upcoming sessions.")
    allocations = section_endpoint(
        "allocations", AllocationSerializer(many=True), "Active allocations."
    )
    courses = section_endpoint(
        "courses", CourseProgressSerializer(many=True), "Progress in each course."
    )
