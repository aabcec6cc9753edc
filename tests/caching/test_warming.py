"""Warming: beat schedule, management command, re-warming through a real worker."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_redis import get_redis_connection

from caching import warming
from caching.keys import WARM_RUNS_KEY
from caching.schedule import WARMING_TASK_NAME, ensure_warming_schedule
from caching.shared import shared_cache
from caching.tags import bump, read_generations
from homepage.models import Product
from tests.homepage.factories import ProductFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]


def test_beat_schedule_follows_the_settings(settings):
    task = PeriodicTask.objects.get(name=WARMING_TASK_NAME)
    assert (task.task, task.interval.every, task.enabled) == ("caching.warm_all", 240, True)
    settings.CACHE_WARMING_INTERVAL = 60_000
    settings.ENABLE_CACHE_WARMING = False
    ensure_warming_schedule()
    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (60, False)


def test_cache_command_warms_invalidates_and_reports(db):
    ProductFactory()
    out = StringIO()
    call_command("cache", "warm", stdout=out)
    assert "Warmed homepage:anonymous" in out.getvalue()
    assert warming.last_warm_times()["homepage:anonymous"] is not None

    before, _ = read_generations(["products"])
    call_command("cache", "invalidate", "products", stdout=out)
    assert read_generations(["products"])[0] != before

    out = StringIO()
    call_command("cache", "stats", stdout=out)
    report = out.getvalue()
    assert "homepage" in report and "products:" in report and "Last warmed" in report


@pytest.fixture
def product():
    """Created before warming is switched on, so its own invalidation schedules nothing."""
    return ProductFactory(name="old name", views=10_000)


@pytest.mark.slow
def test_many_invalidations_before_the_rewarm_starts_cause_one_rewarm(product, start_worker):
    # Every bump lands before any worker can run the re-warm, however slowly
    # they arrive: the debounce must gather them all, by construction.
    Product.objects.filter(pk=product.pk).update(name="new name")
    for _ in range(999):
        bump(["products"])
    warming.wait_for_scheduled()
    queued = get_redis_connection("default").lrange("celery", 0, -1)
    assert sum(b'"caching.rewarm"' in message for message in queued) == 1

    start_worker()
    wait_until(lambda: shared_cache.hgetall(WARM_RUNS_KEY).get("rewarm"))
    wait_until(lambda: warming.last_warm_times()["homepage:anonymous"])
    assert shared_cache.hgetall(WARM_RUNS_KEY)["rewarm"] == 1

    from rest_framework.test import APIClient

    body = APIClient().get("/api/v1/homepage").json()
    assert body["data"]["metadata"]["fromCache"] is True  # warmed, not computed here
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "new name"


def test_a_bump_after_the_rewarm_started_schedules_the_next_one(product, start_worker):
    bump(["products"])
    warming.wait_for_scheduled()
    assert warming.take_pending_tags() == {"products"}  # what the re-warm task does first
    bump(["products"])
    warming.wait_for_scheduled()
    queued = get_redis_connection("default").lrange("celery", 0, -1)
    assert sum(b'"caching.rewarm"' in message for message in queued) == 2
