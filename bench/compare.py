"""The side-by-side comparison: the service vs the conventional build vs the limit, with wrk.

Every row is a ``wrk`` run against the same gunicorn: 1 connection for latency
(p50/p95/p99), 8 or 32 for throughput. The ratios are the issue's targets.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tabulate import tabulate

from bench.harness import wrk


def compare(
    port: int,
    trainer: tuple[str, int],
    ceiling_file: Path,
    seconds: int,
    edge_port: int | None = None,
) -> dict:
    """Run every comparison row; returns rows by name and the target ratios."""
    base = f"http://127.0.0.1:{port}"
    token, trainer_id = trainer
    auth = {"Authorization": f"Token {token}"}
    # The ceiling returns the warm homepage's own bytes.
    with urllib.request.urlopen(f"{base}/api/v1/homepage") as response:
        ceiling_file.parent.mkdir(parents=True, exist_ok=True)
        ceiling_file.write_bytes(response.read())
    urllib.request.urlopen(f"{base}/bench/conventional/homepage-cached").read()  # warm it
    bootstrap = f"{base}/api/v1/trainers/{trainer_id}/bootstrap"
    urllib.request.urlopen(urllib.request.Request(bootstrap, headers=auth)).read()
    four = [f"{base}/bench/conventional/trainers/{trainer_id}/{part}"
            for part in ("overview", "sessions", "allocations", "payout-claims")]  # fmt: skip
    runs = {
        "ceiling (fixed bytes), 1 conn": (f"{base}/bench/ceiling", 1, {}),
        "ceiling (fixed bytes), 32 conn": (f"{base}/bench/ceiling", 32, {}),
        "ceiling + one Redis round trip, 1 conn": (f"{base}/bench/ceiling-redis", 1, {}),
        "ceiling + one Redis round trip, 32 conn": (f"{base}/bench/ceiling-redis", 32, {}),
        "warm homepage, 1 conn": (f"{base}/api/v1/homepage", 1, {}),
        "warm homepage, 32 conn": (f"{base}/api/v1/homepage", 32, {}),
        "cache_page homepage, 1 conn": (f"{base}/bench/conventional/homepage-cached", 1, {}),
        "cache_page homepage, 32 conn": (f"{base}/bench/conventional/homepage-cached", 32, {}),
        "cold homepage (fresh=true), 1 conn": (f"{base}/api/v1/homepage?fresh=true", 1, {}),
        "cold homepage (fresh=true), 8 conn": (f"{base}/api/v1/homepage?fresh=true", 8, {}),
        "conventional homepage, 1 conn": (f"{base}/bench/conventional/homepage", 1, {}),
        "conventional homepage, 8 conn": (f"{base}/bench/conventional/homepage", 8, {}),
        "warm trainer bootstrap, 1 conn": (bootstrap, 1, auth),
        "cold trainer bootstrap (fresh=true), 1 conn": (f"{bootstrap}?fresh=true", 1, auth),
        **{f"conventional trainer {url.rsplit('/', 1)[1]}, 1 conn": (url, 1, auth) for url in four},
    }
    if edge_port is not None:  # Varnish in front of the same gunicorn
        edge_home = f"http://127.0.0.1:{edge_port}/api/v1/homepage"
        urllib.request.urlopen(edge_home).read()  # in the edge's cache
        runs |= {"edge homepage (Varnish), 1 conn": (edge_home, 1, {}),
                 "edge homepage (Varnish), 32 conn": (edge_home, 32, {})}  # fmt: skip
    rows = {name: wrk(url, conns, seconds, headers) for name, (url, conns, headers) in runs.items()}
    four_p50 = sum(
        rows[f"conventional trainer {u.rsplit('/', 1)[1]}, 1 conn"]["p50_ms"] for u in four
    )
    r = rows
    targets = {
        "cold homepage p50 / conventional p50 (<= 0.8)": (
            r["cold homepage (fresh=true), 1 conn"]["p50_ms"]
            / r["conventional homepage, 1 conn"]["p50_ms"], 0.8, "max"),
        "cold homepage req/s at 8 / conventional (>= 1.5)": (
            r["cold homepage (fresh=true), 8 conn"]["rps"]
            / r["conventional homepage, 8 conn"]["rps"], 1.5, "min"),
        "warm homepage p50 / ceiling p50 (<= 1.3)": (
            r["warm homepage, 1 conn"]["p50_ms"] / r["ceiling (fixed bytes), 1 conn"]["p50_ms"],
            1.3, "max"),
        "warm homepage req/s at 32 / ceiling (>= 0.6)": (
            r["warm homepage, 32 conn"]["rps"] / r["ceiling (fixed bytes), 32 conn"]["rps"],
            0.6, "min"),
        "warm homepage req/s at 32 / cache_page (>= 1.3)": (
            r["warm homepage, 32 conn"]["rps"] / r["cache_page homepage, 32 conn"]["rps"],
            1.3, "min"),
        "warm bootstrap p50 / warm homepage p50 (<= 1.3)": (
            r["warm trainer bootstrap, 1 conn"]["p50_ms"] / r["warm homepage, 1 conn"]["p50_ms"],
            1.3, "max"),
        "cold bootstrap p50 ms (<= 10)": (
            r["cold trainer bootstrap (fresh=true), 1 conn"]["p50_ms"], 10, "max"),
        "cold bootstrap p50 / four calls in sequence (<= 0.8)": (
            r["cold trainer bootstrap (fresh=true), 1 conn"]["p50_ms"] / four_p50, 0.8, "max"),
    }  # fmt: skip
    if edge_port is not None:
        targets |= {
            "edge homepage req/s at 32 / ceiling (>= 5)": (
                r["edge homepage (Varnish), 32 conn"]["rps"]
                / r["ceiling (fixed bytes), 32 conn"]["rps"], 5, "min"),
            "edge homepage p50 / ceiling p50 (<= 0.3)": (
                r["edge homepage (Varnish), 1 conn"]["p50_ms"]
                / r["ceiling (fixed bytes), 1 conn"]["p50_ms"], 0.3, "max"),
        }  # fmt: skip
    floor = "ceiling + one Redis round trip"
    return {
        "rows": rows,
        "four_calls_p50_ms": round(four_p50, 3),
        # How far the warm path is from the least a verified hit can cost.
        "warm_vs_floor": {
            "p50": round(r["warm homepage, 1 conn"]["p50_ms"] / r[f"{floor}, 1 conn"]["p50_ms"], 3),
            "rps": round(r["warm homepage, 32 conn"]["rps"] / r[f"{floor}, 32 conn"]["rps"], 3),
        },
        "targets": {
            name: {
                "measured": round(value, 3),
                "target": limit,
                "met": value <= limit if kind == "max" else value >= limit,
            }
            for name, (value, limit, kind) in targets.items()
        },  # fmt: skip
    }


def print_comparison(comparison: dict) -> None:
    """The comparison rows and the targets, as two tables."""
    rows = comparison["rows"]
    print(
        tabulate(
            [[name, r["p50_ms"], r["p95_ms"], r["p99_ms"], r["rps"], r["errors"]]
             for name, r in rows.items()],
            headers=["side by side (wrk)", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors"],
        )
    )  # fmt: skip
    floor = comparison["warm_vs_floor"]
    print(
        f"\nfour conventional trainer calls in sequence: p50 {comparison['four_calls_p50_ms']} ms"
        f"\nwarm homepage / (ceiling + one Redis round trip): p50 {floor['p50']}x,"
        f" req/s at 32 {floor['rps']}x\n"
    )
    if "replica_vs_primary_rps" in comparison:
        print(
            "cold trainer bootstrap at 8 connections, with a replica / primary only:"
            f" {comparison['replica_vs_primary_rps']}x req/s\n"
        )
    if "storefront_mongodb_vs_postgresql_cold_p50" in comparison:
        print(
            "cold homepage, same storefront in secantusdb / in PostgreSQL:"
            f" p50 {comparison['storefront_mongodb_vs_postgresql_cold_p50']}x\n"
        )
    if "purge_latency" in comparison:
        latency = comparison["purge_latency"]
        print(
            f"edge purge latency over {latency['writes']} writes (commit to fresh edge page):"
            f" p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms\n"
        )
    print(
        tabulate(
            [[name, t["measured"], t["target"], "met" if t["met"] else "MISSED"]
             for name, t in comparison["targets"].items()],
            headers=["target", "measured", "limit", ""],
        )
    )  # fmt: skip


def chart(comparison: dict, path: Path) -> None:
    """A PNG: p50 latency and throughput of each side-by-side row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison["rows"]
    latency = {n.removesuffix(", 1 conn"): r["p50_ms"] for n, r in rows.items() if "1 conn" in n}
    throughput = {n: r["rps"] for n, r in rows.items() if "1 conn" not in n}
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 7))
    left.barh(list(latency), list(latency.values()), color="#4c72b0")
    left.set_xlabel("p50 latency, ms (1 connection; lower is better)")
    left.set_xscale("log")
    right.barh(list(throughput), list(throughput.values()), color="#55a868")
    right.set_xlabel("requests / s (higher is better)")
    for axis in (left, right):
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
