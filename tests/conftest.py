"""Shared fixtures. The suite runs against the real PostgreSQL and Redis."""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from aggregation.runner import close_worker_connections
from caching import metrics
from caching.activity import forget_recorded
from caching.local import clear_local


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty Redis database of the suite's own."""
    get_redis_connection("default").flushdb()
    clear_local()
    forget_recorded()
    metrics.take_pending(force=True)  # counts not yet flushed by an earlier test
    yield
    cache.close()


@pytest.fixture(scope="session", autouse=True)
def _give_back_worker_connections(django_db_setup):
    """Section threads keep their connections; give them back before the test database goes.

    Depends on ``django_db_setup`` so that it is torn down first.
    """
    yield
    close_worker_connections()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="shopper", password="pw-shopper-1")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(username="other", password="pw-other-1")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="staff", password="pw-staff-1", is_staff=True, is_superuser=True
    )


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
