"""Bulk writes of the training models invalidate like the storefront's: through their querysets."""

from __future__ import annotations

import pytest

from caching.tags import read_generations
from students.models import Achievement
from tests.trainers.factories import AllocationFactory, SessionFactory, TrainerFactory
from trainers.models import PayoutClaim, PayoutClaimSession, Session

pytestmark = pytest.mark.django_db


def _bumped(tags: list[str], write, capture) -> set[str]:
    before, _ = read_generations(tags)
    with capture(execute=True):
        write()
    after, _ = read_generations(tags)
    return {t for t in tags if after[t] != before[t]}


def test_an_update_bumps_the_rows_people_and_only_theirs(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # their creation's bumps done first
        session, other = SessionFactory(), SessionFactory()
    mine = [f"trainer:{session.trainer_id}", f"student:{session.student_id}"]
    theirs = [f"trainer:{other.trainer_id}", f"student:{other.student_id}"]
    bumped = _bumped(
        mine + theirs,
        lambda: Session.objects.filter(pk=session.pk).update(feedback="bulk"),
        django_capture_on_commit_callbacks,
    )
    assert bumped == set(mine)


def test_an_update_that_moves_rows_bumps_both_sides(django_capture_on_commit_callbacks):
    session, newcomer = SessionFactory(), TrainerFactory()
    tags = [f"trainer:{session.trainer_id}", f"trainer:{newcomer.pk}"]
    bumped = _bumped(
        tags,
        lambda: Session.objects.filter(pk=session.pk).update(trainer=newcomer),
        django_capture_on_commit_callbacks,
    )
    assert bumped == set(tags)


def test_an_update_of_ignored_fields_bumps_nothing(django_capture_on_commit_callbacks):
    allocation = AllocationFactory()
    tags = [f"trainer:{allocation.trainer_id}", f"student:{allocation.student_id}"]
    bumped = _bumped(
        tags,
        lambda: (
            type(allocation).objects.filter(pk=allocation.pk).update(notes="x")
            and type(allocation)
            .objects.filter(pk=allocation.pk)
            .update(updated_at=allocation.created_at)
        ),
        django_capture_on_commit_callbacks,
    )
    assert bumped == set(tags)  # notes are shown; updated_at alone would not be
    assert (
        _bumped(
            tags,
            lambda: (
                type(allocation)
                .objects.filter(pk=allocation.pk)
                .update(updated_at=allocation.created_at)
            ),
            django_capture_on_commit_callbacks,
        )
        == set()
    )


def test_bulk_writes_of_claims_and_student_rows_bump_their_people(
    django_capture_on_commit_callbacks,
):
    session = SessionFactory(status="completed")
    claim = PayoutClaim.objects.create(trainer_id=session.trainer_id, amount=10)
    trainer, student = f"trainer:{session.trainer_id}", f"student:{session.student_id}"
    assert _bumped(
        [trainer],
        lambda: PayoutClaimSession.objects.bulk_create(
            [PayoutClaimSession(claim=claim, session=session)]
        ),
        django_capture_on_commit_callbacks,
    ) == {trainer}
    assert _bumped(
        [student],
        lambda: Achievement.objects.bulk_create(
            [Achievement(student_id=session.student_id, code="bulk", title="Bulk")]
        ),
        django_capture_on_commit_callbacks,
    ) == {student}
