"""What a Redis topology (Sentinel, Cluster) must give the service, checked over HTTP.

Shared by ``test_sentinel.py`` and ``test_cluster.py``: the service runs under
gunicorn (two worker processes, so two L1 caches and two breakers) against
the topology, and these drive it the way clients do.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from tests.waiting import wait_until

HOMEPAGE = "/api/v1/homepage"


def call(base: str, path: str, token: str = "", body: dict | None = None, method: str = "GET",
         timeout: float = 30) -> tuple[int, dict]:  # fmt: skip
    """(status, JSON body, or {} if it is not JSON) of one request; 4xx and 5xx are returned."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode() if body is not None else None,
        method=method, headers=headers,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())


def _json(body: bytes) -> dict:
    return json.loads(body) if body.lstrip().startswith(b"{") else {}


def assert_hits(base: str, path: str, token: str = "") -> None:
    """After one computation, every process serves ``path`` from the shared cache."""
    status, first = call(base, path, token)
    assert status == 200, first
    repeats = [call(base, path, token) for _ in range(8)]  # both workers, several times each
    assert all(status == 200 and body["data"]["metadata"]["fromCache"] for status, body in repeats)


def assert_read_your_writes(base: str, token: str, trainer_id: int, pairs: int = 30) -> None:
    """``pairs`` profile writes, each read back at once (any worker): never the state before."""
    profile = f"/api/v1/trainers/{trainer_id}/profile"
    bootstrap = f"/api/v1/trainers/{trainer_id}/bootstrap"
    stale = []
    for i in range(pairs):
        call(base, bootstrap, token)  # cached in (at least) one worker before the write
        status, _ = call(base, profile, token, {"bio": f"write {i}"}, "PATCH")
        assert status == 200
        status, body = call(base, bootstrap, token)
        assert status == 200
        if body["data"]["overview"]["profile"]["bio"] != f"write {i}":
            stale.append(i)
    assert not stale, f"reads that missed the write just before them: {stale}"


@dataclass
class Load:
    """Clients reading ``paths`` in a loop on threads until stopped; what each request got."""

    base: str
    paths: list[tuple[str, str]]  # (path, token)
    results: list[tuple[int, float]] = field(default_factory=list)  # (status or -1, seconds)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for path, token in self.paths:
            thread = threading.Thread(target=self._run, args=(path, token), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, path: str, token: str) -> None:
        budget = settings.REQUEST_TIMEOUT / 1000 + 5  # the service's own budget, and some
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, _ = call(self.base, path, token, timeout=budget)
            except OSError as error:  # a timeout, a reset connection
                status = -1
                self.errors.append(f"{path}: {error!r}")
            self.results.append((status, time.monotonic() - started))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def assert_failover_under_load(
    base: str, token: str, trainer_id: int, failover: Callable[[], None]
) -> Load:
    """A write, a failover while clients read, then the first read shows the write.

    No 5xx, no request past its budget, no connection error while it happens.
    """
    profile = f"/api/v1/trainers/{trainer_id}/profile"
    bootstrap = f"/api/v1/trainers/{trainer_id}/bootstrap"
    paths = [(HOMEPAGE, ""), (HOMEPAGE, ""), (bootstrap, token), (bootstrap, token)]
    with Load(base, paths) as load:
        wait_until(lambda: len(load.results) >= 20, timeout=60, message="no load")
        status, _ = call(base, profile, token, {"bio": "before the failover"}, "PATCH")
        assert status == 200
        failover()
        status, body = call(base, bootstrap, token)
        assert status == 200
        assert body["data"]["overview"]["profile"]["bio"] == "before the failover"
        served = len(load.results)
        wait_until(lambda: len(load.results) >= served + 20, timeout=60, message="load stalled")
    assert not load.errors, load.errors[:5]
    assert all(200 <= status < 500 for status, _ in load.results), sorted(
        {status for status, _ in load.results}
    )
    assert max(seconds for _, seconds in load.results) < settings.REQUEST_TIMEOUT / 1000 + 5
    return load
