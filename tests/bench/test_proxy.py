"""The benchmark's proxy (``bench/proxy.py``) against the real PostgreSQL and Redis.

It counts round trips (a client's turns) and holds the server's replies for
its delay; what the network rows of the benchmark report rests on both. The
counts are checked at no delay and at a delay that separates every reply from
what the client sends next, and must be the same.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from bench.proxy import Proxy
from tests.servers import FreezableProxy

DELAYS = [0.0, 1.0]  # ms


def _postgres() -> tuple[str, int]:
    db = connection.settings_dict
    return db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)


def _pg(proxy: Proxy) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=proxy.port, user=connection.settings_dict["USER"] or "postgres",
        dbname="postgres", autocommit=True, sslmode="disable",
    )  # fmt: skip


def _redis_address() -> tuple[tuple[str, int], int]:
    url = urlsplit(settings.REDIS_URL)
    return (url.hostname or "127.0.0.1", url.port or 6379), int(url.path.strip("/") or 0)


def _redis(proxy: Proxy) -> redis.Redis:
    return redis.Redis(port=proxy.port, db=_redis_address()[1])


@pytest.fixture(params=DELAYS, ids=lambda d: f"{d}ms")
def pg_proxy(request):
    with Proxy(_postgres(), delay_ms=request.param) as proxy:
        yield proxy


@pytest.fixture(params=DELAYS, ids=lambda d: f"{d}ms")
def redis_proxy(request):
    with Proxy(_redis_address()[0], delay_ms=request.param) as proxy:
        yield proxy


def test_one_select_on_an_open_connection_is_one_round_trip(pg_proxy):
    with _pg(pg_proxy) as conn:
        opened = pg_proxy.reset()
        assert opened.connections == 1 and opened.round_trips >= 1  # startup, authentication
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert pg_proxy.reset().round_trips == 1
        for _ in range(3):
            conn.execute("SELECT 1").fetchone()
        assert pg_proxy.counts().round_trips == 3


def test_a_pipeline_of_five_queries_and_one_sync_is_one_round_trip(pg_proxy):
    with _pg(pg_proxy) as conn:
        pg_proxy.reset()
        with conn.pipeline():  # the block's end sends the one Sync and reads everything
            cursors = [conn.execute("SELECT %s::int", [i]) for i in range(5)]
        assert [c.fetchone()[0] for c in cursors] == [0, 1, 2, 3, 4]
        assert pg_proxy.reset().round_trips == 1
        # A sync inside the block waits for its results; the end syncs again: two.
        with conn.pipeline() as pipeline:
            cursors = [conn.execute("SELECT %s::int", [i]) for i in range(5)]
            pipeline.sync()
        assert pg_proxy.reset().round_trips == 2
        # A transaction: BEGIN, the query, COMMIT, each waited for.
        with conn.transaction():
            conn.execute("SELECT 1")
        assert pg_proxy.reset().round_trips == 3


def test_a_redis_get_and_a_pipeline_of_ten_are_one_round_trip_each(redis_proxy):
    client = _redis(redis_proxy)
    client.ping()  # connected
    redis_proxy.reset()
    client.get("bench-proxy:missing")
    assert redis_proxy.reset().round_trips == 1
    pipeline = client.pipeline(transaction=False)
    for i in range(10):
        pipeline.set(f"bench-proxy:{i}", i)
    pipeline.execute()
    assert redis_proxy.reset().round_trips == 1
    assert client.mget([f"bench-proxy:{i}" for i in range(10)])[9] == b"9"
    assert redis_proxy.reset().round_trips == 1
    client.close()


def test_a_long_reply_in_many_chunks_is_one_round_trip_and_arrives_whole(redis_proxy):
    client = _redis(redis_proxy)
    value = bytes(range(256)) * 8192  # 2 MiB: many chunks
    client.set("bench-proxy:long", value)
    redis_proxy.reset()
    assert client.get("bench-proxy:long") == value
    counts = redis_proxy.reset()
    assert counts.round_trips == 1 and counts.replies > 1
    assert counts.bytes_to_client > len(value)
    client.close()


def test_concurrent_connections_are_each_counted():
    with Proxy(_redis_address()[0], delay_ms=0.5) as proxy:
        clients = [_redis(proxy) for _ in range(16)]
        for client in clients:
            client.ping()
        proxy.reset()

        def gets(client: redis.Redis) -> None:
            for i in range(25):
                client.get(f"bench-proxy:{i}")

        threads = [threading.Thread(target=gets, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert proxy.counts().round_trips == 16 * 25
        assert proxy.open_connections() == 16
        for client in clients:
            client.close()


def test_each_reply_is_held_for_the_delay():
    with Proxy(_redis_address()[0], delay_ms=5) as proxy:
        client = _redis(proxy)
        client.ping()
        for _ in range(5):
            started = time.perf_counter()
            client.get("bench-proxy:missing")
            assert time.perf_counter() - started >= 0.005
        proxy.delay_ms = 0  # changed with the connection open
        client.get("bench-proxy:missing")
        client.close()
    with Proxy(_postgres(), delay_ms=5) as proxy, _pg(proxy) as conn:
        started = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        assert time.perf_counter() - started >= 0.005


def test_freeze_holds_everything_and_cut_drops_the_connections():
    proxy = FreezableProxy(_redis_address()[0])
    assert FreezableProxy is Proxy  # the tests' proxy is the benchmark's
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"
            proxy.freeze()
            sock.sendall(b"PING\r\n")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(100)
            proxy.thaw()  # what was held goes on
            sock.settimeout(2)
            assert sock.recv(100) == b"+PONG\r\n"
            proxy.cut()
            assert sock.recv(100) == b""  # shut down
        assert redis.Redis(port=proxy.port).ping()  # still accepting
    finally:
        proxy.close()
        proxy.close()  # again: nothing left to do
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
