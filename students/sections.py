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


student_bootstrap = Bootstrap(
    STUDENT,
    [
        subject_section(
            "overview",
            "Profile, progress summary and achievements",
            lambda student_id, _: selectors.student_overview(student_id=student_id),
            empty=None,
        ),
        subject_section(
            "sessions",
            "Upcoming sessions",
            lambda student_id, context: selectors.student_upcoming_sessions(
                student_id=student_id, now=context.now
            ),
            empty=[],
            expires=first_start,
        ),
        subject_section(
            "allocations",
            "Active allocations",
            lambda student_id, _: selectors.student_allocations(student_id=student_id),
            empty=[],
        ),
        subject_section(
            "courses",
            "Progress in each course",
            lambda student_id, _: selectors.student_courses(student_id=student_id),
            empty=[],
        ),
    ],
    owner=selectors.student_owner,
)
