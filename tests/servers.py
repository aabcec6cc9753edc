"""Servers the tests start themselves on free ports, so shared services are never stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from bench.proxy import Proxy
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _accepts(port: int) -> bool:
    """Whether something accepts connections on ``port`` (of 127.0.0.1) now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throwaway redis-server that can be stopped and started again on the same port."""

    def __init__(self, port: int | None = None, *args: str) -> None:
        self.port = port or free_port()
        self.args = args  # more redis-server options: "--replicaof", "127.0.0.1", "6379"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, timeout=10, interval=0.02, message="redis-server did not start")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "redis-server exited"
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stored_keys(self) -> list[bytes]:
        return self.client().keys("*")

    def commands_during(self, action: Callable[[], object]) -> dict[str, int]:
        """The commands (by name: ``cmdstat_mget``) this server ran while ``action()`` ran."""
        client = self.client()
        before = _command_calls(client)  # (connects first: its handshake is counted before)
        action()
        after = _command_calls(client)
        return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


class SentinelSet:
    """A primary, its replica and three sentinels watching them as ``cache``, on free ports.

    Debian's ``redis-server``; each sentinel rewrites its own config file, so
    they live in a temporary directory, removed by ``close``.
    """

    MASTER = "cache"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sentinels-"))
        # (Redis 7 waits 5 s for more replicas; a replica writes what it loads to --dir)
        fast_sync = ("--repl-diskless-sync-delay", "0", "--dir", str(self.dir))
        self.primary = RedisServer(None, *fast_sync)
        self.replica = RedisServer(
            None, *fast_sync, "--replicaof", "127.0.0.1", str(self.primary.port)
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []

    @property
    def addresses(self) -> str:
        """``REDIS_SENTINELS``: the sentinels, ``host:port,...``."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], decode_responses=True)

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 2000\n"
                f"sentinel failover-timeout {self.MASTER} 10000\n"
            )
            self.sentinels.append(subprocess.Popen(
                [shutil.which("redis-server"), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        wait_until(self._ready, timeout=30, interval=0.1, message="the sentinels did not settle")

    def _ready(self) -> bool:
        """Every sentinel knows the replica and the two other sentinels (a failover needs both)."""
        try:
            return (
                all(
                    len(self.sentinel(i).sentinel_slaves(self.MASTER)) == 1
                    and len(self.sentinel(i).sentinel_sentinels(self.MASTER)) == 2
                    for i in range(len(self.sentinel_ports))
                )
                and self.replica.client().info("replication")["master_link_status"] == "up"
            )
        except redis.ConnectionError:
            return False

    def master_port(self) -> int:
        """The primary's port, as the first sentinel sees it now."""
        return int(self.sentinel().sentinel_get_master_addr_by_name(self.MASTER)[1])

    def failover(self) -> None:
        """``SENTINEL FAILOVER``, then wait until the replica is the primary everyone names."""
        old = self.master_port()
        new = self.replica.port if old == self.primary.port else self.primary.port
        self.sentinel().execute_command("SENTINEL", "FAILOVER", self.MASTER)

        def switched() -> bool:
            role = redis.Redis(port=new).info("replication")["role"]
            return role == "master" and all(
                int(self.sentinel(i).sentinel_get_master_addr_by_name(self.MASTER)[1]) == new
                for i in range(len(self.sentinel_ports))
            )

        wait_until(switched, timeout=30, interval=0.1, message="the failover did not finish")

    def close(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait(10)
        self.replica.stop()
        self.primary.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (10,000 above it) is free and below 65,536 too."""
    while True:
        port = free_port()
        if port + 10_000 < 65_536 and not _accepts(port + 10_000):
            return port


class RedisCluster:
    """A Redis Cluster of three masters and three replicas on free ports (``redis-cli --cluster``).

    Each node runs in cluster mode with its node file in a private temporary
    directory, removed by ``close``.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self.nodes: list[RedisServer] = []
        for _ in range(6):
            port = _free_cluster_port()
            self.nodes.append(RedisServer(
                port, "--cluster-enabled", "yes", "--cluster-config-file",
                str(self.dir / f"nodes-{port}.conf"), "--cluster-node-timeout", "2000",
                "--dir", str(self.dir), "--repl-diskless-sync-delay", "0",
            ))  # fmt: skip

    @property
    def addresses(self) -> str:
        """``REDIS_CLUSTER_NODES``: every node, ``host:port,...``."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [shutil.which("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_until(self._ready, timeout=60, interval=0.1, message="the cluster did not settle")

    def _ready(self) -> bool:
        return all(
            node.client().cluster("info")["cluster_state"] == "ok" and len(self.masters(node)) == 3
            for node in self.nodes
        )

    def masters(self, node: RedisServer | None = None) -> list[RedisServer]:
        """The nodes that are masters now (as ``node``, or the first node, sees it)."""
        view = (node or self.nodes[0]).client().cluster("nodes")
        ports = {int(address.split(":")[1].split("@")[0]) for address, info in view.items()
                 if "master" in info["flags"] and "fail" not in info["flags"]}  # fmt: skip
        return [n for n in self.nodes if n.port in ports]

    def replica_of(self, master: RedisServer) -> RedisServer:
        """A replica of ``master``."""
        for node in self.nodes:
            info = node.client().info("replication")
            if info["role"] == "slave" and info["master_port"] == master.port:
                return node
        raise LookupError(f"no replica of {master.port}")

    def failover(self, master: RedisServer) -> RedisServer:
        """``CLUSTER FAILOVER`` on a replica of ``master``; the new master once all agree."""
        replica = self.replica_of(master)
        replica.client().execute_command("CLUSTER", "FAILOVER")
        wait_until(lambda: all(replica in self.masters(n) and master not in self.masters(n)
                               for n in self.nodes) and self._ready(),
                   timeout=30, interval=0.1, message="the failover did not finish")  # fmt: skip
        return replica

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: row["calls"] for name, row in stats.items() if name != "cmdstat_info"}


class MongoServer:
    """A throwaway secantusdb (a MongoDB-compatible server) in a temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="storefront-mongodb-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/storefront"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "secantusd-py"), "--host", "127.0.0.1",
             "--port", str(self.port), "--storage-path", str(Path(self.workdir) / "data"),
             "--log-level", "WARNING", "--cache-size", "256M"],
            cwd=self.workdir, stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_until(self._listening, timeout=60, interval=0.1, message="secantusdb did not start")

    def _listening(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "secantusdb exited"
        return _accepts(self.port)

    def stop(self) -> None:
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def storefront_url() -> dict[str, str]:
    """The environment that points a subprocess at the tests' storefront database, if separate."""
    from django.conf import settings

    if not settings.STOREFRONT_ON_MONGODB:
        return {}
    base = settings.STOREFRONT_DATABASE_URL.rsplit("/", 1)[0]
    return {"STOREFRONT_DATABASE_URL": f"{base}/{settings.DATABASES['storefront']['NAME']}"}


@contextlib.contextmanager
def gunicorn(
    database: str,
    workers: int = 2,
    request_line_limit: int = 8190,
    output: Path | None = None,
    **env: str,
) -> Iterator[str]:
    """The application under gunicorn on ``database`` and the suite's Redis; yields its URL.

    ``output``: a directory for its ``stdout`` and ``stderr`` (else they are the suite's).
    """
    port = free_port()
    streams = {}
    if output is not None:
        streams = {
            "stdout": (output / "stdout").open("wb"),
            "stderr": (output / "stderr").open("wb"),
        }
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "4", "--log-level", "warning",
         "--limit-request-line", str(request_line_limit)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_LEVEL": "WARNING", "WEB_ACCESS_LOG": "",
             "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}?application_name=test-gunicorn",
             **storefront_url(), **env},
        start_new_session=True, **streams,
    )  # fmt: skip
    for stream in streams.values():
        stream.close()  # the server has its own copy
    base = f"http://127.0.0.1:{port}"

    def live() -> bool:
        assert server.poll() is None, "gunicorn exited"
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=5):
                return True
        except OSError:
            return False

    try:
        wait_until(live, timeout=60, interval=0.1, message="gunicorn did not start")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):  # (it may have exited on its own)
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


class Varnish:
    """The project's edge (``scripts/edge``: Varnish with the shipped VCL) on ``port``."""

    def __init__(self, backend: str, port: int, secret: str) -> None:
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.workdir = tempfile.mkdtemp(prefix="edge-")
        self.env = {**os.environ, "EDGE_BACKEND": backend, "EDGE_PORT": str(port),
                    "EDGE_PURGE_SECRET": secret, "EDGE_WORKDIR": self.workdir,
                    "EDGE_MEMORY": "32m"}  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ROOT / "scripts" / "edge")], cwd=ROOT, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_until(self._listening, timeout=30, interval=0.1, message="varnishd did not start")

    def _listening(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "varnishd exited"
        return _accepts(self.port)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # (it may have exited on its own)
                os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# A TCP proxy that can freeze (connections stay open, nothing passes) and close
# (every connection cut), as a server that stopped answering or went away looks
# to its clients: the benchmark's proxy (bench/proxy.py), which also adds
# latency and counts round trips. One implementation for both.
FreezableProxy = Proxy


class StreamingPair:
    """A private PostgreSQL primary and its streaming replica (``pg_basebackup -R``).

    Debian's binaries, run as the ``postgres`` user (initdb refuses root), in a
    temporary directory, on free ports; removed by ``close``.
    """

    def __init__(self, database: str = "pair", *, logical: bool = False) -> None:
        self.logical = logical  # wal_level=logical: a change listener can follow the primary
        versions = sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))
        self.bin = versions[-1] / "bin"
        self.dir = Path(tempfile.mkdtemp(prefix="pgpair-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.database = database
        self.ports = {"primary": free_port(), "replica": free_port()}

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True,
                       capture_output=True, cwd=self.dir)  # fmt: skip

    def url(self, which: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.ports[which]}/{self.database}"

    def _settings(self, which: str) -> str:
        return (
            f"listen_addresses = '127.0.0.1'\nport = {self.ports[which]}\n"
            f"unix_socket_directories = '{self.dir}'\nfsync = off\nfull_page_writes = off\n"
            + ("wal_level = logical\n" if self.logical else "")
        )

    def _ctl(self, which: str, action: str, *extra: str) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / which), "-l",
                          str(self.dir / f"{which}.log"), "-w", action, *extra)  # fmt: skip

    def start_primary(self) -> None:
        primary = self.dir / "primary"
        self._as_postgres(str(self.bin / "initdb"), "-D", str(primary), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8")  # fmt: skip
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(self._settings("primary"))
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._ctl("primary", "start")
        self._as_postgres(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p",
                          str(self.ports["primary"]), "-U", "postgres", self.database)  # fmt: skip

    def start_replica(self) -> None:
        """A base backup of the primary as a standby (first call), then start it."""
        replica = self.dir / "replica"
        if not replica.exists():
            self._as_postgres(str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                              str(self.ports["primary"]), "-U", "postgres", "-D", str(replica),
                              "-R", "-X", "stream")  # fmt: skip
            with open(replica / "postgresql.conf", "a") as conf:
                conf.write(self._settings("replica"))
        self._ctl("replica", "start")

    def stop_primary(self) -> None:
        self._ctl("primary", "stop", "-m", "fast")

    def stop_replica(self) -> None:
        self._ctl("replica", "stop", "-m", "immediate")

    def sql(self, which: str, statement: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(which), autocommit=True) as conn:
            return conn.execute(statement).fetchall()

    def close(self) -> None:
        for which in ("replica", "primary"):
            if (self.dir / which / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._ctl(which, "stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
