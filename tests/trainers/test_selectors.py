"""Trainer reads (``trainers/selectors.py``): the flat rows match the serializers."""

from __future__ import annotations

import pytest

from trainers import services
from trainers.models import Session, TrainerPerformance

from .factories import AllocationFactory, SessionFactory, TrainerFactory

pytestmark = pytest.mark.django_db


def test_flat_session_rows_match_the_serializer():
    from trainers.selectors import session_items, session_query
    from trainers.serializers import SessionSerializer

    done = services.session_complete(session=SessionFactory(), rating=5)
    confirmed = services.session_confirm(session=SessionFactory())
    cancelled = services.session_cancel(session=SessionFactory(), reason="rain")
    ids = [done.pk, confirmed.pk, cancelled.pk]
    queryset = Session.objects.filter(pk__in=ids).order_by("pk")
    expected = SessionSerializer(
        queryset.select_related("trainer", "student", "allocation__course"), many=True
    ).data
    assert session_items(list(session_query(queryset).queryset)) == expected


def test_flat_allocation_rows_match_the_serializer():
    from trainers.models import Allocation
    from trainers.selectors import _ALLOCATION_COLUMNS, allocation_items
    from trainers.serializers import AllocationSerializer

    AllocationFactory(schedule={"days": ["mon"]}, start_date="2030-01-01", notes="n")
    AllocationFactory(status="pending", approved_at=None)
    queryset = Allocation.objects.order_by("pk")
    expected = AllocationSerializer(
        queryset.select_related("trainer", "student", "course"), many=True
    ).data
    assert allocation_items(list(queryset.values(*_ALLOCATION_COLUMNS))) == expected


@pytest.mark.parametrize("with_performance", [True, False])
def test_flat_overview_matches_the_serializer(with_performance):
    from trainers.models import Trainer
    from trainers.selectors import trainer_overview
    from trainers.serializers import TrainerOverviewSerializer

    from .factories import TrainerDocumentFactory

    trainer = TrainerFactory() if with_performance else TrainerFactory(performance=None)
    if with_performance:
        services.session_complete(session=SessionFactory(allocation__trainer=trainer), rating=4)
    TrainerDocumentFactory.create_batch(2, trainer=trainer)
    trainer = Trainer.objects.get(pk=trainer.pk)
    performance = TrainerPerformance.objects.filter(trainer=trainer).first()
    expected = TrainerOverviewSerializer(
        {
            "profile": trainer,
            "performance": performance or TrainerPerformance(trainer=trainer),
            "documents": list(trainer.documents.all()),
            "location": trainer,
        }
    ).data
    assert trainer_overview(trainer_id=trainer.pk) == expected


def test_flat_payout_claim_rows_match_the_serializer():
    from aggregation.plans import run_plan
    from trainers.models import PayoutClaim
    from trainers.selectors import payout_claim_rows
    from trainers.serializers import PayoutClaimSerializer

    trainer = TrainerFactory()
    done = [
        services.session_complete(session=SessionFactory(allocation__trainer=trainer))
        for _ in range(3)
    ]
    services.payout_claim_create(trainer=trainer, session_ids=[s.pk for s in done[:2]], note="n")
    decided = services.payout_claim_create(trainer=trainer, session_ids=[done[2].pk])
    services.payout_claim_set_status(claim=decided, new_status="rejected")
    queryset = PayoutClaim.objects.order_by("pk")
    expected = PayoutClaimSerializer(queryset.prefetch_related("claimed"), many=True).data
    assert run_plan(payout_claim_rows(queryset)) == expected
    assert [len(row["sessionIds"]) for row in expected] == [2, 1]
