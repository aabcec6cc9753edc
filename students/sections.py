"""The student bootstrap's sections (specification 000, "future"), each also an endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregation.bootstrap import Bootstrap, subject_section
from trainers.tags import STUDENT

from . import selectors


def first_start(sessions: list[dict[str, Any]]) -> datetime | None:
    """When the first upcoming session starts: the list is out of date from then."""
    return datetime.fromisoformat(sessions[0]["scheduledAt"]) if sessions else None


upcoming = subject_section(
    "sessions", "Upcoming sessions", selectors.student_upcoming_sessions, [],
    expires=first_start,
)  # fmt: skip
student_bootstrap = Bootstrap(
    STUDENT,
    [
        subject_section("overview", "Overview", selectors.student_overview, None),
        upcoming,
        subject_section("allocations", "Active allocations", selectors.student_allocations, []),
        subject_section("courses", "Courses", selectors.student_courses, []),
    ],
    owner=selectors.student_owner,
    subject_arg="student_id",
)
