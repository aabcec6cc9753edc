"""django-redis on a Redis Cluster: redis-py's ``RedisCluster`` behind django-redis's client.

Selected by ``REDIS_CLUSTER_NODES`` (``config/redis.py``). Keys are placed in
cache shards by the ``KEY_FUNCTION`` (``caching.keys.sharded_key_function``),
so an entry and the copies of its tags' generations share one hash slot and a
hit is one ``MGET`` on one master.

What differs from the plain client:

- ``get_many`` reads keys of several slots as one ``MGET`` per slot, sent in
  one pipeline (redis-py writes to every master before reading any answer);
- ``incr_replicated`` (tag bumps) runs one pipeline per master, each ending in
  ``WAIT`` on that master's connection: ``WAIT`` covers only the writes of the
  connection it is sent on, so one ``WAIT`` for the whole cluster would prove
  nothing;
- the connection is a ``RedisCluster`` that follows ``MOVED``/``ASK`` and
  refreshes its slot map after a failover.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from typing import Any
from urllib.parse import urlparse

from django_redis.client.default import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .shared import INCR_OR_SEED, ReplicationShortfall

# One RedisCluster per set of nodes, for the process (thread-safe; it holds a
# pool per node and the slot map), as django-redis keeps one pool per URL:
# Django makes a cache client per thread, and a new RedisCluster would fetch
# the slot map and open new connections for each.
_clusters: dict[tuple[str, ...], RedisCluster] = {}
_clusters_lock = threading.Lock()


class ClusterClient(DefaultClient):
    """django-redis's client with a ``RedisCluster`` connection (``LOCATION``: the nodes)."""

    def connect(self, index: int = 0) -> Any:
        """The process's ``RedisCluster`` for the nodes in ``LOCATION`` (any finds the rest)."""
        key = tuple(self._server)
        with _clusters_lock:
            if key not in _clusters:
                nodes = [urlparse(url) for url in self._server]
                options = self._options
                _clusters[key] = RedisCluster(
                    startup_nodes=[ClusterNode(node.hostname, node.port) for node in nodes],
                    password=options.get("PASSWORD"),
                    socket_connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT"),
                    socket_timeout=options.get("SOCKET_TIMEOUT"),
                )
            return _clusters[key]

    def disconnect(self, index: int = 0, client: Any = None) -> None:
        """Nothing: the connections belong to the process, as django-redis's pools do."""

    def get_many(self, keys: Any, version: int | None = None, client: Any = None) -> dict:
        """``MGET`` per hash slot, all in one pipeline; missing keys are absent."""
        if not keys:
            return {}
        client = client if client is not None else self.get_client(write=False)
        physical = {self.make_key(k, version=version): k for k in keys}
        try:
            values = client.mget_nonatomic(list(physical))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return {
            physical[key]: self.decode(value)
            for key, value in zip(physical, values, strict=True)
            if value is not None
        }

    def incr_replicated(
        self, keys: list[str], initial: int, replicas: int, timeout_ms: int
    ) -> None:
        """``SharedCache.incr_replicated`` on a cluster: a pipeline (and ``WAIT``) per master.

        After a failover the first try meets ``MOVED`` (the slot map is old): the
        map is refreshed and the bump tried once more. A counter incremented
        twice is harmless: a generation only has to change.
        """
        cluster: RedisCluster = self.get_client(write=True)
        full_keys = [str(self.make_key(key)) for key in keys]
        try:
            self._incr_per_master(cluster, full_keys, initial, replicas, timeout_ms)
        except (ResponseError, RedisConnectionError, RedisClusterException):
            with contextlib.suppress(RedisError, RedisClusterException):
                cluster.nodes_manager.initialize()
            self._incr_per_master(cluster, full_keys, initial, replicas, timeout_ms)

    @staticmethod
    def _incr_per_master(
        cluster: RedisCluster, full_keys: list[str], initial: int, replicas: int, timeout_ms: int
    ) -> None:
        by_node: dict[str, list[str]] = defaultdict(list)
        nodes: dict[str, ClusterNode] = {}
        for full in full_keys:
            node = cluster.get_node_from_key(full)
            by_node[node.name].append(full)
            nodes[node.name] = node
        for name, keys in by_node.items():
            pipe = cluster.get_redis_connection(nodes[name]).pipeline(transaction=False)
            for full in keys:
                pipe.eval(INCR_OR_SEED, 1, full, initial)
            if replicas:
                pipe.execute_command("WAIT", replicas, timeout_ms)
            acknowledged = pipe.execute()[-1]
            if replicas and acknowledged < replicas:
                raise ReplicationShortfall(f"{name}: {acknowledged} of {replicas} replicas")
