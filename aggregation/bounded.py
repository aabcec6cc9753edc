"""Database work on the request path with a client-side time limit.

``statement_timeout`` stops a slow query, but not a database that stopped
answering (frozen, a network partition): the query waits for a reply that
never comes. Lookups that gate every request (who the caller is, whose data
they may see) run here instead, on a small pool of threads, and the request
gets ``503 DB_CONNECTION_ERROR`` after ``QUERY_TIMEOUT`` whatever the database
does. A thread stuck on a frozen database is freed when the database answers
or the connection breaks; the pool bounds how many can be stuck at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from caching.process import bounded_db_pool

from .errors import DatabaseUnavailable

T = TypeVar("T")


def _in_thread(function: Callable[[], T]) -> T:
    close_old_connections()
    try:
        return function()
    finally:
        close_old_connections()


def within_query_timeout(function: Callable[[], T]) -> T:
    """``function()`` on its own connection, or ``DatabaseUnavailable`` after ``QUERY_TIMEOUT``.

    Exceptions ``function`` raises pass through; connection failures become
    ``DatabaseUnavailable`` too. Inside a transaction it runs inline: another
    connection would not see the transaction's rows.
    """
    if connection.in_atomic_block:
        try:
            return function()
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable() from exc
    future = bounded_db_pool.get().submit(_in_thread, function)
    try:
        return future.result(timeout=settings.QUERY_TIMEOUT / 1000)
    except FutureTimeout as exc:
        future.cancel()
        raise DatabaseUnavailable() from exc
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable() from exc
