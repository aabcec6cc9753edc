"""The replica rows of the benchmark: cold trainer bootstraps, primary only vs a streaming replica.

A private PostgreSQL primary (``initdb``, as ``postgres``; needs root to switch
to that user) seeded with the benchmark's trainers, a ``pg_basebackup -R``
standby of it, and the same gunicorn started twice: reading only the primary,
then with ``DATABASE_REPLICA_URLS``. ``wrk`` measures the cold bootstrap at 8
connections each time. On one box the replica shares the primary's cores, so
this shows the cost of routing and checking positions, not extra capacity.

    .venv/bin/python -m bench.replicas
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.compare import wrk
from tests.servers import StreamingPair, free_port

PRINT_FIRST_TRAINER = (
    "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
    "t = Trainer.objects.order_by('pk').first(); "
    "print(Token.objects.get(user_id=t.user_id).key, t.pk)"
)
VACUUM = "from django.db import connection; connection.cursor().execute('VACUUM ANALYZE')"


ROOT = Path(__file__).resolve().parent.parent


def _manage(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def _serve(env: dict, port: int) -> subprocess.Popen:
    command = [str(ROOT / ".venv" / "bin" / "gunicorn")]
    server = subprocess.Popen(
        command, cwd=ROOT, env={**env, "WEB_PORT": str(port)}, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)


def replicas_possible() -> bool:
    """Root (to run PostgreSQL's tools as ``postgres``) and Debian's PostgreSQL binaries."""
    return os.geteuid() == 0 and Path("/usr/lib/postgresql").is_dir()


def replica_rows(seconds: int, redis_url: str) -> dict[str, dict]:
    """``cold trainer bootstrap ..., 8 conn`` rows: primary only, then with the replica."""
    from bench.run import TRAINERS, bench_environment  # (bench.run imports this module)

    pair = StreamingPair(database="bench_replicas")
    try:
        pair.start_primary()
        env = {**os.environ, **bench_environment(pair.url("primary"), redis_url,
                                                   Path("/tmp"))}  # fmt: skip  # noqa: S108
        _manage(env, "migrate", "--noinput", "-v0")
        _manage(env, "seed_demo", "--products", "200", "--stores", "10", "--events", "10",
                "--offers", "40", "--users", "20", "--trainers", str(TRAINERS),
                "--students", str(TRAINERS * 10), "--no-progress")  # fmt: skip
        _manage(env, "shell", "-v0", "-c", VACUUM)
        pair.start_replica()
        token, trainer = _manage(env, "shell", "-v0", "-c", PRINT_FIRST_TRAINER).split()
        rows = {}
        setups = {
            "primary only": {},
            "with a replica": {"DATABASE_REPLICA_URLS": pair.url("replica")},
        }
        for label, extra in setups.items():
            port = free_port()
            server = _serve({**env, **extra}, port)
            try:
                url = f"http://127.0.0.1:{port}/api/v1/trainers/{trainer}/bootstrap?fresh=true"
                rows[f"cold trainer bootstrap, {label}, 8 conn"] = wrk(
                    url, 8, seconds, {"Authorization": f"Token {token}"}
                )
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(30)
        return rows
    finally:
        pair.close()


if __name__ == "__main__":
    for name, row in replica_rows(5, "redis://127.0.0.1:6379/3").items():
        print(f"{name}: p50 {row['p50_ms']} ms, {row['rps']} req/s")
