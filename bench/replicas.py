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
from pathlib import Path

from bench.harness import TRAINERS, bench_environment, free_port, manage_output, serve, stop, wrk
from tests.servers import StreamingPair

PRINT_FIRST_TRAINER = (
    "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
    "t = Trainer.objects.order_by('pk').first(); "
    "print(Token.objects.get(user_id=t.user_id).key, t.pk)"
)
VACUUM = "from django.db import connection; connection.cursor().execute('VACUUM ANALYZE')"


def replicas_possible() -> bool:
    """Root (to run PostgreSQL's tools as ``postgres``) and Debian's PostgreSQL binaries."""
    return os.geteuid() == 0 and Path("/usr/lib/postgresql").is_dir()


def replica_rows(seconds: int, redis_url: str) -> dict[str, dict]:
    """``cold trainer bootstrap ..., 8 conn`` rows: primary only, then with the replica."""
    pair = StreamingPair(database="bench_replicas")
    try:
        pair.start_primary()
        env = {**os.environ, **bench_environment(pair.url("primary"), redis_url,
                                                   Path("/tmp"))}  # fmt: skip  # noqa: S108
        manage_output(env, "migrate", "--noinput", "-v0")
        manage_output(
            env, "seed_demo", "--products", "200", "--stores", "10", "--events", "10",
            "--offers", "40", "--users", "20", "--trainers", str(TRAINERS),
            "--students", str(TRAINERS * 10), "--no-progress",
        )  # fmt: skip
        manage_output(env, "shell", "-v0", "-c", VACUUM)
        pair.start_replica()
        token, trainer = manage_output(env, "shell", "-v0", "-c", PRINT_FIRST_TRAINER).split()
        rows = {}
        setups = {
            "primary only": {},
            "with a replica": {"DATABASE_REPLICA_URLS": pair.url("replica")},
        }
        for label, extra in setups.items():
            port = free_port()
            server = serve({**env, **extra}, port)
            try:
                url = f"http://127.0.0.1:{port}/api/v1/trainers/{trainer}/bootstrap?fresh=true"
                rows[f"cold trainer bootstrap, {label}, 8 conn"] = wrk(
                    url, 8, seconds, {"Authorization": f"Token {token}"}
                )
            finally:
                stop(server)
        return rows
    finally:
        pair.close()


if __name__ == "__main__":
    for name, row in replica_rows(5, "redis://127.0.0.1:6379/3").items():
        print(f"{name}: p50 {row['p50_ms']} ms, {row['rps']} req/s")
