"""Single-flight: one computation of a key at a time, per process and per cluster.

In a process, the first thread to miss a key becomes its *leader* and the
others wait on its ``Flight``. Across processes, the leader also takes a Redis
lock (``SET NX`` with expiry); a process that cannot take it polls Redis for
the other one's result. Nothing here knows what is computed or stored: the
engine passes in how to compute and how to look for a result.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings

from .keys import lock_key
from .shared import SharedCacheUnavailable, shared_cache

LOCK_POLL_INTERVAL = 0.01  # seconds between looks for another process's result
LOCK_POLL_MAX_INTERVAL = 0.05


class Flight:
    """One computation in this process that other threads may wait for.

    ``started`` (epoch seconds) and ``generations`` say what the computation
    started from, so a follower can refuse a result older than what it needs.
    """

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.started = time.time()
        self.generations: dict[str, int] | None = None


LOCK_GRACE_S = 5  # a lock outlives the request budget by this much, then expires
_flights: dict[str, Flight] = {}
_flights_lock = threading.Lock()


def join(key: str) -> tuple[Flight, bool]:
    """The flight of ``key`` and whether the caller leads it (it did not exist)."""
    with _flights_lock:
        flight = _flights.get(key)
        if flight is not None:
            return flight, False
        flight = _flights[key] = Flight()
        return flight, True


def lead(key: str) -> Flight | None:
    """Start a flight of ``key`` only if none runs; None otherwise."""
    flight, leader = join(key)
    return flight if leader else None


def land(key: str, flight: Flight, result: Any) -> None:
    """Publish the leader's result and end the flight; waiting threads wake up."""
    flight.result = result
    flight.done.set()
    with _flights_lock:
        if _flights.get(key) is flight:
            del _flights[key]


def wait(flight: Flight) -> Any:
    """The leader's result, or None if it took longer than the request budget."""
    if flight.done.wait(settings.REQUEST_TIMEOUT / 1000):
        return flight.result
    return None


def try_lock(key: str, read_ahead: Sequence[str] = ()) -> str | None:
    """A cluster-wide lock token for ``key``, or None if another process holds it.

    ``read_ahead``: keys the computation will read, fetched in the same round
    trip (into the shared cache's read-ahead, when one is open). Without Redis
    the in-process single-flight is all there is: proceed.
    """
    token = uuid.uuid4().hex
    try:
        ttl = settings.REQUEST_TIMEOUT / 1000 + LOCK_GRACE_S
        added, _ = shared_cache.add_and_get_many(lock_key(key), token, ttl, read_ahead)
        return token if added else None
    except SharedCacheUnavailable:
        return token


def unlock(key: str, token: str) -> None:
    """Release the lock if it is still ours (it may have expired and been retaken).

    Compare-and-delete in one call; sent with the request's other writes when
    they are deferred.
    """
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.release(lock_key(key), token)


def _locked_elsewhere(key: str) -> bool:
    try:
        with shared_cache.reading_through():
            return bool(shared_cache.get_many([lock_key(key)]))
    except SharedCacheUnavailable:
        return False


def wait_for_other_process(key: str, look: Callable[[], Any | None]) -> Any | None:
    """Poll with ``look`` for the result another process is computing.

    Returns what ``look`` found, or None when the other process let go of the
    lock without a usable result, Redis went away (``look`` raised
    ``SharedCacheUnavailable``), or the request budget ran out.
    """
    deadline = time.monotonic() + settings.REQUEST_TIMEOUT / 1000
    interval = LOCK_POLL_INTERVAL
    while time.monotonic() < deadline:
        time.sleep(interval)  # another process computes; no event crosses processes
        interval = min(interval * 1.5, LOCK_POLL_MAX_INTERVAL)
        try:
            found = look()
            if found is not None:
                return found
            if not _locked_elsewhere(key):
                return look()  # it may have stored just before letting go
        except SharedCacheUnavailable:
            return None
    return None
