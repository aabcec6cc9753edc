"""The bootstrap viewset (``api/viewsets.py``): cache hits answered before DRF.

A bootstrap hit for a token seen recently is served by the viewset's
``dispatch`` itself (the anonymous homepage's: ``tests/homepage/test_views.py``).
These tests pin what that must not change: who may see what, the rate limits,
and the cost (counted in Redis's own command statistics, not timed).
"""

from __future__ import annotations

import pytest

from caching import metrics
from tests.factories import UserFactory
from tests.trainers.factories import TrainerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


def test_a_bootstrap_hit_reads_token_and_generation_in_one_round_trip(
    client_for, settings, own_redis
):
    settings.RATELIMIT_ENABLE = False
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert client.get(url).status_code == 200  # computed; token and owner cached

    def hit() -> None:
        response = client.get(url)
        body = response.json()
        assert response.status_code == 200
        assert "errors" not in body
        assert body["data"]["metadata"]["fromCache"] is True
        assert body["data"]["metadata"]["userId"] == str(trainer.user_id)

    metrics.flush_stats(force=True)  # so the request does not flush counters itself
    assert own_redis.commands_during(hit) == {"cmdstat_mget": 1}


def test_a_cached_bootstrap_goes_only_to_its_owner_and_staff(client_for, staff_client):
    trainer, other = TrainerFactory(), TrainerFactory()
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert client_for(trainer.user).get(url).status_code == 200  # cached, with its owner
    stranger = client_for(other.user)
    assert stranger.get(f"/api/v1/trainers/{other.pk}/bootstrap").status_code == 200
    response = stranger.get(url)  # the stranger's token is cached too
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "PERMISSION_DENIED"
    assert client_for(UserFactory()).get(url).status_code == 403
    staff = staff_client.get(url)
    assert staff.status_code == 200
    assert staff.json()["data"]["metadata"]["fromCache"] is True


def test_cached_hits_spend_the_callers_own_budget(settings, client_for):
    settings.RATE_LIMIT_READS = "2/m"
    first, second = TrainerFactory(), TrainerFactory()
    url = f"/api/v1/trainers/{first.pk}/bootstrap"
    client = client_for(first.user)
    # Counted once each (two budgets spent would refuse the second request).
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(url)
    assert refused.json()["errors"][0]["code"] == "RATE_LIMITED"
    assert int(refused["Retry-After"]) >= 1
    # Same address, another user: a budget of their own.
    assert client_for(second.user).get(f"/api/v1/trainers/{second.pk}/bootstrap").status_code == 200
