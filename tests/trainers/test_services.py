"""Mutations: every valid transition moves every figure together; invalid ones are 409."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.errors import APIError
from caching import tags
from caching.tags import read_generations
from students.models import Achievement, CourseProgress, StudentProgress
from tests.students.factories import StudentFactory
from trainers import services
from trainers.models import Allocation, PayoutClaim, Session, Trainer, TrainerPerformance
from trainers.services import InvalidTransition

from .factories import (
    AllocationFactory,
    CourseFactory,
    SessionFactory,
    TrainerFactory,
)

pytestmark = pytest.mark.django_db


def _figures(session: Session) -> dict:
    allocation = Allocation.objects.get(pk=session.allocation_id)
    performance = TrainerPerformance.objects.get(trainer_id=session.trainer_id)
    progress = StudentProgress.objects.get(student_id=session.student_id)
    return {
        "used": allocation.sessions_used,
        "allocation": allocation.status,
        "completed": performance.sessions_completed,
        "cancelled": performance.sessions_cancelled,
        "no_show": performance.sessions_no_show,
        "minutes": performance.minutes_delivered,
        "earnings": performance.earnings_total,
        "student_sessions": progress.sessions_completed,
    }


def test_completing_a_session_moves_every_figure_together():
    session = SessionFactory(duration_minutes=90)
    services.session_complete(session=session, rating=4, feedback="great")

    session.refresh_from_db()
    assert session.status == "completed" and session.rating == 4 and session.completed_at
    figures = _figures(session)
    assert figures["used"] == 1 and figures["completed"] == 1 and figures["minutes"] == 90
    assert figures["earnings"] == Decimal("60.00")  # 40/hour for 90 minutes
    assert figures["student_sessions"] == 1
    performance = TrainerPerformance.objects.get(trainer_id=session.trainer_id)
    assert performance.rating_average == 4.0
    course = CourseProgress.objects.get(student_id=session.student_id)
    assert (course.sessions_completed, course.percent, course.status) == (1, 10.0, "in_progress")
    assert Achievement.objects.filter(student_id=session.student_id, code="first_session").exists()


def test_the_last_session_completes_the_allocation_and_the_course():
    allocation = AllocationFactory(sessions_total=1)
    session = SessionFactory(allocation=allocation)
    services.session_complete(session=session)
    allocation.refresh_from_db()
    assert allocation.status == "completed"
    course = CourseProgress.objects.get(student_id=session.student_id)
    assert course.status == "completed" and course.percent == 100.0
    assert StudentProgress.objects.get(student_id=session.student_id).courses_completed == 1
    assert Achievement.objects.filter(code=f"course_{allocation.course_id}").exists()


def test_cancel_and_no_show():
    cancelled = SessionFactory()
    services.session_cancel(session=cancelled, reason="ill")
    assert _figures(cancelled)["cancelled"] == 1 and _figures(cancelled)["used"] == 0
    absent = SessionFactory()
    services.session_mark_no_show(session=absent)
    assert _figures(absent)["no_show"] == 1 and _figures(absent)["used"] == 1


@pytest.mark.parametrize("first", ["complete", "cancel", "no_show"])
@pytest.mark.parametrize("then", ["complete", "cancel", "no_show", "confirm"])
def test_a_finished_session_cannot_change_again(first, then):
    session = SessionFactory()
    actions = {
        "complete": lambda s: services.session_complete(session=s),
        "cancel": lambda s: services.session_cancel(session=s),
        "no_show": lambda s: services.session_mark_no_show(session=s),
        "confirm": lambda s: services.session_confirm(session=s),
    }
    actions[first](session)
    before = _figures(session)
    with pytest.raises(InvalidTransition) as error:
        actions[then](session)
    assert error.value.status_code == 409
    assert _figures(session) == before  # nothing moved


def test_confirm_only_once():
    session = SessionFactory()
    services.session_confirm(session=session)
    assert Session.objects.get(pk=session.pk).student_confirmed_at is not None
    with pytest.raises(InvalidTransition):
        services.session_confirm(session=session)


def test_session_create_rules():
    allocation = AllocationFactory(sessions_total=2)
    soon = timezone.now() + timedelta(days=1)
    services.session_create(allocation=allocation, scheduled_at=soon)
    services.session_create(allocation=allocation, scheduled_at=soon)
    with pytest.raises(InvalidTransition, match="No sessions left"):
        services.session_create(allocation=allocation, scheduled_at=soon)
    with pytest.raises(InvalidTransition, match="future"):
        services.session_create(
            allocation=AllocationFactory(), scheduled_at=timezone.now() - timedelta(hours=1)
        )
    with pytest.raises(InvalidTransition, match="approved"):
        services.session_create(allocation=AllocationFactory(status="pending"), scheduled_at=soon)


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("pending", "approved", True),
        ("pending", "rejected", True),
        ("pending", "cancelled", True),
        ("pending", "completed", False),
        ("approved", "completed", True),
        ("approved", "cancelled", True),
        ("approved", "approved", False),
        ("approved", "pending", False),
        ("cancelled", "approved", False),
        ("rejected", "approved", False),
        ("completed", "cancelled", False),
    ],
)
def test_allocation_transitions(start, target, allowed):
    allocation = AllocationFactory(status=start)
    if allowed:
        services.allocation_set_status(allocation=allocation, new_status=target)
        assert Allocation.objects.get(pk=allocation.pk).status == target
    else:
        with pytest.raises(InvalidTransition):
            services.allocation_set_status(allocation=allocation, new_status=target)
        assert Allocation.objects.get(pk=allocation.pk).status == start


def test_approving_starts_course_progress_and_cancelling_cancels_sessions():
    allocation = services.allocation_create(
        trainer=TrainerFactory(),
        student_id=StudentFactory().pk,
        course=CourseFactory(total_sessions=8),
    )
    assert (allocation.status, allocation.sessions_total) == ("pending", 8)
    services.allocation_set_status(allocation=allocation, new_status="approved")
    assert CourseProgress.objects.get(student=allocation.student).sessions_total == 8
    session = services.session_create(
        allocation=allocation, scheduled_at=timezone.now() + timedelta(days=1)
    )
    services.allocation_set_status(allocation=allocation, new_status="cancelled")
    assert Session.objects.get(pk=session.pk).status == "cancelled"


def _completed_session(trainer=None, minutes=60):
    allocation = AllocationFactory(trainer=trainer) if trainer else AllocationFactory()
    session = SessionFactory(allocation=allocation, duration_minutes=minutes)
    return services.session_complete(session=session)


def test_payout_claims():
    first = _completed_session(minutes=30)
    trainer = first.trainer
    second = _completed_session(trainer=trainer, minutes=90)
    claim = services.payout_claim_create(trainer=trainer, session_ids=[first.pk, second.pk])
    assert claim.amount == Decimal("80.00") and claim.status == "pending"

    with pytest.raises(InvalidTransition, match="already claimed"):
        services.payout_claim_create(trainer=trainer, session_ids=[second.pk])
    scheduled = SessionFactory(allocation=AllocationFactory(trainer=trainer))
    with pytest.raises(InvalidTransition, match="completed"):
        services.payout_claim_create(trainer=trainer, session_ids=[scheduled.pk])
    someone_elses = _completed_session()
    with pytest.raises(APIError):
        services.payout_claim_create(trainer=trainer, session_ids=[someone_elses.pk])

    services.payout_claim_set_status(claim=claim, new_status="rejected")
    with pytest.raises(InvalidTransition):
        services.payout_claim_set_status(claim=claim, new_status="paid")
    again = services.payout_claim_create(trainer=trainer, session_ids=[second.pk])  # freed
    services.payout_claim_set_status(claim=again, new_status="approved")
    services.payout_claim_set_status(claim=again, new_status="paid")
    assert PayoutClaim.objects.get(pk=again.pk).status == "paid"


def test_every_mutation_invalidates_everyone_it_touches(django_capture_on_commit_callbacks):
    session = SessionFactory()
    tags = [f"trainer:{session.trainer_id}", f"student:{session.student_id}"]
    before, _ = read_generations(tags)
    with django_capture_on_commit_callbacks(execute=True):
        services.session_confirm(session=session)
    after, _ = read_generations(tags)
    assert all(after[t] != before[t] for t in tags)


def test_profile_update_writes_only_what_changed_in_one_statement():
    allocation = AllocationFactory()
    as_read = Trainer.objects.get(pk=allocation.trainer_id)  # by the access check
    Trainer.objects.filter(pk=as_read.pk).update(name="Changed meanwhile")
    with CaptureQueriesContext(connection) as queries:
        services.trainer_profile_update(trainer=as_read, bio="New bio")
    row = Trainer.objects.get(pk=as_read.pk)
    assert (row.name, row.bio) == ("Changed meanwhile", "New bio")  # nothing lost
    assert row.updated_at > allocation.trainer.updated_at
    statements = [q["sql"] for q in queries.captured_queries]
    # The UPDATE, and the read of which students see this trainer (their tags).
    assert [s.split()[0] for s in statements] == ["UPDATE", "SELECT"]
    assert '"name"' not in statements[0]


@pytest.mark.django_db(transaction=True)
def test_profile_update_names_its_tags_inside_its_transaction(monkeypatch):
    """So the change listener, seeing the write, knows it was announced (no second bump)."""
    announced: list[tuple[list[str], bool]] = []
    monkeypatch.setattr(
        tags,
        "_announcers",
        [lambda names, using: announced.append((names, connection.in_atomic_block))],
    )
    allocation = AllocationFactory()
    announced.clear()
    services.trainer_profile_update(trainer=allocation.trainer, bio="Announced")
    assert announced and all(inside for _, inside in announced)
    assert f"student:{allocation.student_id}" in announced[-1][0]


def test_profile_update_invalidates_the_trainers_students(django_capture_on_commit_callbacks):
    allocation = AllocationFactory()
    tag = f"student:{allocation.student_id}"
    before, _ = read_generations([tag])
    with django_capture_on_commit_callbacks(execute=True):
        services.trainer_profile_update(trainer=allocation.trainer, name="New Name")
    assert read_generations([tag])[0] != before
