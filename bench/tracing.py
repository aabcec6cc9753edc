"""The tracing rows of the benchmark: one gunicorn with tracing off, then on, every trace kept.

On: ``OTEL_TRACES_EXPORTER=otlp`` and ``OTEL_TRACES_SAMPLER_ARG=1.0``, the spans
batched and sent over OTLP/HTTP to a sink in this process that reads each
export and answers 200 (a collector that costs nothing), so the rows show what
making, batching, encoding and sending the spans costs the service. ``wrk``
measures the warm homepage (1 and 32 connections), the cold homepage
(``fresh=true``) and the cold trainer bootstrap (8 connections) each time.

    .venv/bin/python -m bench.tracing --products 2000 --seconds 3
"""

from __future__ import annotations

import argparse
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.harness import (
    bench_environment,
    flush_redis,
    free_port,
    prepare_database,
    print_table,
    serve,
    stop,
    trainer_tokens,
    wrk,
)

HOME = "/api/v1/homepage"


class OTLPSink:
    """An OTLP/HTTP endpoint that accepts every export and counts them."""

    def __init__(self) -> None:
        sink = self
        self.exports = 0
        self.bytes = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink.exports += 1
                    sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tracing_rows(env: dict, seconds: int, trainer: tuple[str, int]) -> dict[str, dict]:
    """Rows ``<path>, tracing off|on (sampling 1.0), <n> conn``, and the exports received."""
    sink = OTLPSink()
    token, trainer_id = trainer
    auth = {"Authorization": f"Token {token}"}
    setups = {
        "tracing off": {"OTEL_TRACES_EXPORTER": ""},
        "tracing on (sampling 1.0)": {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
        },
    }
    rows: dict[str, dict] = {}
    try:
        for label, extra in setups.items():
            port = free_port()
            server = serve({**env, **extra}, port)
            base = f"http://127.0.0.1:{port}"
            try:
                wrk(base + HOME, 1, 1)  # stored, and the processes warmed up
                for conns in (1, 32):
                    rows[f"warm homepage, {label}, {conns} conn"] = wrk(base + HOME, conns, seconds)
                rows[f"cold homepage (fresh=true), {label}, 8 conn"] = wrk(
                    f"{base}{HOME}?fresh=true", 8, seconds
                )
                rows[f"cold trainer bootstrap, {label}, 8 conn"] = wrk(
                    f"{base}/api/v1/trainers/{trainer_id}/bootstrap?fresh=true", 8, seconds, auth
                )
            finally:
                stop(server)  # gunicorn's workers flush their last batch on the way out
            rows[f"OTLP exports received, {label}"] = {"exports": sink.exports, "bytes": sink.bytes}
    finally:
        sink.close()
    return rows


def main() -> int:
    """Tracing rows alone, on a database of their own (seeded once at ``--products``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=5, help="Length of each wrk run.")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_tracing"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    env = {**os.environ, **bench_environment(args.database_url, args.redis_url, Path("/tmp"))}  # noqa: S108
    prepare_database(env, args.products)
    flush_redis(args.redis_url)
    rows = tracing_rows(env, args.seconds, trainer_tokens(env)[0])
    print_table(
        [
            [name, row.get("p50_ms"), row.get("p95_ms"), row.get("p99_ms"), row.get("rps")]
            if "rps" in row
            else [name, "", "", "", f"{row['exports']} exports, {row['bytes']} bytes"]
            for name, row in rows.items()
        ],
        ["tracing (wrk)", "p50 ms", "p95 ms", "p99 ms", "req/s"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
