"""The edge rows of the benchmark: Varnish (``scripts/edge``) in front of the same gunicorn.

``python -m bench.run`` starts the edge when ``varnishd`` is installed, measures
the anonymous homepage through it beside gunicorn alone and the ceiling, and
the purge latency: the time from a write's commit to the edge serving the
changed page, over 200 writes. The latency half runs inside Django
(``python -m bench.edge latency``, started by ``bench.run`` with its environment).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = secrets.token_urlsafe(16)  # this run's; the server gets it in its environment
WRITES = 200


def available() -> bool:
    """True when ``varnishd`` (and so the edge rows) can run here."""
    return shutil.which("varnishd") is not None


class Edge:
    """``scripts/edge`` on ``port`` in front of gunicorn on ``backend_port``."""

    def __init__(self, port: int, backend_port: int) -> None:
        self.port = port
        self.workdir = tempfile.mkdtemp(prefix="bench-edge-")
        env = {**os.environ, "EDGE_PORT": str(port), "EDGE_BACKEND": f"127.0.0.1:{backend_port}",
               "EDGE_PURGE_SECRET": SECRET, "EDGE_WORKDIR": self.workdir}  # fmt: skip
        self.process = subprocess.Popen(
            [str(ROOT / "scripts" / "edge")], cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("varnishd did not start") from None
                time.sleep(0.1)

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)
        shutil.rmtree(self.workdir, ignore_errors=True)


def purge_latency(env: dict, edge_port: int) -> dict:
    """Run the latency measurement inside Django (this module's ``latency`` mode)."""
    # As a deployed web process: tasks (the re-warm a write schedules) go to
    # the broker rather than running inside the write.
    out = subprocess.run(
        [sys.executable, "-m", "bench.edge", "latency", str(edge_port)],
        cwd=ROOT, env={**env, "CELERY_TASK_ALWAYS_EAGER": "false"}, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def _latency(edge_port: int) -> dict:
    """Rename the newest product ``WRITES`` times; time commit -> the edge serving the name."""
    import django

    django.setup()
    from django.db import transaction

    from homepage.models import Product

    product = Product.objects.in_stock().order_by("-created_at", "-id").first()
    if product is None:
        raise SystemExit("No product in stock to rename.")
    url = f"http://127.0.0.1:{edge_port}/api/v1/homepage?sections=newArrivals"
    samples = []
    for i in range(WRITES):
        name = f"Bench rename {i}"
        started = time.perf_counter()
        with transaction.atomic():  # the purge runs when this commits
            Product.objects.filter(pk=product.pk).update(name=name)
        while True:
            with urllib.request.urlopen(url, timeout=10) as response:
                if name.encode() in response.read():
                    break
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()

    def pct(p: float) -> float:
        return round(samples[min(len(samples) - 1, int(p / 100 * len(samples)))], 3)

    return {"writes": WRITES, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


if __name__ == "__main__" and sys.argv[1:2] == ["latency"]:
    print(json.dumps(_latency(int(sys.argv[2]))))
