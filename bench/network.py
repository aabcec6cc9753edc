"""The network rows of the benchmark: PostgreSQL and Redis behind a proxy, 0, 0.5 and 1 ms away.

Every other row takes PostgreSQL and Redis on loopback, a round trip of about
50 us; deployed, each store is 0.3 to 1 ms from the application. Here one
``bench.proxy.Proxy`` sits in front of PostgreSQL and one in front of Redis
(in this process, one thread per direction and connection), a gunicorn of its
own (``gunicorn.conf.py``, the bench's settings) reaches both only through
them, and every path runs again, the service's beside the conventional
build's (``bench/reference``):

- **round trips per request** to PostgreSQL and to Redis, as the proxies count
  them (a client's turn after a reply; ``bench/proxy.py``): counters reset, a
  fixed number of sequential requests, counts divided by the requests;
- **p50/p99** of those requests at each delay (each reply held 0, 0.5, 1 ms),
  one keep-alive connection, one request after another, after a warm-up; the
  delays taken in turn, a tenth of the requests each time, so that a busy
  host's drift does not read as the delay's effect.

Cold is ``fresh=true`` (every section computed), as in ``bench.run``; warm is
the same URL again. Tasks go to the broker (Redis, through the proxy) as from
a deployed web process; no worker runs them.

    .venv/bin/python -m bench.network --products 20000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from bench.harness import (
    ROOT,
    Client,
    bench_environment,
    flush_redis,
    free_port,
    percentile,
    prepare_database,
    print_table,
    serve,
    shopper_token_ids,
    stop,
    student_token,
    trainer_tokens,
    write_json,
)
from bench.proxy import Counts, Proxy

DELAYS_MS = (0.0, 0.5, 1.0)
REQUESTS = 200
WARMUP = 10
ROUNDS = 10  # each path takes the delays in turn this many times
HOME = "/api/v1/homepage"
LISTS = {  # the service's legacy list -> the conventional build's list
    "/api/v1/products/featured": "justForYou",
    "/api/v1/products/new-arrivals": "newArrivals",
    "/api/v1/stores/featured": "trendingStores",
    "/api/v1/events/featured": "events",
    "/api/v1/offers?featured=true": "offers",
}

# One iteration of a path: the (method, path, body) requests it sends, by iteration number.
Requests = Callable[[int], list[tuple[str, str, bytes | None]]]


@dataclass(frozen=True)
class Job:
    """What one build does for one path: its requests, with one caller's token."""

    label: str
    requests: Requests
    token: str | None = None

    def run(self, client: Client, i: int) -> float:
        """One iteration; its time in ms (all its requests, one after another)."""
        headers = {"Accept-Encoding": "gzip"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        started = time.perf_counter()
        for method, path, body in self.requests(i):
            sent = {**headers, "Content-Type": "application/json"} if body else headers
            status, _, _ = client.request(method, path, sent, body)
            if status >= 300:
                raise RuntimeError(f"{self.label}: {method} {path} answered {status}")
        return (time.perf_counter() - started) * 1000


def _get(*paths: str) -> Requests:
    return lambda i: [("GET", path, None) for path in paths]


def _patch(path: str) -> Requests:
    return lambda i: [("PATCH", path, json.dumps({"bio": f"Bench profile {i}"}).encode())]


def paths(
    shopper: tuple[str, int], trainer: tuple[str, int], student: tuple[str, int]
) -> list[tuple]:
    """(path, the service's job, the conventional build's job or None), in the order run."""
    shopper_token, shopper_id = shopper
    mine = f"{HOME}?userId={shopper_id}"  # the seed's personalised request
    trainer_token, trainer_id = trainer
    student_token_, student_id = student
    bootstrap = f"/api/v1/trainers/{trainer_id}/bootstrap"
    student_bootstrap = f"/api/v1/students/{student_id}/bootstrap"
    conventional = "/bench/conventional"
    trainer_four = Job(
        "4 calls",
        _get(*(f"{conventional}/trainers/{trainer_id}/{part}"
               for part in ("overview", "sessions", "allocations", "payout-claims"))),
        trainer_token,
    )  # fmt: skip
    student_four = Job(
        "4 calls",
        _get(*(f"{conventional}/students/{student_id}/{part}"
               for part in ("overview", "sessions", "allocations", "courses"))),
        student_token_,
    )  # fmt: skip
    rows = [
        ("homepage anonymous, cold", Job("fresh=true", _get(f"{HOME}?fresh=true")),
         Job("no cache", _get(f"{conventional}/homepage"))),
        ("homepage anonymous, warm", Job("", _get(HOME)),
         Job("cache_page", _get(f"{conventional}/homepage-cached"))),
        ("homepage personalised, cold",
         Job("fresh=true", _get(f"{mine}&fresh=true"), shopper_token), None),
        ("homepage personalised, warm", Job("", _get(mine), shopper_token), None),
        ("trainer bootstrap, cold",
         Job("fresh=true", _get(f"{bootstrap}?fresh=true"), trainer_token), trainer_four),
        ("trainer bootstrap, warm", Job("", _get(bootstrap), trainer_token), trainer_four),
        ("student bootstrap, cold",
         Job("fresh=true", _get(f"{student_bootstrap}?fresh=true"), student_token_),
         student_four),
        ("student bootstrap, warm", Job("", _get(student_bootstrap), student_token_),
         student_four),
        *((f"legacy {path.removeprefix('/api/v1/')}", Job("", _get(path)),
           Job("", _get(f"{conventional}/lists/{section}"))) for path, section in LISTS.items()),
        ("mutation: trainer profile PATCH",
         Job("", _patch(f"/api/v1/trainers/{trainer_id}/profile"), trainer_token),
         Job("", _patch(f"{conventional}/trainers/{trainer_id}/profile"), trainer_token)),
    ]  # fmt: skip
    return rows


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's (credentials kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def calibration(redis_url: str, delays_ms: tuple[float, ...], samples: int = 1000) -> dict:
    """What the proxy adds to one round trip: itself (at 0 ms), and at each delay (median PINGs)."""
    database = int(urlsplit(redis_url).path.strip("/") or 0)

    def median_ping_us(port: int) -> float:
        client = redis.Redis(port=port, db=database)
        client.ping()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            client.ping()
            times.append((time.perf_counter() - started) * 1e6)
        client.close()
        return percentile(times, 50)

    host, port = _address(redis_url, 6379)
    direct = median_ping_us(port)
    through: dict[str, float] = {}
    with Proxy((host, port)) as proxy:
        for delay in sorted({0.0, *delays_ms}):
            proxy.delay_ms = delay
            through[f"{delay:g}"] = median_ping_us(proxy.port)
    return {
        "redis_ping_direct_us": round(direct, 1),
        "proxy_itself_us": round(through["0"] - direct, 1),
        "added_by_delay_us": {
            d: round(t - through["0"], 1) for d, t in through.items() if d != "0"
        },
    }


PARSE = re.compile(rb"P....(_pg3_\d+)\0([^\0]+)\0", re.DOTALL)


def _statement(sql: str) -> str:
    """``SELECT products``, ``UPDATE trainers_trainer``, ``BEGIN``: what a statement does."""
    if not sql:
        return "empty query (the pool's check)"
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|UPDATE|INTO)\s+"(\w+)"', sql)
    if table and verb in ("SELECT", "UPDATE", "INSERT", "DELETE"):
        return f"{verb} {table.group(1)}"
    return re.sub(r"_x\d+|s\d+_", "", " ".join(sql.split()[:2]))[:60]


class Statements:
    """psycopg's prepared statements (``_pg3_N``) by connection, from the Parse messages seen."""

    def __init__(self) -> None:
        self.sql: dict[tuple[int, str], str] = {}

    def watch(self, connection: int, data: bytes) -> None:
        if b"_pg3_" in data:
            for name, sql in PARSE.findall(data):
                self.sql[connection, name.decode()] = sql.decode(errors="replace")

    def describe(self, connection: int, data: bytes) -> str:
        """A PostgreSQL client turn, by its first message."""
        kind, body = data[:1], data[5:]
        if data[4:8] == b"\x04\xd2\x16\x2f":
            return "SSL request"
        fields = body.split(b"\0")
        if kind == b"Q":
            return _statement(fields[0].decode(errors="replace"))
        if kind == b"P" and len(fields) > 1:
            return _statement(fields[1].decode(errors="replace"))
        if kind == b"B" and len(fields) > 1:
            name = fields[1].decode(errors="replace")
            return _statement(self.sql.get((connection, name), name))
        return f"startup or {kind!r}"


def _redis_turn(data: bytes) -> str:
    """A Redis client turn: the commands that begin in its first bytes, with their first key."""
    commands = []
    for command in re.split(rb"\*\d+\r\n", data)[1:]:
        args = re.findall(rb"\$\d+\r\n([^\r]*)\r\n", command)
        if args:
            name = args[0].decode(errors="replace").upper()
            at = 3 if name in ("EVAL", "EVALSHA") else 1  # a script's first key
            key = args[at][:40].decode(errors="replace") if len(args) > at else ""
            commands.append(f"{name} {key}".strip())
    return ", ".join(commands) or repr(data[:40])


def _explain(
    job: Job, client: Client, proxies: dict[str, Proxy], statements: Statements
) -> dict[str, list[str]]:
    """The round trips of one iteration of ``job``, each by what it asked."""
    for proxy in proxies.values():
        proxy.recording = []
    job.run(client, 0)
    turns = {}
    for name, proxy in proxies.items():
        recorded, proxy.recording = proxy.recording or [], None
        if name == "postgresql":
            turns[name] = [statements.describe(number, data) for number, data in recorded]
        else:
            turns[name] = [_redis_turn(data) for _, data in recorded]
    return turns


def _measure(
    job: Job, client: Client, proxies: dict[str, Proxy], requests: int, warmup: int,
    delays_ms: tuple[float, ...],
) -> dict[float, dict]:  # fmt: skip
    """``job`` at each delay: p50, p99 and round trips per request.

    In rounds that take every delay in turn: a busy host's drift over the run
    then weighs on each delay alike, instead of reading as the delay's effect.
    """
    for proxy in proxies.values():
        proxy.delay_ms = delays_ms[0]
    for i in range(warmup):
        job.run(client, i)
    rounds = max(1, min(ROUNDS, requests))
    times: dict[float, list[float]] = {d: [] for d in delays_ms}
    counts: dict[float, dict[str, list[Counts]]] = {d: {n: [] for n in proxies} for d in delays_ms}
    sent = warmup
    for turn in range(rounds):
        for delay in delays_ms:
            for proxy in proxies.values():
                proxy.delay_ms = delay
                proxy.reset()
            share = requests // rounds + (turn < requests % rounds)
            times[delay] += [job.run(client, sent + i) for i in range(share)]
            sent += share
            for name, proxy in proxies.items():
                counts[delay][name].append(proxy.reset())
    return {
        delay: {
            "p50_ms": round(percentile(times[delay], 50), 3),
            "p99_ms": round(percentile(times[delay], 99), 3),
            "round_trips": {
                name: round(sum(c.round_trips for c in taken) / requests, 2)
                for name, taken in counts[delay].items()
            },
            "connections_opened": {
                name: sum(c.connections for c in taken) for name, taken in counts[delay].items()
            },
        }  # fmt: skip
        for delay in delays_ms
    }


def network_rows(
    database_url: str,
    redis_url: str,
    *,
    workers: int = 2,
    threads: int = 4,
    parallel: bool = False,
    requests: int = REQUESTS,
    warmup: int = WARMUP,
    delays_ms: tuple[float, ...] = DELAYS_MS,
) -> dict:
    """Every path through the proxies at each delay; the database is already seeded."""
    direct = {**os.environ, **bench_environment(database_url, redis_url, Path("/tmp"))}  # noqa: S108
    shopper = shopper_token_ids(direct)[0]
    trainer = trainer_tokens(direct)[0]
    student = student_token(direct)
    flush_redis(redis_url)
    calibrated = calibration(redis_url, delays_ms)
    proxies = {
        "postgresql": Proxy(_address(database_url, 5432)),
        "redis": Proxy(_address(redis_url, 6379)),
    }
    statements = Statements()  # to name what each PostgreSQL round trip runs
    proxies["postgresql"].watch = statements.watch
    env = {
        **os.environ,
        **bench_environment(
            _through(database_url, proxies["postgresql"].port),
            _through(redis_url, proxies["redis"].port),
            Path("/tmp"),  # noqa: S108  (no ceiling rows here)
        ),
        "SECTIONS_IN_PARALLEL": str(parallel).lower(),
        "CELERY_TASK_ALWAYS_EAGER": "false",  # as deployed: tasks to the broker
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
    }
    env.pop("EDGE_PURGE_URLS", None)
    port = free_port()
    rows: dict[str, dict] = {}
    try:
        server = serve(env, port)
        client = Client(port)
        try:
            measured: dict[int, dict[float, dict]] = {}  # a conventional job shared by rows
            for path, service, conventional in paths(shopper, trainer, student):
                for build, job in (("service", service), ("conventional", conventional)):
                    if job is None:
                        continue
                    if id(job) not in measured:
                        print(f"  {path}, {build}", file=sys.stderr, flush=True)
                        measured[id(job)] = _measure(
                            job, client, proxies, requests, warmup, delays_ms
                        )
                        for proxy in proxies.values():  # one more, each round trip named
                            proxy.delay_ms = max(delays_ms)
                        measured[id(job)][max(delays_ms)]["turns"] = _explain(
                            job, client, proxies, statements
                        )
                    row = rows.setdefault(f"{path} | {build}", {
                        "path": path, "build": build, "what": job.label, "delays": {},
                    })  # fmt: skip
                    for delay, result in measured[id(job)].items():
                        row["delays"][f"{delay:g}"] = result
        finally:
            client.close()
            stop(server)
    finally:
        for proxy in proxies.values():
            proxy.close()
    low, high = f"{min(delays_ms):g}", f"{max(delays_ms):g}"
    for row in rows.values():
        farthest = row["delays"][high]  # counted where replies are farthest apart
        row["round_trips"] = farthest["round_trips"]
        row["turns"] = farthest.get("turns", {})
        if high != low:  # how many round trips lie on the request's critical path
            row["p50_ms_per_ms_of_delay"] = round(
                (farthest["p50_ms"] - row["delays"][low]["p50_ms"])
                / (max(delays_ms) - min(delays_ms)),
                2,
            )
    for row in rows.values():
        row["delays"][high].pop("turns", None)  # kept once, in the row
    return {
        "delays_ms": list(delays_ms),
        "requests_per_path": requests,
        "warmup_per_path": warmup,
        "connections": "1, keep-alive, one request after another",
        "workers": workers,
        "threads": threads,
        "calibration": calibrated,
        "rows": list(rows.values()),
    }


def print_network(network: dict, explain: bool = False) -> None:
    """The network rows as one table: round trips, then p50/p99 at each delay."""
    delays = [f"{d:g}" for d in network["delays_ms"]]
    table = []
    for row in network["rows"]:
        line = [row["path"], f"{row['build']} {row['what']}".strip(),
                row["round_trips"]["postgresql"], row["round_trips"]["redis"]]  # fmt: skip
        for delay in delays:
            line += [row["delays"][delay]["p50_ms"], row["delays"][delay]["p99_ms"]]
        line.append(row.get("p50_ms_per_ms_of_delay", ""))
        table.append(line)
    headers = ["network (through the proxy)", "build", "PG rt/req", "Redis rt/req"]
    for delay in delays:
        headers += [f"p50 ms @{delay}", f"p99 ms @{delay}"]
    print_table(table, [*headers, "p50 +ms per ms"])
    calibrated = network["calibration"]
    added = ", ".join(f"{us} us at {d} ms" for d, us in calibrated["added_by_delay_us"].items())
    print(
        f"\n{network['requests_per_path']} requests per path and delay on one keep-alive "
        f"connection, one after another, after {network['warmup_per_path']}; round trips "
        f"counted at {delays[-1]} ms. The proxy itself adds {calibrated['proxy_itself_us']} us "
        f"to a round trip (a Redis PING, {calibrated['redis_ping_direct_us']} us direct); "
        f"the delay adds {added}."
    )
    opened = [
        f"{row['path']} ({row['build']})"
        for row in network["rows"]
        if any(any(d["connections_opened"].values()) for d in row["delays"].values())
    ]
    if opened:
        print(f"connections opened while measuring (their handshakes counted): {', '.join(opened)}")
    if explain:
        for row in network["rows"]:
            print(f"\n{row['path']}, {row['build']}: one request's round trips")
            for store, turns in row["turns"].items():
                print(f"  {store} ({len(turns)}): {'; '.join(turns) or '-'}")


def main() -> int:
    """Seed (once), then the network rows alone; prints the table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_aggregation"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3", help="Flushed.")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="Per path and delay.")
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument(
        "--delays", default=",".join(f"{d:g}" for d in DELAYS_MS), help="ms, comma-separated."
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "network.json"))
    parser.add_argument("--explain", action="store_true", help="Name each path's round trips.")
    args = parser.parse_args()
    env = {**os.environ, **bench_environment(args.database_url, args.redis_url, Path("/tmp"))}  # noqa: S108
    prepare_database(env, args.products)
    started = time.monotonic()
    network = network_rows(
        args.database_url, args.redis_url, workers=args.workers, threads=args.threads,
        parallel=args.parallel, requests=args.requests, warmup=args.warmup,
        delays_ms=tuple(float(d) for d in args.delays.split(",")),
    )  # fmt: skip
    print_network(network, explain=args.explain)
    result = {
        "when": datetime.now(UTC).isoformat(),
        "products": args.products,
        "seconds": round(time.monotonic() - started),
        "sections_in_parallel": args.parallel,
        "network": network,
    }
    write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
