"""The student's side of training events: applied in the same transaction as the event."""

from __future__ import annotations

import pytest

from students import services as student_services
from students.models import Achievement, CourseProgress, StudentProgress
from tests.trainers.factories import AllocationFactory, SessionFactory
from trainers import services
from trainers.models import Allocation, Session

pytestmark = pytest.mark.django_db


def test_a_failure_on_the_student_side_rolls_the_completion_back(monkeypatch):
    session = SessionFactory()

    def broken(**kwargs):
        raise RuntimeError("student side failed")

    monkeypatch.setattr(student_services, "student_session_record", broken)
    with pytest.raises(RuntimeError):
        services.session_complete(session=session)
    session.refresh_from_db()
    assert session.status == "scheduled"
    assert Allocation.objects.get(pk=session.allocation_id).sessions_used == 0


def test_the_tenth_session_earns_its_milestone_once():
    allocation = AllocationFactory(sessions_total=12)
    for _ in range(11):
        services.session_complete(session=SessionFactory(allocation=allocation))
    student_id = allocation.student_id
    codes = list(Achievement.objects.filter(student_id=student_id).values_list("code", flat=True))
    assert sorted(codes) == ["first_session", "ten_sessions"]
    assert StudentProgress.objects.get(student_id=student_id).sessions_completed == 11
    assert CourseProgress.objects.get(student_id=student_id).sessions_completed == 11
    assert Session.objects.filter(status="completed").count() == 11


def test_approving_an_allocation_starts_course_progress_once():
    allocation = AllocationFactory(status="pending", sessions_total=6)
    services.allocation_set_status(allocation=allocation, new_status="approved")
    progress = CourseProgress.objects.get(student_id=allocation.student_id)
    assert (progress.sessions_total, progress.sessions_completed) == (6, 0)
