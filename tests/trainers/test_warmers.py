"""The bootstraps of recently active trainers and students are warmed, a bounded number."""

from __future__ import annotations

import pytest

from caching.activity import recently_active, record_activity
from caching.warming import run_warmer

from .factories import AllocationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_recent_bootstraps_are_warmed_up_to_the_limit(client_for, settings):
    settings.BOOTSTRAP_WARM_LIMIT = 2
    allocations = [AllocationFactory() for _ in range(3)]
    for allocation in allocations:
        record_activity("trainer", allocation.trainer_id)
        record_activity("student", allocation.student_id)
    assert recently_active("trainer", 10) == [a.trainer_id for a in reversed(allocations)]

    assert run_warmer("trainers:recent-bootstraps")
    assert run_warmer("students:recent-bootstraps")

    def from_cache(kind: str, pk: int, user) -> bool:
        response = client_for(user).get(f"/api/v1/{kind}/{pk}/bootstrap")
        return response.json()["data"]["metadata"]["fromCache"]

    oldest, *recent = allocations
    assert all(from_cache("trainers", a.trainer_id, a.trainer.user) for a in recent)
    assert all(from_cache("students", a.student_id, a.student.user) for a in recent)
    assert not from_cache("trainers", oldest.trainer_id, oldest.trainer.user)  # beyond the limit


def test_reading_a_bootstrap_records_activity(client_for):
    allocation = AllocationFactory()
    client_for(allocation.trainer.user).get(f"/api/v1/trainers/{allocation.trainer_id}/bootstrap")
    assert recently_active("trainer", 5) == [allocation.trainer_id]
