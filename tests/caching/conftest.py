"""Fixtures of the cache tests: a Redis server of the test's own, to stop and restart."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from tests.servers import RedisServer


@pytest.fixture
def own_redis(settings):
    """The cache on a private redis-server (stopped afterwards), with a fast breaker."""
    server = RedisServer()
    server.start()
    default = settings.CACHES["default"]
    # Timeouts long enough that a busy machine does not look like an outage.
    options = {**default["OPTIONS"], "SOCKET_TIMEOUT": 2.0, "SOCKET_CONNECT_TIMEOUT": 2.0}
    settings.CACHES = {"default": {**default, "LOCATION": server.url, "OPTIONS": options}}
    settings.CACHE_REDIS_RETRY_AFTER = 0.2
    try:
        yield server
    finally:
        server.stop()
        caches["default"].close()
