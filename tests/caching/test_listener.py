"""The change listener against a real PostgreSQL with ``wal_level=logical``.

The tests make their own primary (``initdb`` in a temporary directory, on a free
port, ``wal_level=logical``), migrate and seed it, run ``manage.py cache listen``
on it as a subprocess, and write to it with raw SQL from a separate psycopg
connection, as ``psql`` would: the tags' generations in the suite's Redis must
move. In-app writes go through gunicorn on the same database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from django.test import override_settings

from caching import listener
from caching.keys import LISTENER_STATUS_KEY
from caching.shared import shared_cache
from caching.tags import read_generations
from tests.servers import StreamingPair, gunicorn
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SLOT = "test_listener"


def _env(url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url,
            "ENABLE_CACHE_LISTENER": "true", "CACHE_LISTENER_SLOT": SLOT, "LOG_LEVEL": "WARNING",
            **extra}  # fmt: skip


def _manage(url: str, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_env(url),
                          check=True, capture_output=True, text=True).stdout  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[StreamingPair]:
    pair = StreamingPair("listened", logical=True)
    try:
        pair.start_primary()
        _manage(pair.url("primary"), "migrate", "--noinput", "-v0")
        _manage(pair.url("primary"), "seed_demo", "--products", "30", "--stores", "5",
                "--events", "5", "--offers", "10", "--users", "2", "--trainers", "2",
                "--students", "4", "--sessions-per-trainer", "10", "--no-progress")  # fmt: skip
        yield pair
    finally:
        pair.close()


class Listener:
    """``manage.py cache listen`` as a subprocess on the cluster."""

    def __init__(self, url: str, *args: str) -> None:
        self.url, self.args = url, args
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "cache", "listen", *self.args], cwd=ROOT,
            env=_env(self.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._streaming, timeout=60, message=self._why)

    def _streaming(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self._why()
        return shared_cache.hgetall_raw(LISTENER_STATUS_KEY).get("state") == "streaming"

    def _why(self) -> str:
        if self.process is not None and self.process.poll() is not None:
            return f"the listener exited: {self.process.communicate()[1]}"
        return "the listener is not streaming"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None


@pytest.fixture
def running(cluster) -> Iterator[Listener]:
    follower = Listener(cluster.url("primary"))
    follower.start()
    try:
        yield follower
    finally:
        follower.stop()


def _sql(cluster: StreamingPair, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(cluster.url("primary"), autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _generation(tag: str) -> int:
    return read_generations([tag])[0][tag]


def _moved(tag: str, before: int, timeout: float = 20) -> None:
    wait_until(lambda: _generation(tag) != before, timeout=timeout,
               message=f"{tag} was not bumped")  # fmt: skip


def test_a_raw_update_of_a_product_bumps_its_tags_and_a_view_counter_does_not(cluster, running):
    product = _sql(cluster, "SELECT id FROM products ORDER BY id LIMIT 1")[0][0]
    counted, before = _generation("products:totals"), _generation("products")
    _sql(cluster, "UPDATE products SET views = views + 1 WHERE id = %s", (product,))
    _sql(cluster, "UPDATE products SET name = 'renamed by psql' WHERE id = %s", (product,))
    _moved("products", before)
    # The rename cannot move a product into or out of a counted set, and the view
    # counter changes nothing shown: the totals stay (the old row is in the WAL).
    assert _generation("products:totals") == counted
    assert _generation("products") == before + 1

    _sql(cluster, "UPDATE products SET stock = 0 WHERE id = %s", (product,))
    _moved("products:totals", counted)


def test_raw_writes_to_training_rows_bump_the_people_they_are_shown_to(cluster, running):
    session, trainer, student = _sql(
        cluster, "SELECT id, trainer_id, student_id FROM trainers_session ORDER BY id LIMIT 1"
    )[0]
    tags = [f"trainer:{trainer}", f"student:{student}"]
    before = read_generations(tags)[0]
    _sql(cluster, "UPDATE trainers_session SET feedback = 'fixed by hand' WHERE id = %s",
         (session,))  # fmt: skip
    for tag in tags:
        _moved(tag, before[tag])

    # A deleted row names its people too (its old row): a student's achievement.
    now = _generation(f"student:{student}")
    _sql(cluster, "INSERT INTO students_achievement (student_id, code, title, description, "
                  "earned_at) VALUES (%s, 'by_hand', 'By hand', '', now())", (student,))  # fmt: skip
    _moved(f"student:{student}", now)
    now = _generation(f"student:{student}")
    _sql(cluster, "DELETE FROM students_achievement WHERE code = 'by_hand'")
    _moved(f"student:{student}", now)


def test_a_write_while_the_listener_is_stopped_is_bumped_after_its_restart(cluster):
    follower = Listener(cluster.url("primary"))
    follower.start()
    follower.stop()
    before = _generation("stores")
    _sql(cluster, "UPDATE stores SET name = name || '!' WHERE id = (SELECT min(id) FROM stores)")
    assert _generation("stores") == before  # nobody is listening
    try:
        follower.start()
        _moved("stores", before)
    finally:
        follower.stop()


def _call(url: str, headers: dict, method: str = "GET", body: dict | None = None) -> dict:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**headers, "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


def _counts() -> dict[str, int]:
    return shared_cache.hgetall(f"{LISTENER_STATUS_KEY}:counts")


def test_an_in_app_mutation_is_recomputed_once_not_twice(cluster, running):
    token, trainer = _manage(
        cluster.url("primary"), "shell", "-v0", "-c",
        "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
        "t = Trainer.objects.order_by('pk').first(); print(Token.objects.get(user_id=t.user_id).key, t.pk)",
    ).split()  # fmt: skip
    auth = {"Authorization": f"Token {token}"}
    with gunicorn("unused", workers=1, DATABASE_URL=cluster.url("primary"),
                  ENABLE_CACHE_LISTENER="true") as base:  # fmt: skip
        bootstrap = f"{base}/api/v1/trainers/{trainer}/bootstrap"
        _call(bootstrap, auth)
        assert _call(bootstrap, auth)["data"]["metadata"]["fromCache"] is True
        announced = _counts().get("announced", 0)
        _call(f"{base}/api/v1/trainers/{trainer}/profile", auth, "PATCH", {"bio": "in-app"})
        after_write = _generation(f"trainer:{trainer}")
        first = _call(bootstrap, auth)
        assert (
            first["data"]["metadata"]["fromCache"] is False
        )  # the app's own bump: one recomputation
        assert first["data"]["overview"]["profile"]["bio"] == "in-app"
        wait_until(lambda: _counts().get("announced", 0) > announced, timeout=20,
                   message="the listener did not see the in-app transaction")  # fmt: skip
        assert _generation(f"trainer:{trainer}") == after_write  # not bumped a second time
        assert _call(bootstrap, auth)["data"]["metadata"]["fromCache"] is True


def _fails(url: str, *args: str, **env: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", "cache", "listen", *args], cwd=ROOT,
                            env=_env(url, **env), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one clear line, no traceback
    return lines[0]


def test_a_server_without_logical_wal_is_named_in_one_line():
    url = "postgres://postgres@127.0.0.1:5432/postgres"  # the shared server (wal_level=replica)
    (level,) = _sql_url(url, "SHOW wal_level")[0]
    if level == "logical":
        pytest.skip("the shared PostgreSQL runs with wal_level=logical")
    assert "wal_level=logical" in _fails(url)


def _sql_url(url: str, statement: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement).fetchall()


def test_a_role_without_replication_rights_is_named_in_one_line(cluster):
    with contextlib.suppress(psycopg.errors.DuplicateObject):
        _sql(cluster, "CREATE ROLE plain LOGIN")
    _sql(cluster, "GRANT ALL ON ALL TABLES IN SCHEMA public TO plain")
    url = cluster.url("primary").replace("postgres@", "plain@")
    assert "may not use replication" in _fails(url)


def test_a_dropped_slot_stops_the_listener_in_one_line_and_readiness_names_it(cluster, settings):
    follower = Listener(cluster.url("primary"))
    follower.start()
    follower.stop()
    _sql(cluster, "SELECT pg_drop_replication_slot(%s)", (SLOT,))
    line = _fails(cluster.url("primary"))
    assert "was dropped" in line and "--reset" in line

    settings.ENABLE_CACHE_LISTENER, settings.CACHE_LISTENER_SLOT = True, SLOT
    assert "failed" in listener.report() and "was dropped" in listener.report()

    before = _generation("offers")
    follower = Listener(cluster.url("primary"), "--reset")
    follower.start()  # a new slot, and every watched table invalidated
    try:
        _moved("offers", before)
        assert listener.report() == "OK"
        assert b'aggregation_listener_up{slot="test_listener"} 1.0' in listener.metrics_text()
    finally:
        follower.stop()
    assert listener.report().startswith("down")
    assert b'aggregation_listener_up{slot="test_listener"} 0.0' in listener.metrics_text()


@override_settings(ENABLE_CACHE_LISTENER=False)
def test_readiness_says_nothing_of_a_listener_that_is_not_expected():
    assert listener.report() is None


def test_a_listener_that_never_reported_is_down(settings):
    settings.ENABLE_CACHE_LISTENER = True
    assert listener.report().startswith("down")
