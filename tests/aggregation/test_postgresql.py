"""The pool's check (``aggregation/postgresql``): no round trip for a healthy connection.

On the real PostgreSQL, through a counting proxy: a connection the server
still holds is lent without asking it anything; one the server ended is
refused (the pool then opens another).
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from aggregation.postgresql.base import check_without_round_trip
from bench.proxy import Proxy
from tests.waiting import wait_until


@pytest.fixture
def through_proxy():
    """A psycopg connection to the test database through a counting proxy, and the proxy."""
    name = connection.settings_dict["NAME"]
    with Proxy(("127.0.0.1", 5432)) as proxy:
        conn = psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}", autocommit=True
        )
        try:
            yield conn, proxy
        finally:
            conn.close()


@pytest.mark.django_db
def test_a_healthy_connection_is_checked_without_a_round_trip(through_proxy):
    conn, proxy = through_proxy
    conn.execute("SELECT 1")
    proxy.reset()
    for _ in range(3):
        check_without_round_trip(conn)
    assert proxy.counts().round_trips == 0
    conn.execute("SELECT 1")  # and it still works
    assert proxy.counts().round_trips == 1


@pytest.mark.django_db
def test_a_connection_the_server_ended_is_refused(through_proxy):
    conn, _ = through_proxy
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    name = connection.settings_dict["NAME"]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    def refused() -> bool:
        try:
            check_without_round_trip(conn)
        except psycopg.OperationalError:
            return True
        return False

    wait_until(refused, timeout=10, message="a connection the server ended was still lent")
