"""Process-wide state, in one place: the thread pools and every resettable global.

Each process (a gunicorn worker, a Celery worker) has:

- four thread pools, each created on first use under a lock (so after a
  fork, in each worker), sized here: the section runner's, the bounded
  database lookups', the cache's background refreshes' and the re-warm
  scheduler's;
- state that lives only as long as the process and that every module holding
  some registers here with a reset (``register_state``), so that a test, or a
  process that knows better, can forget all of it at once: the in-process
  cache (L1), breakers and back-offs (Redis, replicas, MongoDB), counts not
  yet flushed, tag bumps made while Redis was away, subjects recently seen.

Registries filled once at start-up (sections, warmers, verifiers, panels,
invalidation listeners) are configuration, not state, and stay with their
modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class LazyPool:
    """A thread pool created on first use, once, under a lock."""

    def __init__(self, name: str, size: Callable[[], int]) -> None:
        self.name = name
        self._size = size
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        """The pool (created now if this is the first use in this process)."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self._size(), thread_name_prefix=self.name
                    )
        return self._pool

    @property
    def started(self) -> ThreadPoolExecutor | None:
        """The pool if it exists, without creating it."""
        return self._pool


def _setting(name: str) -> Callable[[], int]:
    def size() -> int:
        from django.conf import settings

        return int(getattr(settings, name))

    return size


BOUNDED_DB_THREADS = 4  # lookups that gate every request; bounds how many a frozen database holds
REFRESH_THREADS = 2  # stale-while-revalidate refreshes running at once
REWARM_SCHEDULER_THREADS = 1  # debounced re-warm scheduling: order matters, one is enough

section_pool = LazyPool("section", _setting("AGGREGATION_MAX_WORKERS"))
bounded_db_pool = LazyPool("bounded-db", lambda: BOUNDED_DB_THREADS)
refresh_pool = LazyPool("cache-refresh", lambda: REFRESH_THREADS)
rewarm_scheduler = LazyPool("rewarm-scheduler", lambda: REWARM_SCHEDULER_THREADS)

_resets: dict[str, Callable[[], None]] = {}


def register_state(name: str, reset: Callable[[], None]) -> None:
    """Declare process-wide state ``name`` and how to forget it (at import of its module)."""
    _resets[name] = reset


def process_state() -> list[str]:
    """The names of every piece of process-wide state, for a reader (and the cache page)."""
    return sorted(_resets)


def reset_process_state() -> None:
    """Forget every piece of process-wide state (tests, between one test and the next)."""
    for reset in _resets.values():
        reset()
