"""Smoke test of the embedded default: ``scripts/demo`` on SQLite with no Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.servers import free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 180  # seconds: migrate + seed on a cold machine


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def embedded_server(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"REDIS_URL", "DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "demo")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        assert process.poll() is None, log.read_text()  # the script stopped
        try:
            return _get(f"{base}/api/schema/")[0] == 200
        except OSError:
            return False

    try:
        wait_until(serving, timeout=STARTUP_TIMEOUT, interval=0.2, message=log.read_text)
        banner = log.read_text()
        token = re.search(r"Token ([0-9a-f]{40})' '[^']*/homepage", banner).group(1)
        trainer = re.search(r"Token ([0-9a-f]{40})' '([^']*/trainers/\d+/bootstrap)", banner)
        yield base, token, trainer.group(1), trainer.group(2), env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.mark.smoke
@pytest.mark.slow
def test_embedded_default_serves_the_api_docs_and_admin(embedded_server):
    base, token, trainer_token, trainer_url, env = embedded_server

    status, body = _get(f"{base}/api/v1/homepage")
    assert status == 200
    data = orjson.loads(body)["data"]
    assert len(data["sections"]) == 6  # every section, each with something in it
    assert all(section["items"] for section in data["sections"].values())
    assert data["metadata"]["fromCache"] is False
    status, body = _get(f"{base}/api/v1/homepage")
    assert orjson.loads(body)["data"]["metadata"]["fromCache"] is True  # in-process cache

    status, body = _get(f"{base}/api/v1/homepage", token)
    assert status == 200
    assert orjson.loads(body)["data"]["metadata"]["userId"] is not None

    assert _get(f"{base}/api/v1/products/featured")[0] == 200
    status, body = _get(trainer_url, trainer_token)
    assert status == 200
    data = orjson.loads(body)["data"]
    assert len(data["sessions"]) == 200  # demo trainers have hundreds of sessions
    assert data["metadata"]["snapshot"]["mode"] == "single-transaction"  # SQLite
    assert _get(f"{base}/api/docs/")[0] == 200
    assert _get(f"{base}/admin/login/")[0] == 200


@pytest.mark.smoke
@pytest.mark.slow
def test_a_second_demo_on_the_same_port_says_so_in_one_line(embedded_server):
    *_, env = embedded_server
    second = subprocess.run(
        [str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0 and "already in use" in second.stderr
