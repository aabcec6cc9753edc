"""The listener rows of the benchmark: a raw ``UPDATE`` until a cached page shows it.

A private PostgreSQL primary with ``wal_level=logical`` (``initdb``, as
``postgres``; needs root to switch to that user), seeded small, gunicorn on it
and ``manage.py cache listen`` beside it, and the project's Varnish in front of
gunicorn when ``varnishd`` is installed (both purge it, as deployed). Each write
is a raw ``UPDATE`` from a separate connection, as ``psql`` would make it
(autocommit: it has committed when it returns); the clock runs from then until
a request shows the new value: to the cached anonymous homepage (a product's
name in new arrivals), to the cached trainer bootstrap (the trainer's bio), to
the anonymous homepage through the edge. Before each write the page is
requested until it is a cache hit (at the edge: an edge hit), so every
measurement starts from a cached copy that only the listener can invalidate.

Then the listener's restart: it is stopped, a product is renamed, and the clock
runs from starting it again (a new process: Python and Django start too) until
the cached homepage shows the name; ``RESTARTS`` times.

    .venv/bin/python -m bench.listener [--redis-url redis://127.0.0.1:6379/3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from bench.harness import bench_environment, free_port, manage_output, percentile, serve, stop
from tests.servers import StreamingPair, Varnish

ROOT = Path(__file__).resolve().parent.parent
WRITES = 200
RESTARTS = 10
GIVE_UP_S = 10.0
POLL_S = 0.02  # between requests while a restarting listener starts (it needs the cores)
TARGET_MS = 1000  # the issue's: gone from every cache within 1 s, p99
RESTART_TARGET_MS = 3000  # a write made while it is stopped: shown within 3 s of its restart
FIRST_TRAINER = (
    "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
    "t = Trainer.objects.order_by('pk').first(); "
    "print(Token.objects.get(user_id=t.user_id).key, t.pk)"
)
NEWEST_PRODUCT = (
    "from homepage.models import Product; "
    "print(Product.objects.in_stock().order_by('-created_at', '-id').first().pk)"
)


def listener_possible() -> bool:
    """Root (to run PostgreSQL's tools as ``postgres``) and Debian's PostgreSQL binaries."""
    return os.geteuid() == 0 and Path("/usr/lib/postgresql").is_dir()


def _get(url: str, headers: dict[str, str], cache: str = "X-Cache") -> tuple[str, bytes]:
    """The ``cache`` header (``X-Cache``: the app's; ``X-Edge-Cache``: Varnish's) and the body."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get(cache, ""), response.read()


def _until_cached(url: str, headers: dict[str, str], cache: str = "X-Cache") -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while _get(url, headers, cache)[0] != "HIT":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is never a {cache} hit")


def _measure(
    conn: psycopg.Connection, statement: str, url: str, headers: dict[str, str],
    cache: str = "X-Cache",
) -> list[float]:  # fmt: skip
    """Seconds from each committed write until ``url`` shows it, over ``WRITES`` writes."""
    delays = []
    for i in range(WRITES):
        marker = f"cdc-bench-{time.time_ns()}-{i}"
        _until_cached(url, headers, cache)
        conn.execute(statement, (marker,))
        written = time.perf_counter()
        while marker.encode() not in _get(url, headers, cache)[1]:
            if time.perf_counter() - written > GIVE_UP_S:
                raise RuntimeError(f"write {i} never showed at {url}")
        delays.append(time.perf_counter() - written)
    return delays


def _listen(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "cache", "listen"], cwd=ROOT, env=env,
                            start_new_session=True)  # fmt: skip


def _stop_listening(listener: subprocess.Popen) -> None:
    listener.terminate()  # SIGTERM: it stops after confirming what it applied
    listener.wait(30)


def _restarts(
    conn: psycopg.Connection, statement: str, url: str, env: dict[str, str],
    listener: subprocess.Popen,
) -> tuple[list[float], subprocess.Popen]:  # fmt: skip
    """Seconds from restarting the listener until ``url`` shows a write made while it was down.

    Returns the delays and the listener now running.
    """
    delays = []
    for i in range(RESTARTS):
        marker = f"cdc-restart-{time.time_ns()}-{i}"
        _until_cached(url, {})
        _stop_listening(listener)
        conn.execute(statement, (marker,))
        if marker.encode() in _get(url, {})[1]:
            raise RuntimeError("the write showed with no listener running")
        started = time.perf_counter()
        listener = _listen(env)
        while marker.encode() not in _get(url, {})[1]:
            if time.perf_counter() - started > GIVE_UP_S:
                raise RuntimeError(f"restart {i}: the write never showed at {url}")
            time.sleep(POLL_S)
        delays.append(time.perf_counter() - started)
    return delays, listener


def _row(delays: list[float], target_ms: int = TARGET_MS) -> dict:
    ms = [d * 1000 for d in delays]
    return {"writes": len(ms), "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
            "target_ms": target_ms}  # fmt: skip


def listener_rows(redis_url: str) -> dict[str, dict]:
    """``raw UPDATE -> gone from ...`` rows (p50, p99, max over ``WRITES`` writes) and restarts.

    The edge row only when ``varnishd`` is installed. Each row carries the
    target its p99 is held to (``target_ms``).
    """
    pair = StreamingPair(database="bench_listener", logical=True)
    listener = edge = None
    try:
        pair.start_primary()
        results = Path("/tmp")  # noqa: S108
        env = {**os.environ, **bench_environment(pair.url("primary"), redis_url, results),
               "ENABLE_CACHE_LISTENER": "true",
               "CACHE_LISTENER_SLOT": "bench_listener"}  # fmt: skip
        manage_output(env, "migrate", "--noinput", "-v0")
        manage_output(env, "seed_demo", "--products", "200", "--stores", "10", "--events", "10",
                      "--offers", "40", "--users", "20", "--trainers", "5", "--students", "20",
                      "--sessions-per-trainer", "20", "--no-progress")  # fmt: skip
        token, trainer = manage_output(env, "shell", "-v0", "-c", FIRST_TRAINER).split()
        product = manage_output(env, "shell", "-v0", "-c", NEWEST_PRODUCT).strip()
        port, edge_port = free_port(), free_port()
        if shutil.which("varnishd"):  # the app and the listener purge it, as deployed
            secret = secrets.token_urlsafe(16)
            env |= {"EDGE_PURGE_URLS": f"http://127.0.0.1:{edge_port}/",
                    "EDGE_PURGE_SECRET": secret}  # fmt: skip
            edge = Varnish(f"127.0.0.1:{port}", edge_port, secret)
        else:
            print("varnishd is not installed: no edge row (apt-get install varnish-modules)")
        listener = _listen(env)
        server = serve(env, port)
        base = f"http://127.0.0.1:{port}/api/v1"
        rename = f"UPDATE products SET name = %s WHERE id = {int(product)}"  # noqa: S608
        rows = {}
        try:
            if edge is not None:
                edge.start()
            with psycopg.connect(pair.url("primary"), autocommit=True) as conn:
                homepage = _measure(conn, rename, f"{base}/homepage", {})
                rows["raw UPDATE -> gone from the cached homepage"] = _row(homepage)
                bootstrap = _measure(
                    conn, f"UPDATE trainers_trainer SET bio = %s WHERE id = {int(trainer)}",  # noqa: S608
                    f"{base}/trainers/{trainer}/bootstrap", {"Authorization": f"Token {token}"},
                )  # fmt: skip
                rows["raw UPDATE -> gone from the cached trainer bootstrap"] = _row(bootstrap)
                if edge is not None:
                    at_edge = _measure(conn, rename, f"{edge.url}/api/v1/homepage", {},
                                       "X-Edge-Cache")  # fmt: skip
                    rows["raw UPDATE -> gone from the edge (anonymous homepage)"] = _row(at_edge)
                restarts, listener = _restarts(conn, rename, f"{base}/homepage", env, listener)
                rows["write while stopped -> shown, from the listener's restart"] = _row(
                    restarts, RESTART_TARGET_MS
                )
        finally:
            stop(server)
            if edge is not None:
                edge.close()
        return rows
    finally:
        if listener is not None:
            _stop_listening(listener)
        pair.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3", help="as bench.run")
    for name, row in listener_rows(parser.parse_args().redis_url).items():
        print(f"{name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms "
              f"({row['writes']} writes; target p99 <= {row['target_ms']} ms)")  # fmt: skip
