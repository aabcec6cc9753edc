"""Django's PostgreSQL backend, with a pool that checks a connection without a round trip.

Django's pool with ``CONN_HEALTH_CHECKS`` asks the server before lending a
connection (an empty query): one round trip on every request that touches
the database, 0.3-1 ms deployed, for something that is almost never wrong.
A connection the server closed (a restart, ``pg_terminate_backend``, an idle
timeout) has its goodbye or an end-of-file waiting to be read, while a
healthy idle connection has nothing: so the check looks at the socket, and
only when something waits asks the server as before (and the pool replaces
the connection if it is gone). What no check can see without a round trip (a
network that silently dropped the connection) fails the first query, and
the section pipeline retries that once on a new connection
(``aggregation/pipeline.py``).
"""

from __future__ import annotations

import select
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base


def check_without_round_trip(conn: Any) -> None:
    """Raise if ``conn`` is closed; ask the server only if something waits to be read."""
    from psycopg import OperationalError
    from psycopg_pool import ConnectionPool

    if conn.closed or conn.broken:
        raise OperationalError("The connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):  # idle, yet the server said something: most likely goodbye
        ConnectionPool.check_connection(conn)


LIVE_CONNECTION_ATTEMPTS = 3


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's wrapper; its pool checks connections with ``check_without_round_trip``."""

    def ensure_live_connection(self) -> None:
        """A connection the server has answered on, for a retry after one was found dead.

        When the server ends connections (a restart, an operator), it ends the
        pool's idle ones too, and the goodbye of one just ended may not have
        reached its socket yet: so here, and only here, the server is asked.
        """
        from psycopg import OperationalError
        from psycopg_pool import ConnectionPool

        for _ in range(LIVE_CONNECTION_ATTEMPTS - 1):
            self.ensure_connection()
            try:
                ConnectionPool.check_connection(self.connection)
                return
            except OperationalError:
                self.close()  # the pool drops a broken connection given back
        self.ensure_connection()

    @property
    def pool(self) -> Any:
        """As Django's, with the check above in place of ``CONN_HEALTH_CHECKS``'s."""
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        wrapper: Any = self  # Django's private members, which its stubs do not declare
        pools: dict[str, Any] = wrapper._connection_pools
        if self.alias not in pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            from psycopg_pool import ConnectionPool

            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it properly later on
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,  # opened on first use, not at start-up
                configure=wrapper._configure_connection,
                check=check_without_round_trip,
                **({} if pool_options is True else pool_options),
            )
            pools.setdefault(self.alias, pool)  # the first thread wins
        return pools[self.alias]
