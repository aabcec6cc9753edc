"""Which Redis the cache uses, worked out from the environment's variables.

One of three shapes, never two at once (a typo in one must not be hidden by
the other): one server (``REDIS_URL``), a primary found through Sentinel
(``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``), or a Redis Cluster
(``REDIS_CLUSTER_NODES``). Nothing set: the in-process cache (embedded mode
only; production refuses it).

Under Sentinel every cache command goes to the primary, reads included: a
replica may lag, and a tag generation read from one could be older than a
bump that has already returned (read-your-writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured

RedisMode = Literal["none", "single", "sentinel", "cluster"]


@dataclass(frozen=True)
class RedisSettings:
    """The cache's Redis, as the environment gives it (see ``docs/settings.md``)."""

    url: str = ""
    sentinels: tuple[str, ...] = ()
    sentinel_master: str = ""
    sentinel_password: str = ""
    cluster_nodes: tuple[str, ...] = ()
    password: str = ""
    db: int = 0

    @property
    def mode(self) -> RedisMode:
        """Which shape is configured; raises ``ImproperlyConfigured`` for more than one."""
        given = [
            name
            for name, value in (
                ("REDIS_URL", self.url),
                ("REDIS_SENTINELS", self.sentinels),
                ("REDIS_CLUSTER_NODES", self.cluster_nodes),
            )
            if value
        ]
        if len(given) > 1:
            names = ", ".join(given)
            raise ImproperlyConfigured(f"Set only one of {names}: they name different setups.")
        if self.sentinels and not self.sentinel_master:
            raise ImproperlyConfigured("Set REDIS_SENTINEL_MASTER: the name the sentinels monitor.")
        if self.url:
            return "single"
        if self.sentinels:
            return "sentinel"
        if self.cluster_nodes:
            return "cluster"
        return "none"


def host_port(address: str, variable: str) -> tuple[str, int]:
    """``"host:port"`` as a pair; ``ImproperlyConfigured`` naming ``variable`` if malformed."""
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"{variable}: {address!r} is not host:port.")
    return host.strip("[]"), int(port)


def cache_location_and_options(
    redis: RedisSettings, connect_timeout: float, socket_timeout: float
) -> tuple[str, dict[str, Any]]:
    """django-redis's ``LOCATION`` and ``OPTIONS`` for the mode (timeouts in seconds).

    Single: ``REDIS_URL`` as it is. Sentinel: ``redis://<master>/<db>`` through
    django-redis's ``SentinelConnectionFactory``, with the plain client (the
    primary only). Cluster: the nodes, through ``caching.redis_clients``.
    """
    mode = redis.mode
    # Short timeouts: a dead Redis must cost milliseconds, not seconds.
    timeouts = {"socket_connect_timeout": connect_timeout, "socket_timeout": socket_timeout}
    options: dict[str, Any] = {
        "SOCKET_CONNECT_TIMEOUT": connect_timeout,
        "SOCKET_TIMEOUT": socket_timeout,
    }
    if redis.password and mode != "single":
        options["PASSWORD"] = redis.password
    if mode == "single":
        return redis.url, options | {"CLIENT_CLASS": "django_redis.client.DefaultClient"}
    if mode == "sentinel":
        sentinels = [host_port(a, "REDIS_SENTINELS") for a in redis.sentinels]
        options |= {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": sentinels,
        }
        # The sentinels get the same short timeouts (and their own password).
        options["SENTINEL_KWARGS"] = timeouts | (
            {"password": redis.sentinel_password} if redis.sentinel_password else {}
        )
        return f"redis://{redis.sentinel_master}/{redis.db}", options
    if mode == "cluster":
        nodes = [host_port(a, "REDIS_CLUSTER_NODES") for a in redis.cluster_nodes]
        options |= {"CLIENT_CLASS": "caching.redis_clients.ClusterClient"}
        return ",".join(f"redis://{host}:{port}" for host, port in nodes), options
    raise ImproperlyConfigured("No Redis is configured.")
