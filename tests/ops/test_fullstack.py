"""The full stack exactly as the README starts it: ``./scripts/fullstack``.

gunicorn (``gunicorn.conf.py``), the Celery worker and beat, Flower, and the
edge when Varnish is installed, all on the suite's PostgreSQL database and
Redis, on free ports. Each part must answer and do its job; SIGTERM must stop
every process and free every port.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import orjson
import pytest
from django.db import connection

from caching.keys import WARM_RUNS_KEY
from caching.shared import shared_cache
from caching.warming import wait_for_scheduled
from config.celery_app import app as celery_app
from homepage.models import Product
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fullstack, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _varnish_installed() -> bool:
    """``scripts/fullstack``'s own test for starting the edge."""
    return bool(shutil.which("varnishd") and glob.glob("/usr/lib/*/varnish/vmods/libvmod_xkey.so"))


def _warm_runs() -> dict[str, int]:
    return shared_cache.hgetall(WARM_RUNS_KEY)


def test_the_full_stack_starts_serves_runs_its_tasks_and_stops(tmp_path, settings):
    web, flower, edge = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,  # the suite's own (flushed per test)
        "WEB_PORT": str(web), "FLOWER_PORT": str(flower), "EDGE_PORT": str(edge),
        "CACHE_WARMING_INTERVAL": "2000",  # beat: every 2 s, for this test
        "CELERY_CONCURRENCY": "1",
    }  # fmt: skip
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script's own default, as a user runs it
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log = (tmp_path / "fullstack.log").open("wb")
    stack = subprocess.Popen(
        [str(ROOT / "scripts" / "fullstack")], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{web}"
        wait_until(lambda: _get(f"{base}/api/v1/homepage")[0] == 200, timeout=120,
                   message="the API never answered")  # fmt: skip

        # Flower lists the worker, and shows tasks that ran on it.
        wait_until(lambda: b"celery@" in _get(f"http://127.0.0.1:{flower}/workers")[1],
                   timeout=60, message="Flower never listed the worker")  # fmt: skip
        datatable = (
            f"http://127.0.0.1:{flower}/tasks/datatable?draw=1&start=0&length=200"
            "&order[0][column]=0&columns[0][data]=name&order[0][dir]=asc"
        )

        def succeeded() -> set[str]:
            status, body = _get(datatable)
            rows = orjson.loads(body)["data"] if status == 200 else []
            return {row["name"] for row in rows if row.get("state") == "SUCCESS"}

        wait_until(lambda: "caching.warm_one" in succeeded(), timeout=60,
                   message="Flower showed no task that ran")  # fmt: skip

        # Beat schedules the warm runs (one more comes only from the worker's start).
        wait_until(lambda: _warm_runs().get("warm_all", 0) >= 3, timeout=60,
                   message="beat's warm runs did not reach the worker")  # fmt: skip

        # A write (here, as the admin or a script makes it) schedules a re-warm
        # through the broker, which the stack's worker runs.
        rewarms = _warm_runs().get("rewarm", 0)
        settings.CELERY_TASK_ALWAYS_EAGER = False
        celery_app.conf.task_always_eager = False
        try:
            Product.objects.filter(pk=Product.objects.order_by("pk").first().pk).update(
                name="Written during the full-stack test"
            )
            wait_for_scheduled()
        finally:
            celery_app.conf.task_always_eager = True
        wait_until(lambda: _warm_runs().get("rewarm", 0) > rewarms, timeout=60,
                   message="the write's re-warm never ran")  # fmt: skip

        # With Varnish (and its xkey module) installed the script runs the edge, which
        # serves the page too; without, nothing listens on its port.
        with_edge = _varnish_installed()
        assert _listening(edge) is with_edge
        assert _get(f"http://127.0.0.1:{edge}/api/v1/homepage")[0] == (200 if with_edge else 0)
    finally:
        os.kill(stack.pid, signal.SIGTERM)  # honcho, as an operator stops it
        try:
            stack.wait(60)
        finally:
            log.close()
    output = (tmp_path / "fullstack.log").read_text(errors="replace")

    # Everything stopped: no process of the group left, every port free.
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.pid, 0)
    for port in (web, flower, edge):
        assert not _listening(port), port

    # Ops read these logs: no start-up warnings, each event logged once.
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line]
    assert "superuser privileges" not in output
    assert '] "GET /' not in output  # no access-log line beside the app's request_finished
    assert "succeeded in" not in output  # no Celery line beside django-structlog's
