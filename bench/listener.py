"""The listener rows of the benchmark: a raw ``UPDATE`` until a cached page shows it.

A private PostgreSQL primary with ``wal_level=logical`` (``initdb``, as
``postgres``; needs root to switch to that user), seeded small, gunicorn on it
and ``manage.py cache listen`` beside it. Each write is a raw ``UPDATE`` from a
separate connection, as ``psql`` would make it (autocommit: it has committed
when it returns); the clock runs from then until a request to the cached
anonymous homepage (a product's name in new arrivals) or to the cached trainer
bootstrap (the trainer's bio) shows the new value. Before each write the page
is requested until it is a cache hit, so every measurement starts from a cached
copy that only the listener can invalidate.

    .venv/bin/python -m bench.listener
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from bench.harness import bench_environment, free_port, manage_output, percentile, serve, stop
from tests.servers import StreamingPair

ROOT = Path(__file__).resolve().parent.parent
WRITES = 200
GIVE_UP_S = 10.0
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


def _get(url: str, headers: dict[str, str]) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("X-Cache", ""), response.read()


def _until_cached(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + GIVE_UP_S
    while _get(url, headers)[0] != "HIT":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is never a cache hit")


def _measure(conn: psycopg.Connection, statement: str, url: str, headers: dict[str, str]) -> list:
    """Seconds from each committed write until ``url`` shows it, over ``WRITES`` writes."""
    delays = []
    for i in range(WRITES):
        marker = f"cdc-bench-{time.time_ns()}-{i}"
        _until_cached(url, headers)
        conn.execute(statement, (marker,))
        written = time.perf_counter()
        while marker.encode() not in _get(url, headers)[1]:
            if time.perf_counter() - written > GIVE_UP_S:
                raise RuntimeError(f"write {i} never showed at {url}")
        delays.append(time.perf_counter() - written)
    return delays


def _row(delays: list[float]) -> dict:
    ms = [d * 1000 for d in delays]
    return {"writes": len(ms), "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}  # fmt: skip


def listener_rows(redis_url: str) -> dict[str, dict]:
    """``raw UPDATE -> gone from the cached ...`` rows: p50, p99, max over ``WRITES`` writes."""
    pair = StreamingPair(database="bench_listener", logical=True)
    listener = None
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
        listener = subprocess.Popen([sys.executable, "manage.py", "cache", "listen"], cwd=ROOT,
                                    env=env, start_new_session=True)  # fmt: skip
        port = free_port()
        server = serve(env, port)
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            with psycopg.connect(pair.url("primary"), autocommit=True) as conn:
                homepage = _measure(
                    conn, f"UPDATE products SET name = %s WHERE id = {int(product)}",  # noqa: S608
                    f"{base}/homepage", {},
                )  # fmt: skip
                bootstrap = _measure(
                    conn, f"UPDATE trainers_trainer SET bio = %s WHERE id = {int(trainer)}",  # noqa: S608
                    f"{base}/trainers/{trainer}/bootstrap", {"Authorization": f"Token {token}"},
                )  # fmt: skip
        finally:
            stop(server)
        return {
            "raw UPDATE -> gone from the cached homepage": _row(homepage),
            "raw UPDATE -> gone from the cached trainer bootstrap": _row(bootstrap),
        }
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(30)
        pair.close()


if __name__ == "__main__":
    for name, row in listener_rows("redis://127.0.0.1:6379/3").items():
        print(f"{name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms "
              f"({row['writes']} writes)")  # fmt: skip
