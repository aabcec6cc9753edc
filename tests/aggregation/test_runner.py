"""The concurrent section runner, on real PostgreSQL connections in worker threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection

from aggregation.runner import classify_error, run_sections
from aggregation.sections import Section, SectionContext, SectionPayload
from api.errors import ErrorCode
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _ctx() -> SectionContext:
    return SectionContext(now=datetime.now(UTC), limit=10)


def _section(section_id: str, fetch) -> Section:
    return Section(id=section_id, title=section_id.title(), type="test", fetch=fetch)


def _query_payload(sql: str):
    def fetch(ctx):
        with connection.cursor() as cursor:
            cursor.execute(sql)
            value = cursor.fetchone()[0]
        return SectionPayload(items=[{"value": value}], total=1)

    return fetch


def test_sections_run_concurrently_each_on_its_own_connection():
    # Both fetches wait at one barrier: it only opens if they run at the same time.
    barrier = threading.Barrier(2, timeout=5)
    backend_pids = []

    def fetch(ctx):
        barrier.wait()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pids.append(cursor.fetchone()[0])
        return SectionPayload(items=[], total=0)

    outcomes = run_sections([_section("a", fetch), _section("b", fetch)], _ctx())

    assert [o.ok for o in outcomes] == [True, True]
    assert len(set(backend_pids)) == 2


def test_outcomes_keep_the_declared_order():
    sections = [_section(name, _query_payload(f"SELECT '{name}'")) for name in "abcdef"]
    outcomes = run_sections(sections, _ctx())
    assert [o.section.id for o in outcomes] == list("abcdef")
    assert [o.payload.items[0]["value"] for o in outcomes] == list("abcdef")


def test_a_raising_section_becomes_an_error_outcome_and_others_succeed():
    def boom(ctx):
        raise RuntimeError("secret internal detail")

    outcomes = run_sections(
        [_section("ok", _query_payload("SELECT 1")), _section("bad", boom)], _ctx()
    )

    assert outcomes[0].ok
    assert outcomes[1].error_code == ErrorCode.SECTION_FETCH_ERROR
    assert "secret" not in outcomes[1].error_message


def test_a_hanging_section_times_out_in_the_waiter():
    release = threading.Event()

    def hang(ctx):
        release.wait(10)
        return SectionPayload(items=[], total=0)

    try:
        outcomes = run_sections(
            [_section("hang", hang), _section("ok", _query_payload("SELECT 1"))],
            _ctx(),
            query_timeout_ms=200,
        )
    finally:
        release.set()
    assert outcomes[0].error_code == ErrorCode.TIMEOUT_ERROR
    assert outcomes[1].ok


def test_a_slow_query_is_cancelled_by_the_database():
    outcomes = run_sections(
        [_section("slow", _query_payload("SELECT pg_sleep(30)"))], _ctx(), query_timeout_ms=300
    )
    assert outcomes[0].error_code == ErrorCode.TIMEOUT_ERROR

    # The statement really stopped: no backend is still sleeping for us.
    def still_sleeping() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"
            )
            return cursor.fetchone()[0]

    wait_until(lambda: still_sleeping() == 0, timeout=20, interval=0.02,
               message="the cancelled statement is still running")  # fmt: skip


def test_request_budget_bounds_every_section():
    outcomes = run_sections(
        [_section("slow", _query_payload("SELECT pg_sleep(30)"))],
        _ctx(),
        query_timeout_ms=5_000,
        request_timeout_ms=300,
    )
    assert outcomes[0].error_code == ErrorCode.TIMEOUT_ERROR


def test_database_errors_are_classified():
    outcomes = run_sections(
        [_section("bad_sql", _query_payload("SELECT * FROM no_such_table"))], _ctx()
    )
    assert outcomes[0].error_code == ErrorCode.SECTION_FETCH_ERROR
    assert classify_error(OperationalError("connection refused")) == ErrorCode.DB_CONNECTION_ERROR


def test_worker_connections_stay_bounded_and_healthy_across_many_runs(settings):
    sections = [_section(f"s{i}", _query_payload("SELECT 1")) for i in range(6)]
    for _ in range(30):
        assert all(o.ok for o in run_sections(sections, _ctx()))

    # A broken worker connection is replaced, not reused.
    def kill_own_connection(ctx):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return SectionPayload(items=[], total=0)

    run_sections([_section("killer", kill_own_connection)], _ctx())
    assert all(o.ok for o in run_sections(sections, _ctx()))

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        open_connections = cursor.fetchone()[0]
    assert open_connections <= settings.DB_POOL_SIZE + 2


def test_a_worker_connection_ended_from_outside_costs_no_section():
    # Every worker thread keeps its connection; a database restart (here: an
    # operator ending every other backend) must not fail the next sections.
    sections = [_section(f"s{i}", _query_payload("SELECT pg_backend_pid()")) for i in range(6)]
    before = {o.payload.items[0]["value"] for o in run_sections(sections, _ctx())}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1

    outcomes = run_sections(sections, _ctx())

    assert [o.error_code for o in outcomes] == [None] * 6
    assert not before & {o.payload.items[0]["value"] for o in outcomes}  # new connections
