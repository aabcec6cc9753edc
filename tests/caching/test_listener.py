"""The change listener against a real PostgreSQL with ``wal_level=logical``.

The tests make their own primary (``initdb`` in a temporary directory, on a free
port, ``wal_level=logical``), migrate and seed it, run ``manage.py cache listen``
on it as a subprocess, and write to it with raw SQL from a separate psycopg
connection, as ``psql`` would: the tags' generations in the suite's Redis must
move. In-app writes go through gunicorn on the same database. The consistency
monitor then checks a run mixing API, ``QuerySet.update()`` and raw writes on
every watched model (run inside Django on the cluster: ``on_cluster.py``), and
a raw write must leave the project's Varnish in front of it.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from django.test import override_settings

from caching import listener
from caching.keys import LISTENER_STATUS_KEY
from caching.shared import shared_cache
from caching.tags import read_generations
from demo.management.commands.seed_demo import DEMO_PASSWORD
from tests.caching import on_cluster
from tests.servers import StreamingPair, Varnish, free_port, gunicorn
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
    """``manage.py cache listen`` as a subprocess on the cluster (``env``: more settings)."""

    def __init__(self, url: str, *args: str, **env: str) -> None:
        self.url, self.args, self.env = url, args, env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "cache", "listen", *self.args], cwd=ROOT,
            env=_env(self.url, **self.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
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


# --- the consistency monitor over a mixed run -------------------------------------------

ROUNDS = 2
# What the run reads and the monitor samples: the anonymous and the shopper's homepage, each bootstrap.
TRACKED = {"homepage": 2, "student:bootstrap": 1, "trainer:bootstrap": 1}


def _settled(cluster: StreamingPair) -> None:
    """Wait until the listener has applied every transaction committed so far.

    It applies transactions in commit order and confirms a position to its slot
    only once that transaction's bumps are done (at once when it has caught up).
    """
    (now,) = _sql(cluster, "SELECT pg_current_wal_lsn()::text")[0]

    def applied() -> bool:
        rows = _sql(cluster, "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                             "WHERE slot_name = %s", (now, SLOT))  # fmt: skip
        return bool(rows and rows[0][0])

    wait_until(applied, timeout=30, message=f"the listener did not confirm {now}")


class OnCluster:
    """``tests/caching/on_cluster.py``'s steps, run by one ``manage.py shell`` on the cluster."""

    def __init__(self, url: str) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by close()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-v0", "-c",
             "from tests.caching.on_cluster import serve; serve()"],
            cwd=ROOT, env=_env(url), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, start_new_session=True,
        )  # fmt: skip

    def __call__(self, step: str, **kwargs: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps({"step": step, "kwargs": kwargs}).decode() + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(on_cluster.MARK):
                answer = orjson.loads(line.removeprefix(on_cluster.MARK))
                assert "error" not in answer, (
                    f"{step} failed on the cluster:\n{answer.get('error')}"
                )
                return answer["result"]
        self.log.seek(0)
        raise AssertionError(f"the shell on the cluster exited:\n{self.log.read()[-3000:]}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)
        self.log.close()


class Admin:
    """The storefront's writes over HTTP: the admin's bulk actions, signed in as staff."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.jar = base, http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        login = f"{base}/admin/login/"
        self.opener.open(login, timeout=30).read()
        self._post(login, {"username": username, "password": DEMO_PASSWORD, "next": "/admin/"})
        assert any(cookie.name == "sessionid" for cookie in self.jar), "the admin refused the login"

    def _post(self, url: str, form: dict[str, str]) -> str:
        token = next(cookie.value for cookie in self.jar if cookie.name == "csrftoken")
        body = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(url, data=body, headers={"Referer": url})
        with self.opener.open(request, timeout=30) as response:
            return response.read().decode()

    def toggle_featured(self, row: dict[str, Any]) -> None:
        """Flip the row's featured flag and back: two bulk actions, the page as it was."""
        actions = ["make_featured", "make_unfeatured"]
        app, model = row["model"].lower().split(".")
        for action in actions[::-1] if row["featured"] else actions:
            page = self._post(f"{self.base}/admin/{app}/{model}/",
                              {"action": action, "index": "0", "_selected_action": str(row["pk"])})  # fmt: skip
            assert "1 item(s)" in page, f"{action} of {row['model']} {row['pk']} did not run"


class Values:
    """A new value for every write, so that each one changes what a page shows."""

    def __init__(self) -> None:
        self.n = 0
        self.alternations: dict[tuple[str, int], int] = {}

    def __call__(self, row: dict[str, Any], how: str) -> Any:
        self.n += 1
        if row["kind"] == "choice":  # a flag or a reference: back and forth
            k = self.alternations.get((row["table"], row["pk"]), 0)
            self.alternations[(row["table"], row["pk"])] = k + 1
            return row["choices"][k % len(row["choices"])]
        return f"{how} write {self.n}" if row["kind"] == "text" else 1000 + self.n


def _pages(base: str, who: dict[str, Any]) -> dict[str, Any]:
    """The four pages the monitor tracks, as a client sees them (without their metadata)."""
    staff = {"Authorization": f"Token {who['token']}"}
    urls = {
        "homepage": (f"{base}/api/v1/homepage", {}),
        "the shopper's homepage": (f"{base}/api/v1/homepage?userId={who['shopper']}", staff),
        "trainer bootstrap": (f"{base}/api/v1/trainers/{who['trainer']}/bootstrap", staff),
        "student bootstrap": (f"{base}/api/v1/students/{who['student']}/bootstrap", staff),
    }
    pages = {}
    for name, (url, headers) in urls.items():
        data = _call(url, headers)["data"]
        pages[name] = {key: value for key, value in data.items() if key != "metadata"}
    return pages


def _mixed_run(cluster: StreamingPair, base: str, app: OnCluster, listening: bool) -> list:
    """API writes, ``QuerySet.update()`` and raw SQL on a shown row of every watched model.

    ``ROUNDS`` rounds of: the training API's writes and the admin's storefront
    actions; ``QuerySet.update()`` of every row; one transaction with both an
    update and a raw write; a raw ``UPDATE`` of every row, one at a time. After
    each step (and each raw write) the listener is waited for (``listening``),
    the four pages are read (cached, so tracked: a cold computation records a
    sample) and the monitor compares every tracked entry with the database.
    Returns ``(step, report)`` for each pass. Listening, each raw write must
    change a page (else its check would prove nothing).
    """
    who = app("people")
    staff = {"Authorization": f"Token {who['token']}"}
    home = _call(f"{base}/api/v1/homepage", {})["data"]["sections"]
    mine = _call(f"{base}/api/v1/homepage?userId={who['shopper']}", staff)["data"]["sections"]
    offer = home["offers"]["items"][0]
    shown = {"product": home["newArrivals"]["items"][0]["id"], "event": home["events"]["items"][0]["id"],
             "offer": offer["id"], "store": offer["store"]["id"], "shopper": who["shopper"]}  # fmt: skip
    found = app("targets", allocation=who["allocation"], shown={k: int(v) for k, v in shown.items()},
                category=mine["justForYou"]["items"][0]["category"], rounds=ROUNDS)  # fmt: skip
    rows = found["rows"]
    assert sorted(row["table"] for row in rows) == found["watched"]  # every watched model
    row = {r["table"]: r for r in rows}
    admin, value, reports = Admin(base, who["staff"]), Values(), []
    trainer = f"{base}/api/v1/trainers/{who['trainer']}"

    def checkpoint(step: str) -> dict[str, Any]:
        if listening:
            _settled(cluster)
        pages = _pages(base, who)
        reports.append((step, app("verify")))
        return pages

    for round_ in range(ROUNDS):
        checkpoint("before")
        _call(f"{trainer}/profile", staff, "PATCH", {"name": value(row["trainers_trainer"], "api")})
        _call(f"{trainer}/performance", staff, "PATCH",
              {"minutesDelivered": value(row["trainers_trainerperformance"], "api")})  # fmt: skip
        session = found["complete"][round_]
        _call(f"{base}/api/v1/sessions/{session}/complete", staff, "POST", {"rating": 5})
        _call(f"{base}/api/v1/payout-claims", staff, "POST",
              {"trainerId": str(who["trainer"]), "sessionIds": [session],
               "note": value(row["trainers_payoutclaim"], "api")})  # fmt: skip
        for storefront in ("products", "stores", "events", "offers"):
            admin.toggle_featured(row[storefront])
        checkpoint("API")
        app("update_each", rows=rows, values=[value(r, "update") for r in rows])
        checkpoint("QuerySet.update()")
        document = row["trainers_trainerdocument"]
        app("update_and_write_behind", update=row["products"], value=value(row["products"], "update"),
            raw=document, raw_value=value(document, "raw"))  # fmt: skip
        before = checkpoint("update and raw in one transaction")
        for target in rows:
            _sql(cluster, f'UPDATE "{target["table"]}" SET "{target["column"]}" = %s WHERE id = %s',  # noqa: S608
                 (value(target, "raw"), target["pk"]))  # fmt: skip
            after = checkpoint(f"raw {target['table']}")
            if listening:
                # Unchanged: not shown (the check proves nothing), or served stale (the monitor says).
                assert after != before, (f"raw {target['table']}: no page changed", reports[-1])
            before = after
    return reports


@pytest.fixture
def app_on(cluster) -> Iterator[tuple[str, OnCluster]]:
    """Gunicorn and the steps' shell, both on the cluster."""
    app = OnCluster(cluster.url("primary"))
    try:
        with gunicorn("unused", workers=1, DATABASE_URL=cluster.url("primary"),
                      ENABLE_CACHE_LISTENER="true") as base:  # fmt: skip
            yield base, app
    finally:
        app.close()


def test_the_monitor_finds_nothing_inconsistent_after_every_kind_of_write(cluster, running, app_on):
    reports = _mixed_run(cluster, *app_on, listening=True)
    for step, report in reports:
        assert report["sampled"] == TRACKED, step  # every page was compared, none skipped
        assert not any(report["inconsistent"].values()), (step, report)


def test_without_the_listener_the_monitor_finds_raw_writes_until_it_catches_up(cluster, app_on):
    follower = Listener(cluster.url("primary"))
    follower.start()  # the slot exists and has caught up: it keeps what follows
    follower.stop()
    reports = _mixed_run(cluster, *app_on, listening=False)
    # The app bumps its own writes; what it wrote behind its own back, and raw SQL, stay stale.
    for step, report in reports:
        if step in ("API", "QuerySet.update()"):
            assert not any(report["inconsistent"].values()), (step, report)
        elif step == "update and raw in one transaction":  # the document's title, on its trainer's
            assert report["inconsistent"] == {"homepage": 0, "student:bootstrap": 0,
                                              "trainer:bootstrap": 1}, report  # fmt: skip
    rounds_end = [reports[i - 1] for i, (step, _) in enumerate(reports) if step == "before" and i]
    for step, report in [*rounds_end, reports[-1]]:
        assert step.startswith("raw ")
        assert report["inconsistent"] == report["sampled"] == TRACKED, report  # every page stale

    follower.start()  # catches up from its slot
    try:
        _settled(cluster)
        base, app = app_on
        _pages(base, app("people"))
        report = app("verify")
        assert report["sampled"] == TRACKED and not any(report["inconsistent"].values()), report
    finally:
        follower.stop()


# --- the edge ---------------------------------------------------------------------------

EDGE_SECRET = "listener-edge-secret"
EDGE_BOUND_S = 20  # well under the edge's s-maxage: only a purge can meet it


def _through_edge(url: str) -> tuple[str, str, list[str]]:
    """X-Edge-Cache, Cache-Control and the new arrivals' names of the homepage at ``url``."""
    with urllib.request.urlopen(url, timeout=10) as response:
        sections = orjson.loads(response.read())["data"]["sections"]
        headers = response.headers
    names = [item["name"] for item in sections["newArrivals"]["items"]]
    return headers.get("X-Edge-Cache", ""), headers.get("Cache-Control", ""), names


def test_a_raw_update_is_purged_from_the_edge_by_the_listener(cluster):
    port = free_port()
    purge = {"EDGE_PURGE_URLS": f"http://127.0.0.1:{port}/", "EDGE_PURGE_SECRET": EDGE_SECRET}
    follower = Listener(cluster.url("primary"), **purge)
    with gunicorn("unused", workers=1, DATABASE_URL=cluster.url("primary"),
                  ENABLE_CACHE_LISTENER="true", **purge) as app:  # fmt: skip
        edge = Varnish(app.removeprefix("http://"), port, EDGE_SECRET)
        try:
            edge.start()
            follower.start()
            home = f"{edge.url}/api/v1/homepage"
            product, old = _sql(cluster, "SELECT id, name FROM products WHERE is_active AND stock > 0 "
                                         "ORDER BY created_at DESC, id DESC LIMIT 1")[0]  # fmt: skip
            wait_until(lambda: _through_edge(home)[0] == "HIT", timeout=20,
                       message="the homepage never came from the edge")  # fmt: skip
            state, control, names = _through_edge(home)
            assert state == "HIT" and old in names
            kept = int(re.search(r"s-maxage=(\d+)", control).group(1))
            assert kept > EDGE_BOUND_S  # unpurged, the edge would serve the old name past the bound

            new = f"renamed in psql {time.time_ns()}"
            _sql(cluster, "UPDATE products SET name = %s WHERE id = %s", (new, product))
            wait_until(lambda: new in _through_edge(home)[2], timeout=EDGE_BOUND_S,
                       message="the edge kept serving the old name")  # fmt: skip
            assert old not in _through_edge(home)[2]
        finally:
            follower.stop()
            edge.close()


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
