"""Faults the service must ride out: the Celery broker unreachable, production misconfigured."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from caching import warming
from caching.keys import REWARM_SCHEDULED_KEY
from caching.shared import shared_cache
from caching.tags import read_generations
from config.celery_app import app as celery_app
from tests.homepage.factories import ProductFactory
from tests.servers import RedisServer
from tests.trainers.factories import SessionFactory

ROOT = Path(__file__).resolve().parents[2]


def _use_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None  # connections are pooled per app: drop the old broker's
    celery_app.amqp._producer_pool = None


@pytest.fixture
def own_broker(settings):
    server = RedisServer()
    server.start()
    original = celery_app.conf.broker_url
    _use_broker(server.url)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    try:
        yield server
    finally:
        _use_broker(original)
        celery_app.conf.task_always_eager = True
        server.stop()


def _feature(client, product) -> float:
    started = time.monotonic()
    response = client.post(
        reverse("admin:homepage_product_changelist"),
        {"action": "make_featured", "_selected_action": [product.pk]},
    )
    assert response.status_code == 302
    warming.wait_for_scheduled()  # scheduling finished
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_writes_succeed_and_invalidate_while_the_broker_is_down(
    client, staff_user, client_for, own_broker
):
    client.force_login(staff_user)
    product = ProductFactory(featured=False)
    own_broker.stop()

    before, _ = read_generations(["products"])
    elapsed = _feature(client, product)
    assert read_generations(["products"])[0] != before  # invalidated anyway
    assert elapsed < 5
    assert not shared_cache.get_many([REWARM_SCHEDULED_KEY])  # the next write may try again

    session = SessionFactory()
    trainer = client_for(session.trainer.user)
    trainer.get(f"/api/v1/trainers/{session.trainer_id}/bootstrap")
    done = trainer.post(f"/api/v1/sessions/{session.pk}/complete", {}, format="json")
    assert done.status_code == 200
    view = trainer.get(f"/api/v1/trainers/{session.trainer_id}/bootstrap").json()["data"]
    assert view["overview"]["performance"]["sessionsCompleted"] == 1

    own_broker.start()  # re-warming resumes with the next invalidation
    _feature(client, ProductFactory(featured=False))
    queued = [m for m in own_broker.client().lrange("celery", 0, -1) if b"caching.rewarm" in m]
    assert len(queued) == 1


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
}


def _env(**overrides: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return {**base, **PRODUCTION, **overrides}


def test_production_settings_pass_the_deploy_checks():
    result = _manage(_env(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


STORES = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}
SENTINEL = {"REDIS_URL": "", "REDIS_SENTINELS": "127.0.0.1:26379,127.0.0.1:26380",
            "REDIS_SENTINEL_MASTER": "cache", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14"}  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG"),
        # Per-process stand-ins would break promises across processes.
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({**SENTINEL, "CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL"),
        ({**SENTINEL, "REDIS_SENTINEL_MASTER": ""}, "REDIS_SENTINEL_MASTER"),
        ({**SENTINEL, "REDIS_URL": "redis://127.0.0.1:6379/15"}, "REDIS_SENTINELS"),
        ({"REDIS_CLUSTER_NODES": "127.0.0.1:7000"}, "REDIS_CLUSTER_NODES"),  # and REDIS_URL
        ({**SENTINEL, "REDIS_SENTINELS": "127.0.0.1"}, "REDIS_SENTINELS"),  # no port
    ],
)
def test_production_refuses_to_start_misconfigured(overrides, named):
    env = _env(**{**STORES, **overrides})
    for name, value in overrides.items():
        if not value:
            env.pop(name)
    result = _manage(env, "check")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert named in last_line  # names the variable to set


CLUSTER = {"REDIS_URL": "", "REDIS_CLUSTER_NODES": "127.0.0.1:7000,127.0.0.1:7001",
           "CELERY_BROKER_URL": "amqp://guest@127.0.0.1:5672//"}  # fmt: skip


@pytest.mark.parametrize(
    ("stores", "expected"),
    [
        (SENTINEL, ["sentinel", "redis://cache/0", "1", "None", "False"]),
        (CLUSTER, ["cluster", "redis://127.0.0.1:7000,redis://127.0.0.1:7001", "16",
                   "caching.keys.sharded_key_function", "False"]),
    ],
)  # fmt: skip
def test_production_starts_on_sentinel_or_cluster_with_a_separate_broker(stores, expected):
    env = _env(**{**STORES, **stores})
    env.pop("REDIS_URL")
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)  # (the suite's own setting)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "c = s.CACHES['default']; print(s.REDIS_MODE, c['LOCATION'], s.CACHE_SHARDS, "
        "c.get('KEY_FUNCTION'), s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == expected, result.stderr


def test_wsgi_defaults_to_production_settings():
    env = {k: v for k, v in _env().items() if k != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    code = "import config.wsgi; from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["config.settings.production", "False"], result.stderr


@pytest.mark.django_db
def test_security_headers(client):
    response = client.get("/health/live")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
