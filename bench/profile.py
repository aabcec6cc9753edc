"""Profile one path in-process: the server's own time per request, without the network.

Runs requests through Django's full handler (every middleware, as gunicorn
would) against the benchmark's database and Redis, after ``bench.run`` has
seeded them, and prints the mean time per request beside the fixed-bytes
ceiling's. ``--pyinstrument`` writes a flame graph (HTML) of the path.

    .venv/bin/python -m bench.profile /api/v1/homepage
    .venv/bin/python -m bench.profile /api/v1/trainers/1/bootstrap --trainer
    .venv/bin/python -m bench.profile "/api/v1/homepage?fresh=true" --pyinstrument cold.html
    .venv/bin/python -m bench.profile /api/v1/homepage --calls

``--calls`` counts the function calls per request (Python and built-in, on
the request's thread): a measure of the path's own work that a busy machine
hardly moves, to compare two codes by.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

from bench.harness import bench_environment

RESULTS = Path(tempfile.gettempdir()) / "bench-profile"
CEILING_FILE = RESULTS / "ceiling.json"


def _environ(path: str, headers: dict[str, str]) -> dict:
    route, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT_ENCODING": "gzip",
        "wsgi.input": BytesIO(),
        "wsgi.url_scheme": "http",
    }
    environ.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return environ


def main() -> int:
    """Time ``path`` and the ceiling in one process; optionally profile ``path``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--trainer", action="store_true", help="Send the first trainer's token.")
    parser.add_argument("--pyinstrument", metavar="HTML", help="Write a flame graph here.")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="Count function calls per request (cProfile: Python and built-in, this thread).",
    )
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_aggregation"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    os.environ.update(bench_environment(args.database_url, args.redis_url, RESULTS))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from rest_framework.authtoken.models import Token

    from trainers.models import Trainer

    headers: dict[str, str] = {}
    path = args.path
    if args.trainer:
        trainer = Trainer.objects.order_by("pk").first()
        if trainer is None:
            sys.exit("Seed the benchmark database first (python -m bench.run).")
        headers["Authorization"] = f"Token {Token.objects.get(user_id=trainer.user_id).key}"
        path = path.replace("{trainer}", str(trainer.pk))
    handler = WSGIHandler()

    def run(target: str, count: int) -> float:
        status: list[str] = []
        started = time.perf_counter()
        for _ in range(count):
            body = handler(_environ(target, headers), lambda s, h: status.append(s))
            b"".join(body)
        elapsed = (time.perf_counter() - started) / count * 1000
        if not status[-1].startswith(("200", "304")):
            sys.exit(f"{target} answered {status[-1]}")
        return elapsed

    run(path, 50)
    RESULTS.mkdir(exist_ok=True)
    # The ceiling returns the homepage's own bytes, as in bench.run.
    CEILING_FILE.write_bytes(b"".join(handler(_environ("/api/v1/homepage", {}), lambda s, h: 0)))
    run("/bench/ceiling", 50)
    ceiling = run("/bench/ceiling", args.requests)
    measured = run(path, args.requests)
    ratio = measured / ceiling
    print(f"{path}: {measured:.3f} ms/request; ceiling {ceiling:.3f} ms ({ratio:.2f}x)")
    if args.calls:  # steady on a busy machine, unlike the time
        profiler = cProfile.Profile()
        profiler.enable()
        run(path, args.requests)
        profiler.disable()
        calls = sum(stat[1] for stat in pstats.Stats(profiler).stats.values())  # type: ignore[attr-defined]
        print(f"{path}: {calls / args.requests:.0f} function calls/request")
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        with profiler:
            run(path, args.requests)
        Path(args.pyinstrument).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
