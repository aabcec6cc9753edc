"""The Redis topology rows of the benchmark: warm homepage and bootstrap, one Redis vs a Cluster.

The same gunicorn (as deployed, production settings) on the same database is
started twice: its cache on one private ``redis-server``, then on a private
Redis Cluster (three masters, three replicas, ``redis-cli --cluster create``;
the Celery broker stays the single server). For each, the Redis commands one
warm request costs are counted on the servers (``INFO commandstats``, every
master), then ``wrk`` measures the warm anonymous homepage and the warm
trainer bootstrap at 8 connections. On one box the cluster's masters share
the same cores, so this shows what the cluster costs a hit, not capacity.

    .venv/bin/python -m bench.topologies
"""

from __future__ import annotations

import argparse
import os
import urllib.request
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.harness import (
    bench_environment,
    free_port,
    prepare_database,
    serve,
    stop,
    trainer_tokens,
    wrk,
)
from tests.servers import RedisCluster, RedisServer

HOME = "/api/v1/homepage"
COUNTED_REQUESTS = 50


def _get(port: int, path: str, token: str = "") -> None:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _commands_per_request(
    servers: list[RedisServer], request: Callable[[], None]
) -> dict[str, float]:
    """Redis commands per request, by name, summed over ``servers`` (``COUNTED_REQUESTS`` runs)."""
    total: Counter[str] = Counter()

    def nested(index: int) -> None:
        if index == len(servers):
            for _ in range(COUNTED_REQUESTS):
                request()
            return
        total.update(servers[index].commands_during(lambda: nested(index + 1)))

    nested(0)
    return {name.removeprefix("cmdstat_"): n / COUNTED_REQUESTS for name, n in total.items()}


def topology_rows(seconds: int, database_url: str, products: int) -> dict[str, dict]:
    """``warm ..., <topology>, 8 conn`` rows with the commands per request of each."""
    broker = RedisServer()
    single = RedisServer()
    cluster = RedisCluster()
    rows: dict[str, dict] = {}
    try:
        broker.start()
        single.start()
        cluster.start()
        env = {**os.environ, **bench_environment(database_url, single.url, Path("/tmp"))}  # noqa: S108
        prepare_database(env, products)
        token, trainer = trainer_tokens(env)[0]
        bootstrap = f"/api/v1/trainers/{trainer}/bootstrap"
        setups = {
            "one Redis": ({"REDIS_URL": single.url}, [single]),
            "Redis Cluster (3 masters)": (
                {"REDIS_URL": "", "REDIS_CLUSTER_NODES": cluster.addresses},
                cluster.masters(),
            ),
        }
        for label, (extra, servers) in setups.items():
            port = free_port()
            server = serve({**env, "CELERY_BROKER_URL": broker.url, **extra}, port)
            try:
                for _ in range(5):  # computed once, then in every worker's connections
                    _get(port, HOME)
                    _get(port, bootstrap, token)
                for name, path, auth in (("homepage", HOME, ""), ("bootstrap", bootstrap, token)):
                    per_request = _commands_per_request(servers, partial(_get, port, path, auth))
                    headers = {"Authorization": f"Token {auth}"} if auth else None
                    row = wrk(f"http://127.0.0.1:{port}{path}", 8, seconds, headers)
                    rows[f"warm {name}, {label}, 8 conn"] = {**row, "redis_commands": per_request}
            finally:
                stop(server)
        return rows
    finally:
        cluster.close()
        single.stop()
        broker.stop()


def main() -> None:
    """Run the rows alone and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_topologies"
    )
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    for name, row in topology_rows(args.seconds, args.database_url, args.products).items():
        counted = sorted(row["redis_commands"].items())
        commands = ", ".join(f"{command} {count:g}" for command, count in counted)
        print(f"{name}: p50 {row['p50_ms']} ms, {row['rps']} req/s; per request: {commands}")


if __name__ == "__main__":
    main()
