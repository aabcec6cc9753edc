"""The cache engine on the real Redis: layers, generations, races, single-flight."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
from django_redis import get_redis_connection

from caching import flight
from caching.engine import CachePolicy, Computed, get_or_compute
from caching.keys import lock_key
from caching.local import clear_local
from caching.shared import shared_cache
from caching.tags import bump, invalidate_on_commit, read_generations
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
POLICY = CachePolicy("test", soft_ttl=60, hard_ttl=120)
SWR = CachePolicy("test", soft_ttl=60, hard_ttl=120, stale_while_revalidate=True)


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def compute(self, value="v", gate: threading.Event | None = None):
        """A computation; with ``gate``, it runs until the test sets the event."""

        def run() -> Computed:
            with self.lock:
                self.calls += 1
                result = Computed(f"{value}{self.calls}")
            if gate is not None:
                assert gate.wait(60), "the test never let the computation finish"
            return result

        return run


def _run_concurrently(calls: int, request) -> tuple[list, Callable[[], None]]:
    """Start ``calls`` threads running ``request()``; their results, and a join."""
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(request())) for _ in range(calls)]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a caller never returned"

    return results, join


def test_miss_then_hit_from_l1_and_l2():
    counter = Counter()
    first = get_or_compute("t:a", counter.compute(), tags=["x"], policy=POLICY)
    second = get_or_compute("t:a", counter.compute(), tags=["x"], policy=POLICY)
    assert (first.from_cache, second.from_cache, second.layer) == (False, True, "l1")
    clear_local()  # as another process would see it
    third = get_or_compute("t:a", counter.compute(), tags=["x"], policy=POLICY)
    assert (third.value, third.layer, counter.calls) == ("v1", "l2", 1)


def test_a_bump_makes_every_layer_stale():
    counter = Counter()
    get_or_compute("t:b", counter.compute(), tags=["x", "y"], policy=POLICY)
    bump(["y"])
    result = get_or_compute("t:b", counter.compute(), tags=["x", "y"], policy=POLICY)
    assert (result.from_cache, result.value, counter.calls) == (False, "v2", 2)


def test_a_computation_that_raced_an_invalidation_is_not_stored_as_fresh():
    counter = Counter()

    def compute_while_data_changes() -> Computed:
        counter.calls += 1
        value = "old data"  # read before the concurrent write commits...
        bump(["x"])  # ...which invalidates while we are still computing
        return Computed(value)

    get_or_compute("t:race", compute_while_data_changes, tags=["x"], policy=POLICY)
    after = get_or_compute("t:race", counter.compute("new"), tags=["x"], policy=POLICY)
    assert after.from_cache is False
    assert after.value == "new2"


def test_fifty_concurrent_misses_compute_once_in_a_process(flight_followers, settings):
    settings.REQUEST_TIMEOUT = 60_000  # followers outwait a slow machine
    counter = Counter()
    release = threading.Event()
    results, join = _run_concurrently(
        50,
        lambda: get_or_compute("t:cold", counter.compute(gate=release), tags=["x"], policy=POLICY),
    )
    try:
        # The first caller computes, and holds on until every other one waits for it.
        wait_until(
            lambda: counter.calls == 1 and flight_followers.count == 49,
            message="the callers did not all join the one computation",
        )
    finally:
        release.set()
    join()
    assert counter.calls == 1
    assert len(results) == 50 and {r.value for r in results} == {"v1"}
    assert sorted(r.layer for r in results) == ["flight"] * 49 + ["none"]  # one computed


CROSS_PROCESS_SCRIPT = """
import sys, threading
import django
django.setup()
from django_redis import get_redis_connection
from caching import flight
from caching.engine import CachePolicy, Computed, get_or_compute
from tests.waiting import wait_until
redis = get_redis_connection("default")
def counted(original):
    def waiting(*args):
        redis.incr("test:waiting")  # a caller waits for another's computation
        return original(*args)
    return waiting
flight.wait = counted(flight.wait)
flight.wait_for_other_process = counted(flight.wait_for_other_process)
def compute():
    redis.incr("test:computations")
    wait_until(lambda: redis.exists("test:release"), timeout=60, message="never released")
    return Computed("shared")
values = []
def request():
    policy = CachePolicy("test", soft_ttl=60, hard_ttl=60)
    values.append(get_or_compute("t:cross", compute, tags=["x"], policy=policy).value)
threads = [threading.Thread(target=request) for _ in range(int(sys.argv[1]))]
redis.incr("test:ready")
wait_until(lambda: redis.exists("test:go"), timeout=120, message="never told to go")
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(values))
"""


def test_concurrent_misses_across_processes_compute_once():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REQUEST_TIMEOUT": "60000",  # waiters and the lock outlast a slow machine
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CROSS_PROCESS_SCRIPT, "10"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    redis = get_redis_connection("default")

    def count(key: str) -> int:
        return int(redis.get(key) or 0)

    try:
        wait_until(lambda: count("test:ready") == len(processes), timeout=120,
                   message="the processes did not start")  # fmt: skip
        redis.set("test:go", 1)  # every process is set up: all callers start together
        # One caller computes, holding the cluster's lock, until the other 49 wait for it:
        # 9 in its process, and in each other process one polling Redis and 9 behind it.
        wait_until(lambda: count("test:computations") == 1 and count("test:waiting") == 49,
                   timeout=60, message="the callers did not all wait for one computation")  # fmt: skip
        assert redis.exists(shared_cache.cache.make_key(lock_key("t:cross")))
    finally:
        redis.set("test:go", 1)  # (if the test failed before: let every process finish)
        redis.set("test:release", 1)
        outputs = [p.communicate(timeout=120)[0].split() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert sum(len(o) for o in outputs) == 50
    assert {v for o in outputs for v in o} == {"shared"}
    assert count("test:computations") == 1


def test_soft_expiry_serves_stale_once_and_refreshes_in_the_background():
    counter = Counter()
    release = threading.Event()

    def slow_refresh() -> Computed:
        release.wait(10)  # the refresh runs until the test lets it finish
        return counter.compute()()

    with time_machine.travel(time.time(), tick=True) as clock:
        get_or_compute("t:swr", counter.compute(), policy=SWR)
        clock.shift(61)  # past the soft TTL, within the hard one
        stale = get_or_compute("t:swr", slow_refresh, policy=SWR)
        also_stale = get_or_compute("t:swr", slow_refresh, policy=SWR)
        assert stale.stale and stale.value == "v1"
        assert also_stale.stale and also_stale.value == "v1"  # the one refresh still runs
        release.set()
        fresh = wait_until(
            lambda: (
                (r := get_or_compute("t:swr", counter.compute(), policy=SWR)).stale is False and r
            )
        )
    assert fresh.value == "v2"
    assert counter.calls == 2


def test_after_an_invalidation_no_request_gets_the_old_copy(flight_followers, settings):
    settings.REQUEST_TIMEOUT = 60_000  # followers outwait a slow machine
    counter = Counter()
    get_or_compute("t:inv", counter.compute(), tags=["x"], policy=SWR)
    bump(["x"])
    release = threading.Event()
    results, join = _run_concurrently(
        5, lambda: get_or_compute("t:inv", counter.compute(gate=release), tags=["x"], policy=SWR)
    )
    try:
        # None is served the invalidated copy: one recomputes, the other four wait for it.
        wait_until(
            lambda: counter.calls == 2 and flight_followers.count == 4,
            message="the callers did not all wait for the one recomputation",
        )
    finally:
        release.set()
    join()
    assert {(r.value, r.stale) for r in results} == {("v2", False)}
    assert counter.calls == 2  # the five collapsed into one recomputation
    assert sorted(r.layer for r in results) == ["flight"] * 4 + ["none"]


def test_stale_if_error_serves_the_last_copy_then_fails_without_one():
    policy = CachePolicy("test", soft_ttl=60, hard_ttl=60, stale_if_error=600)
    get_or_compute("t:err", lambda: Computed("good"), tags=["x"], policy=policy)
    bump(["x"])
    result = get_or_compute("t:err", lambda: Computed(None, ok=False), tags=["x"], policy=policy)
    assert (result.value, result.stale, result.ok) == ("good", True, True)
    nothing = get_or_compute("t:none", lambda: Computed("bad", ok=False), policy=policy)
    assert (nothing.ok, nothing.from_cache) == (False, False)


def test_content_expiry_caps_every_ttl():
    policy = CachePolicy("test", soft_ttl=60, hard_ttl=120, stale_if_error=600)
    result = get_or_compute(
        "t:exp", lambda: Computed("x", expires_at=time.time() + 5), policy=policy
    )
    assert result.ttl <= 5
    ttl = get_redis_connection("default").ttl(shared_cache.cache.make_key("t:exp"))
    assert 0 < ttl <= 5


def test_bumps_inside_a_transaction_wait_for_commit(transactional_db):
    from django.db import transaction

    before, _ = read_generations(["x"])
    with transaction.atomic():
        invalidate_on_commit(["x"])
        invalidate_on_commit(["x"])
        assert read_generations(["x"])[0] == before
    after, _ = read_generations(["x"])
    assert after["x"] != before["x"]
    with pytest.raises(RuntimeError), transaction.atomic():
        invalidate_on_commit(["x"])
        raise RuntimeError
    assert read_generations(["x"])[0] == after


def test_fresh_never_takes_a_copy_older_than_the_request(monkeypatch):
    get_or_compute("t:fresh", lambda: Computed("old"), tags=["x"], policy=POLICY)
    redis = get_redis_connection("default")
    lock = shared_cache.cache.make_key(lock_key("t:fresh"))
    redis.set(lock, "another process")  # as if another process were computing it
    polling = threading.Event()
    original = flight.wait_for_other_process

    def observed(key, look):
        polling.set()
        return original(key, look)

    monkeypatch.setattr(flight, "wait_for_other_process", observed)
    results = []
    thread = threading.Thread(
        target=lambda: results.append(
            get_or_compute(
                "t:fresh", lambda: Computed("new"), tags=["x"], policy=POLICY, bypass=True
            )
        )
    )
    thread.start()
    assert polling.wait(10)  # it waits for the other process, with a copy in Redis...
    redis.delete(lock)  # ...which lets go without storing anything newer
    thread.join(10)
    assert results[0].value == "new" and results[0].from_cache is False
