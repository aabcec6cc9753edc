"""Read replicas against a real streaming pair: read-your-writes, failover, one snapshot.

The tests make their own PostgreSQL primary (``initdb`` in a temporary
directory, on a free port), migrate and seed it, take a ``pg_basebackup -R``
standby of it on another port, and run gunicorn with
``DATABASE_REPLICA_URLS`` pointing at the standby.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from django_redis import get_redis_connection

from tests.servers import StreamingPair, gunicorn
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _manage(url: str, *args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


@pytest.fixture(scope="module")
def pair():
    pair = StreamingPair()
    try:
        pair.start_primary()
        primary = pair.url("primary")
        _manage(primary, "migrate", "--noinput", "-v0")
        _manage(primary, "seed_demo", "--products", "30", "--stores", "5", "--events", "5",
                "--offers", "10", "--users", "2", "--trainers", "2", "--students", "4",
                "--sessions-per-trainer", "20", "--no-progress")  # fmt: skip
        pair.start_replica()
        yield pair
    finally:
        pair.close()


@pytest.fixture
def served(pair):
    """Gunicorn on the pair: the primary, and the standby for section reads."""
    token, trainer = _manage(
        pair.url("primary"), "shell", "-v0", "-c",
        "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
        "t = Trainer.objects.order_by('pk').first(); print(Token.objects.get(user_id=t.user_id).key, t.pk)",
    ).split()  # fmt: skip
    with gunicorn(
        "unused",
        DATABASE_URL=pair.url("primary"),
        DATABASE_REPLICA_URLS=pair.url("replica"),
        REPLICA_RETRY_AFTER_S="1",
        REPLICA_MAX_LAG_S="3600",
    ) as base:  # a lag limit never sets it aside here: only positions keep reads right
        yield base, {"Authorization": f"Token {token}"}, int(trainer)


def _call(
    url: str, headers: dict, method: str = "GET", body: dict | None = None
) -> tuple[int, dict]:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def _replica_scans(pair: StreamingPair) -> int:
    """How often the standby scanned the trainers' tables (its own statistics)."""
    rows = pair.sql("replica", "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) "
                               "FROM pg_stat_user_tables WHERE relname LIKE 'trainers_%'")  # fmt: skip
    return int(rows[0][0])


def test_the_replica_serves_sections_and_never_a_read_before_a_write(pair, served):
    base, auth, trainer = served
    bootstrap = f"{base}/api/v1/trainers/{trainer}/bootstrap"
    before = _replica_scans(pair)
    for _ in range(5):
        assert _call(f"{bootstrap}?fresh=true", auth)[0] == 200
    wait_until(lambda: _replica_scans(pair) > before, timeout=20,
               message="the replica served no section")  # fmt: skip

    pair.sql("replica", "SELECT pg_wal_replay_pause()")  # the replica falls behind from here
    try:
        stale = []
        for i in range(500):
            status, _ = _call(f"{base}/api/v1/trainers/{trainer}/profile", auth, "PATCH",
                              {"bio": f"rev {i}"})  # fmt: skip
            assert status == 200
            if i == 250:  # Redis loses everything between a write and its read
                get_redis_connection("default").flushdb()
            status, body = _call(bootstrap, auth)  # any worker process
            assert status == 200 and "errors" not in body, body
            if body["data"]["overview"]["profile"]["bio"] != f"rev {i}":
                stale.append(i)
        assert stale == []
    finally:
        pair.sql("replica", "SELECT pg_wal_replay_resume()")


def test_a_replica_stopped_mid_load_costs_no_error(pair, served):
    base, auth, trainer = served
    bootstrap = f"{base}/api/v1/trainers/{trainer}/bootstrap?fresh=true"
    failures: list = []
    done = threading.Event()
    answered = [0]

    def load() -> None:
        while not done.is_set():
            status, body = _call(bootstrap, auth)
            answered[0] += 1
            if status != 200 or "errors" in body:
                failures.append((status, body.get("errors")))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_until(lambda: answered[0] >= 20, timeout=60)
        pair.stop_replica()
        seen = answered[0]
        wait_until(lambda: answered[0] >= seen + 40, timeout=120)
    finally:
        done.set()
        thread.join(60)
        pair.start_replica()
    assert failures == []
    ready = _call(f"{base}/health/ready?format=json", {})[1]
    assert "replicas" in ready


def test_bootstraps_read_one_snapshot_on_the_replica(pair, served):
    base, auth, trainer = served
    bootstrap = f"{base}/api/v1/trainers/{trainer}/bootstrap?fresh=true"
    open_sessions = [s["id"] for s in _call(bootstrap, auth)[1]["data"]["sessions"]
                     if s["status"] == "scheduled"]  # fmt: skip

    def gap(body: dict) -> int:  # completed in the list vs the performance figure
        data = body["data"]
        completed = sum(1 for s in data["sessions"] if s["status"] == "completed")
        return data["overview"]["performance"]["sessionsCompleted"] - completed

    assert open_sessions  # writes to read during
    expected = gap(_call(bootstrap, auth)[1])
    written: list[int] = []
    writer = threading.Thread(target=lambda: written.extend(
        _call(f"{base}/api/v1/sessions/{pk}/complete", auth, "POST", {"rating": 5})[0]
        for pk in open_sessions
    ))  # fmt: skip
    writer.start()
    reads = []
    while writer.is_alive() or len(reads) < 5:
        status, body = _call(bootstrap, auth)
        assert status == 200 and "errors" not in body
        assert body["data"]["metadata"]["snapshot"]["mode"] == "single-transaction"
        reads.append(gap(body))
    writer.join()
    assert written == [200] * len(open_sessions)  # every completion really happened
    assert set(reads) == {expected}  # never one table's change without the other's
