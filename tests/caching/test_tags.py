"""Tag generations never repeat: not after a FLUSHDB, not after a Redis restart."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django_redis import get_redis_connection

from caching.engine import CachePolicy, Computed, get_or_compute
from caching.tags import bump, read_generations
from tests.trainers.factories import TrainerFactory
from tests.waiting import wait_until

POLICY = CachePolicy("test", soft_ttl=60, hard_ttl=60)


def test_a_missing_counter_is_created_on_read_and_never_reused():
    first, _ = read_generations(["x"])
    assert first["x"] > 0  # created at the current time, not read as 0
    assert read_generations(["x"])[0] == first  # and kept
    bump(["x"])
    bumped, _ = read_generations(["x"])
    get_redis_connection("default").flushdb()
    after_flush, _ = read_generations(["x"])
    assert after_flush["x"] > bumped["x"] > first["x"]


def test_an_entry_stored_before_a_flush_never_matches_again():
    values = iter(["A", "B", "C"])
    compute = lambda: Computed(next(values))  # noqa: E731
    assert get_or_compute("t:flush", compute, tags=["x"], policy=POLICY).value == "A"
    get_redis_connection("default").flushdb()  # the entry stays in this process's L1
    again = get_or_compute("t:flush", compute, tags=["x"], policy=POLICY)
    assert (again.value, again.from_cache) == ("B", False)


@pytest.mark.django_db(transaction=True)
def test_a_bootstrap_never_returns_to_the_state_before_a_write_across_flushes(client_for):
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    redis = get_redis_connection("default")

    def bio() -> str:
        return client.get(url).json()["data"]["overview"]["profile"]["bio"]

    client.patch(f"/api/v1/trainers/{trainer.pk}/profile", {"bio": "A"}, format="json")
    redis.flushdb()
    assert [bio() for _ in range(3)] == ["A"] * 3  # cached at a freshly created generation
    client.patch(f"/api/v1/trainers/{trainer.pk}/profile", {"bio": "B"}, format="json")
    redis.flushdb()
    assert [bio() for _ in range(3)] == ["B"] * 3


def test_generations_after_a_real_restart_are_larger_than_before(own_redis):
    values = iter(["before", "after"])
    compute = lambda: Computed(next(values))  # noqa: E731
    assert get_or_compute("t:restart", compute, tags=["y"], policy=POLICY).value == "before"
    bump(["y"])
    before, _ = read_generations(["y"])

    own_redis.stop()
    own_redis.start()  # empty: nothing survives a restart without persistence
    caches["default"].close()  # drop the pooled connections to the old process

    def generations_back():
        try:
            return read_generations(["y"])[0]
        except Exception:  # the breaker is open for a moment after the restart
            return None

    after = wait_until(generations_back, timeout=10)
    assert after["y"] > before["y"]
    result = get_or_compute("t:restart", compute, tags=["y"], policy=POLICY)
    assert (result.value, result.from_cache) == ("after", False)
