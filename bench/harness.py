"""What every part of the benchmark shares: environment, database, gunicorn, HTTP, wrk, output.

The server's environment, the seeded database and its tokens, starting and
stopping gunicorn, the keep-alive HTTP client, wrk, tables and JSON.

Imports nothing else from ``bench``: every other module imports this one, so
the imports inside ``bench`` run one way (``run`` at the top, ``harness`` and
``proxy`` at the bottom).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
TRAINERS = 50


def bench_environment(database_url: str, redis_url: str, results: Path) -> dict[str, str]:
    """The server's environment: production settings plus the reference views, limits off."""
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",  # production + the reference views
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "BENCH_CEILING_FILE": str(results / "ceiling.json"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "ERROR",
        "RATELIMIT_ENABLE": "false",  # the bench measures capacity, not the limits
        "WEB_ACCESS_LOG": "",  # gunicorn.conf.py: no access log
    }


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- manage.py --------------------------------------------------------------------


def manage(env: dict, *args: str) -> None:
    """``manage.py args`` against the bench database, its output on the terminal."""
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def manage_output(env: dict, *args: str) -> str:
    """``manage.py args`` with this interpreter; its stdout."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def shell(env: dict, code: str) -> str:
    """Run Python in ``manage.py shell`` against the bench database; its stdout."""
    return subprocess.run(
        [PYTHON, "manage.py", "shell", "-v0", "-c", code],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def prepare_database(env: dict, products: int) -> None:
    """Create, migrate and (once per size) seed the bench database, then ``VACUUM ANALYZE``."""
    db = env["DATABASE_URL"].rsplit("/", 1)
    subprocess.run(
        ["psql", f"{db[0]}/postgres", "-qc", f'CREATE DATABASE "{db[1]}"'],
        capture_output=True,
    )
    manage(env, "migrate", "--noinput", "-v0")
    counts = shell(
        env,
        "from homepage.models import Product; from trainers.models import Trainer; "
        "print(Product.objects.count(), Trainer.objects.count())",
    ).split()
    # Seeded completely (an interrupted seed leaves products without trainers)?
    if [int(c) for c in counts] != [products, TRAINERS]:
        manage(
            env, "seed_demo", "--clear", "--products", str(products),
            "--stores", str(max(products // 20, 50)), "--events", str(max(products // 20, 50)),
            "--offers", str(max(products // 5, 100)), "--users", "200",
            "--trainers", str(TRAINERS), "--students", str(TRAINERS * 10),
        )  # fmt: skip
    shell(env, "from django.db import connection; connection.cursor().execute('VACUUM ANALYZE')")


def shopper_tokens(env: dict) -> list[str]:
    """The API tokens of up to 200 demo shoppers."""
    return shell(
        env,
        "from rest_framework.authtoken.models import Token; "
        "print('\\n'.join(Token.objects.filter(user__username__startswith='shopper')"
        ".values_list('key', flat=True)[:200]))",
    ).split()


def shopper_token_ids(env: dict) -> list[tuple[str, int]]:
    """(token, user id) of up to 200 demo shoppers."""
    out = shell(
        env,
        "from rest_framework.authtoken.models import Token; "
        "[print(k, u) for k, u in Token.objects.filter(user__username__startswith='shopper')"
        ".values_list('key', 'user_id')[:200]]",
    )
    return [(key, int(user_id)) for key, user_id in (line.split() for line in out.splitlines())]


def trainer_tokens(env: dict) -> list[tuple[str, int]]:
    """(token, trainer id) of every demo trainer."""
    out = shell(
        env,
        "from trainers.models import Trainer; from rest_framework.authtoken.models import Token; "
        "[print(Token.objects.get(user_id=t.user_id).key, t.pk) for t in Trainer.objects.all()]",
    )
    return [(line.split()[0], int(line.split()[1])) for line in out.splitlines()]


def student_token(env: dict) -> tuple[str, int]:
    """(token, student id) of the first demo student."""
    token, student = shell(
        env,
        "from students.models import Student; from rest_framework.authtoken.models import Token; "
        "s = Student.objects.order_by('pk').first(); "
        "print(Token.objects.get(user_id=s.user_id).key, s.pk)",
    ).split()
    return token, int(student)


def flush_redis(redis_url: str) -> None:
    """``FLUSHDB`` on the bench's own Redis database (the one ``redis_url`` names)."""
    subprocess.run(["redis-cli", "-u", redis_url, "flushdb"], check=True, capture_output=True)


# --- gunicorn -----------------------------------------------------------------------


def serve(env: dict, port: int) -> subprocess.Popen:
    """Start gunicorn as deployed (``gunicorn.conf.py``) on ``port``; return once it answers."""
    server = subprocess.Popen(
        [GUNICORN], cwd=ROOT, env={**env, "WEB_PORT": str(port)}, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop(server)
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)


def stop(server: subprocess.Popen) -> None:
    """Stop a server started in its own session (gunicorn and its workers)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def server_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, MiB."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


# --- HTTP -----------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection per client thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(
        self, method: str, path: str, headers: dict | None = None, body: bytes | None = None
    ) -> tuple[int, bytes, dict]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
        return self.request("GET", path, headers)

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# --- wrk --------------------------------------------------------------------------------

LATENCY_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.3f %.3f %.3f %.1f %d %d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6),
    errors, summary.requests))
end
"""
RESULT = re.compile(r"RESULT ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)")


def _wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str] | None = None) -> dict:
    """One wrk run: p50/p95/p99 in ms, requests per second, errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LATENCY_SCRIPT)
    command = [_wrk(), f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
               "-s", script.name, url]  # fmt: skip
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    p50, p95, p99, rps, errors, requests = RESULT.search(output).groups()
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "rps": float(rps), "errors": int(errors), "requests": int(requests)}  # fmt: skip


# --- output -------------------------------------------------------------------------------


def print_table(rows: list[list], headers: list[str]) -> None:
    """One plain-text table (tabulate's default layout, as every table of the bench)."""
    print(tabulate(rows, headers=headers))


def write_json(path: Path, result: dict) -> None:
    """``result`` as indented JSON at ``path`` (its directory made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
