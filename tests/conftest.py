"""Shared fixtures. The suite runs against the real PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from django.core.cache import cache, caches
from django.db import DatabaseError, connection
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from aggregation.runner import close_worker_connections
from caching import flight
from caching.process import reset_process_state
from config.celery_app import app as celery_app
from tests.factories import UserFactory
from tests.servers import RedisServer, storefront_url
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty Redis database of the suite's own, and a fresh process."""
    get_redis_connection("default").flushdb()
    reset_process_state()  # L1, breakers, back-offs, unflushed counts: caching/process.py
    yield
    cache.close()


@pytest.fixture(scope="session", autouse=True)
def _give_back_worker_connections(django_db_setup):
    """Section threads keep their connections; give them back before the test database goes.

    Depends on ``django_db_setup`` so that it is torn down first.
    """
    yield
    close_worker_connections()


class FlightFollowers:
    """How many callers have started waiting for another caller's computation of a key.

    Single-flight followers wait in ``flight.wait`` (for this process's leader) or
    in ``flight.wait_for_other_process`` (for another process's); both are counted
    as they begin to wait, so a test can hold the leader until all have arrived.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        for name in ("wait", "wait_for_other_process"):
            monkeypatch.setattr(flight, name, self._counted(getattr(flight, name)))

    def _counted(self, original):
        def waiting(*args, **kwargs):
            with self._lock:
                self.count += 1
            return original(*args, **kwargs)

        return waiting


@pytest.fixture
def flight_followers(monkeypatch) -> FlightFollowers:
    """Counts single-flight followers as they start waiting (see ``FlightFollowers``)."""
    return FlightFollowers(monkeypatch)


@pytest.fixture
def patch_section(monkeypatch):
    """Replace a section's reads with ``fetch(ctx)`` on every path: the ORM's and the pipeline's.

    Its plan runs ``fetch`` when first advanced and asks the database for nothing.
    """

    def patch(section, fetch) -> None:
        def plan(ctx):
            return fetch(ctx)
            yield  # a generator: a plan

        monkeypatch.setattr(section, "fetch", fetch)
        monkeypatch.setattr(section, "plan", plan)

    return patch


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory(username="shopper", password="pw-shopper-1")


@pytest.fixture
def other_user(db):
    return UserFactory(username="other", password="pw-other-1")


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", password="pw-staff-1", staff=True)


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for():
    """Build an API client authenticated (by token) as the given user."""
    return _client_for


@pytest.fixture
def user_client(user) -> APIClient:
    return _client_for(user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return _client_for(staff_user)


def set_database_reachable(name: str, reachable: bool) -> None:
    """Really take a database away: refuse and cut every connection to it."""
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
        if not reachable:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )


@pytest.fixture
def database_outage():
    """``database_outage(False)`` makes the test database unreachable; restored afterwards."""
    name = connection.settings_dict["NAME"]
    try:
        yield lambda reachable: set_database_reachable(name, reachable)
    finally:
        set_database_reachable(name, True)
        connection.close()
        # The connection pool reconnects with backoff; teardown needs it back.
        wait_until(_connects, timeout=60, interval=0.2)


def _connects() -> bool:
    try:
        connection.ensure_connection()
    except DatabaseError:
        connection.close()
        return False
    return True


@pytest.fixture
def start_worker(settings):
    """Start a real worker on the suite's Redis, reading the test database, when asked."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}"
        f"?application_name={WORKER_APPLICATION}",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **storefront_url(),
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHE_REWARM_DEBOUNCE_S = 0.5
    celery_app.conf.task_always_eager = False
    workers = []

    def start(**extra_env: str) -> None:
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-P",
                    "solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "INFO",
                ],
                cwd=ROOT,
                env={**env, **extra_env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        )

    try:
        yield start
    finally:
        celery_app.conf.task_always_eager = True
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        # Its connections end a moment after it does; the test database is dropped later.
        wait_until(lambda: not _worker_sessions(), timeout=20, message="worker still connected")


WORKER_APPLICATION = "test-celery-worker"


def _worker_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [WORKER_APPLICATION],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def own_redis(settings):
    """The cache on a private redis-server (stopped afterwards), with a fast breaker."""
    server = RedisServer()
    server.start()
    default = settings.CACHES["default"]
    # Timeouts long enough that a busy machine does not look like an outage.
    options = {**default["OPTIONS"], "SOCKET_TIMEOUT": 2.0, "SOCKET_CONNECT_TIMEOUT": 2.0}
    settings.CACHES = {"default": {**default, "LOCATION": server.url, "OPTIONS": options}}
    settings.CACHE_REDIS_RETRY_AFTER_S = 0.2
    try:
        yield server
    finally:
        server.stop()
        caches["default"].close()
