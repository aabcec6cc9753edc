"""Warming: beat schedule, management command, re-warming through a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from caching import warming
from caching.schedule import WARMING_TASK_NAME, ensure_warming_schedule
from caching.shared import shared_cache
from caching.tags import bump, read_generations
from config.celery_app import app as celery_app
from homepage.models import Product
from tests.homepage.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _wait_until(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


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
def celery_worker(settings):
    """A real worker on the suite's Redis, reading the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHE_REWARM_DEBOUNCE = 1.0
    celery_app.conf.task_always_eager = False
    try:
        yield worker
    finally:
        celery_app.conf.task_always_eager = True
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)


@pytest.fixture
def product():
    """Created before the worker starts, so its own invalidation schedules nothing."""
    return ProductFactory(name="old name", views=10_000)


def test_rewarm_runs_once_through_a_worker_after_many_invalidations(product, celery_worker):
    # The worker warms everything once when it starts.
    _wait_until(lambda: shared_cache.hgetall("warm:runs").get("warm_all"))
    _wait_until(lambda: warming.last_warm_times()["homepage:anonymous"])
    warmed_at = warming.last_warm_times()["homepage:anonymous"]

    Product.objects.filter(pk=product.pk).update(name="new name")
    for _ in range(999):
        bump(["products"])
    warming._scheduler.submit(lambda: None).result(timeout=30)  # scheduling has finished

    _wait_until(lambda: (warming.last_warm_times()["homepage:anonymous"] or 0) > warmed_at)
    runs = shared_cache.hgetall("warm:runs")
    assert runs.get("rewarm") == 1

    from rest_framework.test import APIClient

    body = APIClient().get("/api/v1/homepage").json()
    assert body["data"]["metadata"]["fromCache"] is True  # warmed, not computed here
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "new name"
