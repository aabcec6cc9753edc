"""The storefront rows of the benchmark: the homepage on PostgreSQL beside MongoDB.

The same demo storefront (``seed_demo``, same counts, same seed) is written to
a PostgreSQL database, and to a MongoDB-compatible server (secantusdb, the one
the tests use, on a free port in a temporary directory) with the rest on
another PostgreSQL database. The same gunicorn serves each in turn; ``wrk``
measures the homepage cold (``fresh=true``) and warm at one connection.

secantusdb is a MongoDB server written in Python, not MongoDB: its rows show
the service working on it and what each path costs there, not how fast MongoDB
is. The warm path reads Redis only, whichever database holds the storefront.

    .venv/bin/python -m bench.storefronts --products 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from bench.harness import (
    ROOT,
    bench_environment,
    flush_redis,
    free_port,
    manage_output,
    serve,
    stop,
    wrk,
)
from tests.servers import MongoServer

BACKENDS = {"PostgreSQL": "pg", "MongoDB (secantusdb)": "mongo"}


def databases(database_url: str) -> dict[str, str]:
    """The two PostgreSQL databases, named after the bench's own (``<name>_storefront_pg``...)."""
    base, name = database_url.rsplit("/", 1)
    return {label: f"{base}/{name}_storefront_{suffix}" for label, suffix in BACKENDS.items()}


def _recreate(url: str) -> None:
    base, name = url.rsplit("/", 1)
    statements = (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    for statement in statements:
        subprocess.run(["psql", f"{base}/postgres", "-qc", statement], check=True,
                       capture_output=True)  # fmt: skip


def _seed(env: dict, products: int, mongodb: bool) -> None:
    manage_output(env, "migrate", "--noinput", "-v0")
    if mongodb:
        manage_output(env, "migrate", "--database", "storefront", "--noinput", "-v0")
    manage_output(
        env, "seed_demo", "--seed", "7", "--products", str(products),
        "--stores", str(max(products // 10, 10)), "--events", str(max(products // 10, 10)),
        "--offers", str(max(products // 4, 20)), "--users", "20", "--trainers", "1",
        "--students", "2", "--sessions-per-trainer", "10", "--no-progress",
    )  # fmt: skip


def storefronts_possible() -> bool:
    """Whether the rows can run: secantusdb installed (requirements/local.txt), and psql."""
    return (ROOT / ".venv" / "bin" / "secantusd-py").exists() and shutil.which("psql") is not None


def storefront_rows(
    seconds: int,
    redis_url: str,
    products: int,
    database_url: str = "postgres://postgres@127.0.0.1:5432/bench",
) -> dict[str, dict]:
    """``homepage cold|warm, <backend> storefront, 1 conn`` rows, same data on each backend."""
    server = MongoServer()
    server.start()
    rows: dict[str, dict] = {}
    try:
        for label, url in databases(database_url).items():
            _recreate(url)
            env = {**os.environ, **bench_environment(url, redis_url, Path("/tmp"))}  # noqa: S108
            env.pop("STOREFRONT_DATABASE_URL", None)
            mongodb = label != "PostgreSQL"
            if mongodb:
                env["STOREFRONT_DATABASE_URL"] = server.url
            _seed(env, products, mongodb)
            flush_redis(redis_url)
            port = free_port()
            gunicorn = serve({**env, "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"}, port)
            try:
                base = f"http://127.0.0.1:{port}/api/v1/homepage"
                urllib.request.urlopen(base, timeout=60).read()  # warm the cache
                rows[f"homepage cold, {label} storefront, 1 conn"] = wrk(
                    f"{base}?fresh=true", 1, seconds
                )
                rows[f"homepage warm, {label} storefront, 1 conn"] = wrk(base, 1, seconds)
            finally:
                stop(gunicorn)
    finally:
        server.stop()
    return rows


def main() -> int:
    """The storefront rows alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/bench",
        help="Names the two databases: <name>_storefront_pg and <name>_storefront_mongo.",
    )
    args = parser.parse_args()
    rows = storefront_rows(args.seconds, args.redis_url, args.products, args.database_url)
    for name, row in rows.items():
        print(f"{name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['rps']} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
