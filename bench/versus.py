"""The warm homepage of this checkout side by side with another commit's, on one machine.

A loopback figure from another day does not compare: this machine's speed
moves by 1.5-2x between days, the fixed-bytes ceiling's included. This runs
both codes at once instead: the other commit in a git worktree (sharing this
checkout's virtualenv), each on its own gunicorn (2 x 4), database and Redis
database, and alternates one-connection ``wrk`` runs on the ceiling, the
ceiling plus one Redis round trip and the warm homepage, round after round.
It prints the medians and each code's warm homepage over its ceiling plus
one round trip (the ratio ``bench.run`` reports as ``warm_vs_floor``), of the
medians and as the median of each round's own ratio (steadier on a busy host).

    .venv/bin/python -m bench.versus e2bcde4 --rounds 6
"""

from __future__ import annotations

import argparse
import operator
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    bench_environment,
    flush_redis,
    free_port,
    print_table,
    stop,
    write_json,
    wrk,
)

ROWS = {"ceiling": "/bench/ceiling", "floor": "/bench/ceiling-redis", "warm": "/api/v1/homepage"}
PRODUCTS = 2_000


def _prepared(root: Path, name: str, redis_db: int, results: Path) -> dict[str, str]:
    """The environment of one side, its database created, migrated and seeded by its own code."""
    database_url = f"postgres://postgres@127.0.0.1:5432/bench_versus_{name}"
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    env = {**os.environ, **bench_environment(database_url, redis_url, results / name)}
    subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc",
                    f'CREATE DATABASE "bench_versus_{name}"'], capture_output=True)  # fmt: skip
    python = str(ROOT / ".venv" / "bin" / "python")
    for command in (["migrate", "--noinput", "-v0"],
                    ["seed_demo", "--clear", "--products", str(PRODUCTS), "--users", "20",
                     "--trainers", "5", "--students", "50"]):  # fmt: skip
        subprocess.run([python, "manage.py", *command], cwd=root, env=env, check=True,
                       capture_output=True)  # fmt: skip
    flush_redis(redis_url)
    return env


def _serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A gunicorn as deployed, of ``root``'s code; its base URL once the homepage is warm."""
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn")],
        cwd=root,
        env={**env, "WEB_PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "4"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            body = urllib.request.urlopen(f"{base}/api/v1/homepage", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        stop(server)
        raise RuntimeError(f"gunicorn from {root} did not start")
    ceiling = Path(env["BENCH_CEILING_FILE"])  # the ceiling sends the warm homepage's bytes
    ceiling.parent.mkdir(parents=True, exist_ok=True)
    ceiling.write_bytes(body)
    return server, base


def versus(commit: str, rounds: int, seconds: int, results: Path) -> dict[str, Any]:
    """Medians per side and row, and each side's warm / (ceiling + one round trip)."""
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), commit], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        (other / ".venv").symlink_to(ROOT / ".venv")
        sides = {"this checkout": (ROOT, "this", 12), commit: (other, "other", 13)}
        servers = {}
        try:
            for label, (root, name, redis_db) in sides.items():
                servers[label] = _serve(root, _prepared(root, name, redis_db, results))
            samples: dict[str, dict[str, list[float]]] = {s: {r: [] for r in ROWS} for s in sides}
            for _ in range(rounds):
                for label, (_, base) in servers.items():
                    for row, path in ROWS.items():
                        samples[label][row].append(wrk(base + path, 1, seconds)["p50_ms"])
        finally:
            for server, _ in servers.values():
                stop(server)
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT,
                           check=False, capture_output=True)  # fmt: skip
    medians = {s: {r: statistics.median(v) for r, v in rows.items()} for s, rows in samples.items()}
    # Each round's own ratio, taken seconds apart: the machine's drift over the
    # run (samples here move by half between rounds) cancels out of it.
    paired = {
        s: round(statistics.median(map(operator.truediv, rows["warm"], rows["floor"])), 3)
        for s, rows in samples.items()
    }
    return {
        "commit": commit,
        "rounds": rounds,
        "samples": samples,
        "medians": medians,
        "warm_vs_floor": {s: round(m["warm"] / m["floor"], 3) for s, m in medians.items()},
        "warm_vs_floor_paired": paired,
    }


def main() -> int:
    """Run both sides, print the medians, write ``bench/results/versus.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="The other code: a commit, tag or branch.")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="Length of each wrk run.")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "versus.json"))
    args = parser.parse_args()
    result = versus(args.commit, args.rounds, args.seconds, Path(args.out).parent)
    print_table(
        [
            [
                side,
                m["ceiling"],
                m["floor"],
                m["warm"],
                result["warm_vs_floor"][side],
                result["warm_vs_floor_paired"][side],
            ]
            for side, m in result["medians"].items()
        ],  # fmt: skip
        headers=[
            "code",
            "ceiling p50 ms",
            "ceiling + 1 RT",
            "warm homepage",
            "warm / (c + 1 RT)",
            "median of each round's",
        ],  # fmt: skip
    )
    write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
