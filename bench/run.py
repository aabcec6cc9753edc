"""Benchmark: the six legacy calls vs the batch homepage, uncached and cached.

Starts gunicorn on PostgreSQL + Redis with a seeded catalogue, drives it over
HTTP from a bounded pool of client threads on loopback, prints a table and
writes JSON. Every scenario runs in the same process against the same server,
so the ratios compare like with like.

    .venv/bin/python -m bench.run --products 1000000
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from bench import edge
from bench.compare import chart, compare, print_comparison
from bench.delivery import delivery_rows, print_delivery
from bench.harness import (
    GUNICORN,
    ROOT,
    Client,
    bench_environment,
    flush_redis,
    free_port,
    percentile,
    prepare_database,
    print_table,
    server_rss_mb,
    shopper_tokens,
    trainer_tokens,
    write_json,
)
from bench.listener import listener_possible, listener_rows
from bench.network import network_rows, print_network
from bench.replicas import replica_rows, replicas_possible
from bench.storefronts import storefront_rows, storefronts_possible
from bench.topologies import topology_rows
from bench.tracing import tracing_rows

LEGACY = [
    "/api/v1/products/featured",
    "/api/v1/products/new-arrivals",
    "/api/v1/stores/featured",
    "/api/v1/events/featured",
    "/api/v1/offers?featured=true",
    "/api/v1/offers?featured=true",  # flash sales came from /offers too (seed 004 §3.2)
]
HOME = "/api/v1/homepage"
FRESH = "/api/v1/homepage?fresh=true"
# Seed 004 §6.1 / §12.1 targets, milliseconds.
TARGETS = {"p50": 250.0, "p95": 500.0, "p99": 800.0}


def _run(
    name: str, port: int, requests: int, concurrency: int, job, rate: float | None = None
) -> dict:
    """Run ``job(client, i)`` ``requests`` times; job returns (status, bytes, from_cache).

    With ``rate`` (requests per second) the load is open-loop: request ``i`` is
    due at ``i / rate`` and its latency counts from then, so time spent queued
    behind a slow server is measured, not hidden. Without it, ``concurrency``
    clients send back to back (maximum throughput).
    """
    local = threading.local()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    hits = 0
    began = time.perf_counter()

    def one(i: int) -> None:
        nonlocal hits
        if not hasattr(local, "client"):
            local.client = Client(port)
        due = began + i / rate if rate else time.perf_counter()
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        status, size, from_cache = job(local.client, i)
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        sizes.append(size)
        hits += bool(from_cache)

    with (
        ThreadPoolExecutor(concurrency) as pool,
        tqdm(total=requests, desc=name, leave=False) as bar,
    ):
        for _ in pool.map(one, range(requests)):
            bar.update()
    wall = time.perf_counter() - began
    return {
        "scenario": name,
        "requests": requests,
        "load": f"{rate:g} req/s open loop" if rate else f"{concurrency} clients closed loop",
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "throughput_rps": round(requests / wall, 1),
        "bytes_mean": round(statistics.fmean(sizes)),
        "cache_hit_rate": round(hits / requests, 3),
        "statuses": statuses,
    }


def _batch(path: str, gzip: bool = True, token_of=None):
    def job(client: Client, i: int):
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        if token_of:
            headers["Authorization"] = f"Token {token_of(i)}"
        status, body, response_headers = client.get(path, headers)
        text = body
        if response_headers.get("Content-Encoding") == "gzip":
            text = gzip_module.decompress(body)
        return status, len(body), b'"fromCache":true' in text

    return job


def _trainer_bootstrap(trainers: list[tuple[str, int]], fresh: bool = False):
    def job(client: Client, i: int):
        token, trainer_id = trainers[i % len(trainers)]
        query = "?fresh=true" if fresh else ""
        status, body, headers = client.get(
            f"/api/v1/trainers/{trainer_id}/bootstrap{query}",
            {"Authorization": f"Token {token}", "Accept-Encoding": "gzip"},
        )
        text = gzip_module.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
        return status, len(body), b'"fromCache":true' in text

    return job


def _trainer_calls(trainers: list[tuple[str, int]]):
    def job(client: Client, i: int):
        token, trainer_id = trainers[i % len(trainers)]
        total, statuses = 0, set()
        for part in ("overview", "sessions", "allocations", "payout-claims"):
            status, body, _ = client.get(
                f"/api/v1/trainers/{trainer_id}/{part}",
                {"Authorization": f"Token {token}", "Accept-Encoding": "gzip"},
            )
            total += len(body)
            statuses.add(status)
        return max(statuses), total, False

    return job


def _legacy_page_load(client: Client, i: int):
    total, statuses = 0, set()
    for path in LEGACY:
        status, body, _ = client.get(path, {"Accept-Encoding": "gzip"})
        total += len(body)
        statuses.add(status)
    return max(statuses), total, False


def main() -> int:
    """Seed, start gunicorn, run every scenario, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="Open-loop requests/s.")
    parser.add_argument("--concurrency", type=int, default=8, help="Clients, closed loop.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_aggregation"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    parser.add_argument("--seconds", type=int, default=5, help="Length of each wrk run.")
    parser.add_argument(
        "--storefront-products",
        type=int,
        default=2_000,
        help="Products of the PostgreSQL-beside-MongoDB rows (secantusdb: a Python server).",
    )
    parser.add_argument(
        "--parallel",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Sections in the thread pool (SECTIONS_IN_PARALLEL) instead of the request thread.",
    )
    parser.add_argument(
        "--network",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="The network rows: PostgreSQL and Redis behind the proxy, 0/0.5/1 ms (bench.network).",
    )
    parser.add_argument(
        "--network-requests", type=int, default=200, help="Per path and delay, network rows."
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        **bench_environment(args.database_url, args.redis_url, Path(args.out).parent),
        "SECTIONS_IN_PARALLEL": str(args.parallel).lower(),
    }
    prepare_database(env, args.products)
    tokens = shopper_tokens(env)
    trainers = trainer_tokens(env)
    flush_redis(args.redis_url)

    port = free_port()
    edge_port = free_port() if edge.available() else None
    if edge_port is not None:  # the server purges the edge on every commit, as deployed
        env |= {"EDGE_PURGE_URLS": f"http://127.0.0.1:{edge_port}/",
                "EDGE_PURGE_SECRET": edge.SECRET}  # fmt: skip
    else:
        print("varnishd is not installed: no edge rows (apt-get install varnish varnish-modules)")
    server = subprocess.Popen(
        [GUNICORN],  # gunicorn.conf.py, as deployed
        cwd=ROOT,
        env={**env, "WEB_PORT": str(port), "WEB_CONCURRENCY": str(args.workers),
             "WEB_THREADS": str(args.threads)},
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if Client(port).get("/api/v1/products/featured")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)

        n, c, rate = args.requests, args.concurrency, args.rate
        users = lambda i: tokens[i % len(tokens)]  # noqa: E731
        rss_before = server_rss_mb(server.pid)
        edge_server = edge.Edge(edge_port, port) if edge_port is not None else None
        try:
            comparison = compare(
                port, trainers[0], Path(env["BENCH_CEILING_FILE"]), args.seconds, edge_port
            )
            if edge_server is not None:
                latency = edge.purge_latency(env, edge_port)
                comparison["purge_latency"] = latency
                comparison["targets"]["purge latency p99 ms, commit to fresh edge (<= 50)"] = {
                    "measured": latency["p99_ms"],
                    "target": 50,
                    "met": latency["p99_ms"] <= 50,
                }
        finally:
            if edge_server is not None:
                edge_server.close()
        # Section versions and encodings (changes the first trainer's bio once).
        delivery = delivery_rows(port, trainers[0], args.seconds)
        if replicas_possible():
            replica = replica_rows(args.seconds, args.redis_url)
            comparison["rows"] |= replica
            primary, with_replica = replica.values()
            comparison["replica_vs_primary_rps"] = round(with_replica["rps"] / primary["rps"], 3)
        else:
            print("no replica rows: they need root (to run initdb as postgres) and PostgreSQL")
        if listener_possible():  # raw writes (psql) until the cached pages no longer show them
            comparison["listener"] = listener_rows(args.redis_url)
            for name, row in comparison["listener"].items():
                print(f"{name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
                target = row["target_ms"]
                comparison["targets"][f"{name}, p99 ms (<= {target})"] = {
                    "measured": row["p99_ms"], "target": target, "met": row["p99_ms"] <= target,
                }  # fmt: skip
        else:
            print("no listener rows: they need root (to run initdb as postgres) and PostgreSQL")
        # Warm hits with the cache on one Redis and on a Redis Cluster (private servers).
        comparison["rows"] |= topology_rows(args.seconds, args.database_url, args.products)
        if storefronts_possible():
            storefronts = storefront_rows(
                args.seconds, args.redis_url, args.storefront_products, args.database_url
            )
            comparison["rows"] |= storefronts
            cold = [row for name, row in storefronts.items() if name.startswith("homepage cold")]
            comparison["storefront_mongodb_vs_postgresql_cold_p50"] = round(
                cold[1]["p50_ms"] / cold[0]["p50_ms"], 2
            )
        else:
            print("no storefront rows: secantusdb is not installed (requirements/local.txt)")
        tracing = tracing_rows(env, args.seconds, trainers[0])  # gunicorns of its own
        comparison["rows"] |= {k: v for k, v in tracing.items() if "rps" in v}
        comparison["tracing_on_vs_off_warm_rps"] = round(
            tracing["warm homepage, tracing on (sampling 1.0), 32 conn"]["rps"]
            / tracing["warm homepage, tracing off, 32 conn"]["rps"],
            3,
        )
        rows = [
            # Seed 004's "current state": six calls per page load, one after another.
            _run("legacy: 6 calls / page", port, max(n // 6, 20), 32, _legacy_page_load, rate / 6),
            _run(
                "batch: uncached (fresh=true)",
                port,
                n // 2,
                32,
                _batch(FRESH, gzip=False),
                rate / 5,
            ),
            _run("batch: cached, anonymous", port, n, 32, _batch(HOME, gzip=False), rate),
            _run("batch: cached, gzip", port, n, 32, _batch(HOME), rate),
            # Every user's first visit computes their "just for you"; repeat visits hit.
            _run(
                "batch: personalised, first visits",
                port,
                len(tokens),
                32,
                _batch(HOME, False, users),
                rate / 2,
            ),
            _run(
                "batch: personalised, repeat visits", port, n, 32, _batch(HOME, False, users), rate
            ),
            _run("batch: cached, max throughput", port, n, c, _batch(HOME)),
            # Seed 000: the trainer app's four requests, then the one bootstrap.
            _run(
                "trainer: 4 individual calls",
                port,
                max(n // 4, 20),
                32,
                _trainer_calls(trainers),
                rate / 4,
            ),
            _run(
                "trainer bootstrap: uncached (fresh=true)",
                port,
                n // 2,
                32,
                _trainer_bootstrap(trainers, fresh=True),
                rate / 5,
            ),
            _run("trainer bootstrap: cached", port, n, 32, _trainer_bootstrap(trainers), rate),
        ]
        rss_after = server_rss_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    # With the main server stopped: a gunicorn of its own, reaching both stores through the proxy.
    network = (
        network_rows(
            args.database_url,
            args.redis_url,
            workers=args.workers,
            threads=args.threads,
            parallel=args.parallel,
            requests=args.network_requests,
        )  # fmt: skip
        if args.network
        else None
    )

    legacy_p50 = rows[0]["p50_ms"]
    for row in rows:
        row["seed_target_p50_ratio"] = round(TARGETS["p50"] / row["p50_ms"], 1)
        row["seed_target_p95_ratio"] = round(TARGETS["p95"] / row["p95_ms"], 1)
        row["seed_target_p99_ratio"] = round(TARGETS["p99"] / row["p99_ms"], 1)
        row["vs_legacy_p50"] = round(legacy_p50 / row["p50_ms"], 1)
    print_table(
        [
            [
                r["scenario"],
                r["requests"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["throughput_rps"],
                r["bytes_mean"],
                f"{r['cache_hit_rate']:.0%}",
                f"{r['seed_target_p50_ratio']}x",
                f"{r['seed_target_p95_ratio']}x",
                f"{r['seed_target_p99_ratio']}x",
                f"{r['vs_legacy_p50']}x",
            ]
            for r in rows
        ],
        headers=[
            "scenario",
            "reqs",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "bytes",
            "hits",
            "p50 vs target",
            "p95 vs target",
            "p99 vs target",
            "p50 vs legacy",
        ],
    )
    print_comparison(comparison)
    print()
    print_delivery(delivery)
    if network is not None:
        print()
        print_network(network)
    print(
        f"\nserver RSS: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after "
        f"({args.workers} workers x {args.threads} threads); products: {args.products:,}"
    )
    result = {
        "when": datetime.now(UTC).isoformat(),
        "products": args.products,
        "workers": args.workers,
        "threads": args.threads,
        "targets_ms": TARGETS,
        "server_rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
        "sections_in_parallel": args.parallel,
        "comparison": comparison,
        "delivery": delivery,
        "scenarios": rows,
    }
    if network is not None:
        result["network"] = network
    out = Path(args.out)
    write_json(out, result)
    chart(comparison, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
