"""The student bootstrap's sections (seed 000, "future"), each also an individual endpoint."""

from __future__ import annotations

from datetime import datetime

from aggregation.bootstrap import subject_context, subject_tag
from aggregation.sections import Section, SectionContext, SectionPayload, SectionRegistry

from . import selectors
from .keys import student_section_cache_key


def student_tag(student_id: int) -> str:
    """The cache tag of everything shown about one student."""
    return subject_tag("student", student_id)


def student_context(student_id: int) -> SectionContext:
    """The section context of one student's bootstrap."""
    return subject_context("student", student_id)


def _student_id(context: SectionContext) -> int:
    return context.options["student_id"]


def fetch_overview(context: SectionContext) -> SectionPayload:
    """Profile, progress summary and achievements."""
    return SectionPayload(value=selectors.student_overview(student_id=_student_id(context)))


def fetch_upcoming_sessions(context: SectionContext) -> SectionPayload:
    """Upcoming sessions; the list is out of date once the first one starts."""
    sessions = selectors.student_upcoming_sessions(student_id=_student_id(context), now=context.now)
    first_start = datetime.fromisoformat(sessions[0]["scheduledAt"]) if sessions else None
    return SectionPayload(value=sessions, expires_at=first_start)


def fetch_allocations(context: SectionContext) -> SectionPayload:
    """Active allocations."""
    return SectionPayload(value=selectors.student_allocations(student_id=_student_id(context)))


def fetch_courses(context: SectionContext) -> SectionPayload:
    """Course progress."""
    return SectionPayload(value=selectors.student_courses(student_id=_student_id(context)))


student_sections = SectionRegistry(
    [
        Section(
            id="overview", title="Overview", type="overview", fetch=fetch_overview,
            kind="value", empty=None, cache_name="overview",
        ),
        Section(
            id="sessions", title="Upcoming sessions", type="sessions",
            fetch=fetch_upcoming_sessions, kind="value", empty=[], cache_name="sessions",
        ),
        Section(
            id="allocations", title="Active allocations", type="allocations",
            fetch=fetch_allocations, kind="value", empty=[], cache_name="allocations",
        ),
        Section(
            id="courses", title="Courses", type="courses", fetch=fetch_courses,
            kind="value", empty=[], cache_name="courses",
        ),
    ],
    cache_key=student_section_cache_key,
)  # fmt: skip
