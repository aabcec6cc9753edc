"""The shared layer (Redis through django-redis) behind a circuit breaker.

A Redis that is down must cost milliseconds, not a socket timeout per request:
after a failure the breaker opens and every call fails fast with
``SharedCacheUnavailable`` for ``CACHE_REDIS_RETRY_AFTER_S`` seconds; then one call
is let through, and on success the breaker closes and the recovery hooks run
(replaying invalidations that could not be written while Redis was away).

Round trips. Redis is a network hop away (0.3-1 ms deployed), so one request's
calls are batched where the logic allows, on the calling thread only:

- ``read_ahead()``: while it is open, every value read (found or missing) is
  remembered and not read again, and ``add_and_get_many`` can read ahead what
  the computation will ask for. A computation then sees Redis as it was when it
  began (the generations it must store its result with), at no extra round trip.
  Polling for another process's result reads through it (``reading_through()``).
- ``deferred_writes()``: writes nobody waits on (``set``, ``set_each``,
  ``release``, ``zadd_trim``, ``hincrby_many``, ``hset_many``) are queued and sent in one
  pipeline when it closes, even if the block raised.
- ``batched()``: both at once, as a request handler opens them.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from prometheus_client import Counter

from .process import register_state

if TYPE_CHECKING:  # the embedded mode runs without redis-py
    from redis import Redis
    from redis.typing import EncodableT

logger = logging.getLogger(__name__)
T = TypeVar("T")

errors_total = Counter(
    "aggregation_shared_cache_errors_total", "Failed calls to the shared cache (Redis)."
)

try:  # the embedded mode runs on Django's in-process cache, without django-redis
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisClusterException, RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (
        ConnectionInterrupted, RedisError, RedisClusterException, OSError
    )  # fmt: skip
except ImportError:  # pragma: no cover
    CACHE_ERRORS = (OSError,)


_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# Increment a counter, creating it at ARGV[1] first if it is missing (atomic).
INCR_OR_SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


class ReplicationShortfall(OSError):  # (an OSError: one of CACHE_ERRORS, trips the breaker)
    """Fewer replicas than asked acknowledged a write (``WAIT``) in time: it may be lost."""


def _by_slot(redis: Any, keys: list[Any]) -> list[list[int]]:
    """Positions of ``keys`` grouped by hash slot on a cluster (one MGET each); one group else."""
    keyslot = getattr(redis, "keyslot", None)  # RedisCluster's; a plain Redis has none
    if keyslot is None:
        return [list(range(len(keys)))]
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(keyslot(key), []).append(position)
    return list(groups.values())


def _decoded(value: bytes | str) -> str:
    """A Redis reply as text (django-redis clients answer bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class SharedCacheUnavailable(Exception):
    """The shared cache failed or its breaker is open; nothing was read or written."""


_MISSING = object()
Write = Callable[[Any, Any], object]  # (redis pipeline, django-redis client) -> ignored


class _Batching(threading.local):
    """The read-ahead (key -> value or ``_MISSING``) and queued writes, if open."""

    seen: dict[str, Any] | None = None
    writes: list[Write] | None = None


class _Batched:
    """``read_ahead()`` and ``deferred_writes()`` at once: a class, as it opens on every request."""

    __slots__ = ("_batching", "_flush", "_reads", "_writes")

    def __init__(self, batching: _Batching, flush: Callable[[list[Write] | None], None]) -> None:
        self._batching, self._flush = batching, flush

    def __enter__(self) -> None:
        batching = self._batching
        self._reads, self._writes = batching.seen is None, batching.writes is None
        if self._reads:
            batching.seen = {}
        if self._writes:
            batching.writes = []

    def __exit__(self, *exc_info: object) -> None:
        batching = self._batching
        try:
            if self._writes:
                writes, batching.writes = batching.writes, None
                self._flush(writes)
        finally:
            if self._reads:
                batching.seen = None


class SharedCache:
    """Thin, guarded access to one Django cache alias."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._was_down = False
        self._recovery_hooks: list[Callable[[], None]] = []
        self._batching = _Batching()

    @property
    def cache(self) -> BaseCache:
        return caches[self.alias]

    @property
    def available(self) -> bool:
        """False while the breaker is open."""
        return time.monotonic() >= self._down_until

    def reset_breaker(self) -> None:
        """Close the breaker: the next call tries Redis again."""
        with self._lock:
            self._down_until = 0.0
            self._was_down = False

    def on_recovery(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after the first successful call that follows an outage."""
        self._recovery_hooks.append(hook)

    def call(self, operation: Callable[[], T]) -> T:
        """Run one cache operation; raise ``SharedCacheUnavailable`` if it cannot."""
        if not self.available:
            raise SharedCacheUnavailable
        try:
            result = operation()
        except CACHE_ERRORS as exc:
            self._trip(exc)
            raise SharedCacheUnavailable from exc
        if self._was_down:
            self._recovered()
        return result

    def _trip(self, exc: BaseException) -> None:
        with self._lock:
            first = not self._was_down
            self._was_down = True
            self._down_until = time.monotonic() + settings.CACHE_REDIS_RETRY_AFTER_S
        errors_total.inc()
        if first:
            logger.warning("Shared cache unavailable (%s); serving without it", exc)

    def _recovered(self) -> None:
        with self._lock:
            if not self._was_down:
                return
            self._was_down = False
        logger.warning("Shared cache is back")
        for hook in self._recovery_hooks:
            try:
                hook()
            except SharedCacheUnavailable:
                return
            except Exception:
                logger.exception("Shared cache recovery hook failed")

    # --- operations ------------------------------------------------------------

    # --- batching (see the module docstring) ------------------------------------

    @contextlib.contextmanager
    def read_ahead(self) -> Iterator[None]:
        """Remember every value read on this thread until the block ends (nested: the outer's)."""
        if self._batching.seen is not None:
            yield
            return
        self._batching.seen = {}
        try:
            yield
        finally:
            self._batching.seen = None

    @contextlib.contextmanager
    def reading_through(self) -> Iterator[None]:
        """Read Redis itself inside a ``read_ahead`` (polling for what others write)."""
        seen, self._batching.seen = self._batching.seen, None
        try:
            yield
        finally:
            self._batching.seen = seen

    @contextlib.contextmanager
    def deferred_writes(self) -> Iterator[None]:
        """Queue writes nobody waits on and send them in one pipeline at the end (nested: once)."""
        if self._batching.writes is not None:
            yield
            return
        self._batching.writes = []
        try:
            yield
        finally:
            writes, self._batching.writes = self._batching.writes, None
            self._flush(writes)

    def batched(self) -> contextlib.AbstractContextManager[None]:
        """``read_ahead()`` and ``deferred_writes()`` together, as one request opens them."""
        return _Batched(self._batching, self._flush)

    def _flush(self, writes: list[Write] | None) -> None:
        if writes:
            with contextlib.suppress(SharedCacheUnavailable):  # as each write alone would
                self.call(lambda: self._pipelined(writes))

    def _pipelined(self, writes: list[Write]) -> None:
        redis = self._redis()
        client = getattr(self.cache, "client", None)
        pipeline = redis.pipeline() if redis is not None else None
        for write in writes:
            write(pipeline, client)
        if pipeline is not None:
            pipeline.execute()

    def _write(self, write: Write, alone: Callable[[], object]) -> None:
        """``write`` queued while ``deferred_writes`` is open on Redis; else ``alone`` now."""
        if self._batching.writes is not None and self._redis() is not None:
            self._batching.writes.append(write)
        else:
            self.call(alone)

    def _remember(self, values: dict[str, Any], asked: Iterable[str]) -> None:
        seen = self._batching.seen
        if seen is not None:
            for key in asked:
                seen[key] = values.get(key, _MISSING)

    # --- operations ------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """One round trip (MGET) for many keys, none for keys read ahead; missing are absent."""
        keys = list(keys)
        seen = self._batching.seen
        unknown = keys if seen is None else [k for k in keys if k not in seen]
        found = self.call(lambda: self.cache.get_many(unknown)) if unknown else {}
        self._remember(found, unknown)
        if seen is None:
            return found
        return {k: seen[k] for k in keys if seen[k] is not _MISSING}

    def add_and_get_many(
        self, key: str, value: Any, timeout: float, keys: Iterable[str]
    ) -> tuple[bool, dict[str, Any]]:
        """``add(key, value)`` and ``get_many(keys)`` in one round trip: (added, values)."""
        keys = list(keys)
        seen = self._batching.seen
        unknown = keys if seen is None else [k for k in keys if k not in seen]
        redis = self._redis()
        if redis is None or not unknown:
            return self.add(key, value, timeout), self.get_many(keys)

        def operation() -> tuple[bool, dict[str, Any]]:
            client = cast(Any, self.cache).client
            pipeline = redis.pipeline()
            client.set(key, value, timeout, nx=True, client=pipeline)
            full = [self.cache.make_key(k) for k in unknown]
            groups = _by_slot(redis, full)
            for group in groups:  # (ClusterPipeline refuses .mget(); a one-slot MGET it takes)
                pipeline.execute_command("MGET", *(full[i] for i in group))
            added, *replies = pipeline.execute()
            raw: list[Any] = [None] * len(full)
            for group, reply in zip(groups, replies, strict=True):
                for i, value_found in zip(group, reply, strict=True):
                    raw[i] = value_found
            return bool(added), {
                k: client.decode(v) for k, v in zip(unknown, raw, strict=True) if v is not None
            }

        added, found = self.call(operation)
        self._remember(found, unknown)
        return added, self.get_many(keys) if seen is not None else found

    def set(self, key: str, value: Any, timeout: float | None) -> None:
        """Store ``value``; ``timeout`` in seconds, None for no expiry."""
        self._write(
            lambda pipeline, client: client.set(key, value, timeout, client=pipeline),
            lambda: self.cache.set(key, value, timeout),
        )

    def set_each(self, items: list[tuple[str, Any, float | None]]) -> None:
        """Store several ``(key, value, timeout)`` in one round trip (a pipeline on Redis)."""

        def write(pipeline: Any, client: Any) -> None:
            for key, value, timeout in items:
                if pipeline is None:
                    self.cache.set(key, value, timeout)
                else:
                    client.set(key, value, timeout, client=pipeline)

        if items:
            self._write(write, lambda: self._pipelined([write]))

    def add(self, key: str, value: Any, timeout: float | None) -> bool:
        """Store only if absent (SET NX); True if stored."""
        return self.call(lambda: self.cache.add(key, value, timeout))

    def delete(self, key: str) -> None:
        """Delete one key."""
        self.call(lambda: self.cache.delete(key))

    def release(self, key: str, value: Any) -> None:
        """``delete_if_equal`` for a caller that does not wait on the answer (deferrable)."""

        def write(pipeline: Any, client: Any) -> None:
            full = self.cache.make_key(key)
            # (a ClusterPipeline has no .eval(); EVAL by name it routes by the key)
            pipeline.execute_command("EVAL", _DELETE_IF_EQUAL, 1, full, client.encode(value))

        self._write(write, lambda: self.delete_if_equal(key, value))

    def delete_if_equal(self, key: str, value: Any) -> bool:
        """Delete ``key`` only if it holds ``value``, atomically (one Lua call on Redis).

        A get-then-delete could delete what another process stored in between
        (a lock that expired and was taken again). True if it was deleted.
        """

        def operation() -> bool:
            redis = self._redis()
            if redis is None:  # the in-process cache: one process, no one in between
                if self.cache.get(key) != value:
                    return False
                self.cache.delete(key)
                return True
            encoded = cast(Any, self.cache).client.encode(value)  # django-redis's serializer
            return bool(redis.eval(_DELETE_IF_EQUAL, 1, self.cache.make_key(key), encoded))

        return self.call(operation)

    def seed_counters(self, keys: list[str], start: int) -> dict[str, int]:
        """Create the missing counters ``keys`` at ``start`` (``SET NX``); their values now.

        Concurrent seeders agree: only the first ``SET NX`` wins, everyone reads it.
        """

        def operation() -> dict[str, int]:
            for key in keys:
                self.cache.add(key, start, None)
            values = self.cache.get_many(keys)
            return {key: int(values.get(key, start)) for key in keys}

        counters = self.call(operation)
        self._remember(counters, keys)
        return counters

    def incr_replicated(
        self, keys: list[str], initial: int, *, replicas: int = 0, timeout_ms: int = 0
    ) -> None:
        """Increment ``keys`` (each created at ``initial`` if missing) in one round trip.

        With ``replicas``, done only once that many replicas have the writes
        (``WAIT`` on the same connection, at most ``timeout_ms``); otherwise
        ``SharedCacheUnavailable`` (the breaker trips): a failover could lose
        them. A key named twice is incremented twice. On a cluster, one
        pipeline (and ``WAIT``) per master (``caching.redis_clients``).
        """

        def operation() -> None:
            client = getattr(self.cache, "client", None)
            if hasattr(client, "incr_replicated"):  # the cluster client
                cast(Any, client).incr_replicated(keys, initial, replicas, timeout_ms)
                return
            redis = self._redis()
            if redis is None:  # the in-process cache: one process, no replicas
                for key in keys:
                    self.cache.add(key, initial, None)
                    self.cache.incr(key)
                return
            pipe = redis.pipeline(transaction=False)  # one connection: WAIT covers the writes
            for key in keys:
                pipe.eval(INCR_OR_SEED, 1, self.cache.make_key(key), initial)
            if replicas:
                pipe.execute_command("WAIT", replicas, timeout_ms)
            acknowledged = pipe.execute()[-1]
            if replicas and acknowledged < replicas:
                raise ReplicationShortfall(f"{acknowledged} of {replicas} replicas acknowledged")

        if keys:
            self.call(operation)

    # --- Redis structures (sets, hashes); plain values on the in-process cache ---

    def _redis(self) -> Redis | None:
        """The raw redis-py client behind a django-redis cache, or None."""
        client = getattr(self.cache, "client", None)
        if client is None or not hasattr(client, "get_client"):
            return None
        redis: Redis = client.get_client(write=True)
        return redis

    def add_to_set(self, key: str, members: Iterable[str]) -> None:
        """SADD; on the in-process cache (one process) a read-modify-write."""
        members = list(members)

        def operation() -> None:
            redis = self._redis()
            if redis is None:
                self.cache.set(key, set(self.cache.get(key, set())) | set(members), None)
            else:
                redis.sadd(self.cache.make_key(key), *members)

        self.call(operation)

    def pop_set(self, key: str) -> builtins.set[str]:
        """Every member of a set, removing the set, atomically on Redis."""

        def operation() -> builtins.set[str]:
            redis = self._redis()
            if redis is None:
                members = set(self.cache.get(key, set()))
                self.cache.delete(key)
                return members
            full = self.cache.make_key(key)
            pipe = redis.pipeline()
            pipe.smembers(full)
            pipe.delete(full)
            members, _ = pipe.execute()
            return {_decoded(m) for m in members}

        return self.call(operation)

    def hincrby_many(self, key: str, counts: dict[str, int]) -> None:
        """Add ``counts`` to the fields of a hash, in one round trip."""

        def operation() -> None:
            redis = self._redis()
            if redis is None:
                current = dict(self.cache.get(key, {}))
                for name, n in counts.items():
                    current[name] = current.get(name, 0) + n
                self.cache.set(key, current, None)
                return
            pipe = redis.pipeline()
            write(pipe, None)
            pipe.execute()

        def write(pipe: Any, client: Any) -> None:
            for name, n in counts.items():
                pipe.hincrby(self.cache.make_key(key), name, n)

        self._write(write, operation)

    def hset_many(self, key: str, fields: dict[str, str | float]) -> None:
        """Set fields of a hash (``HSET``), in one round trip."""
        mapping: dict[EncodableT, EncodableT] = dict(fields.items())

        def operation() -> None:
            redis = self._redis()
            if redis is None:
                self.cache.set(key, {**dict(self.cache.get(key, {})), **fields}, None)
                return
            redis.hset(self.cache.make_key(key), mapping=mapping)

        def write(pipe: Any, client: Any) -> None:
            pipe.hset(self.cache.make_key(key), mapping=mapping)

        self._write(write, operation)

    def hgetall_raw(self, key: str) -> dict[str, str]:
        """A whole hash, its values as strings."""

        def operation() -> dict[str, str]:
            redis = self._redis()
            if redis is None:
                return {k: str(v) for k, v in dict(self.cache.get(key, {})).items()}
            raw = redis.hgetall(self.cache.make_key(key))
            return {_decoded(k): _decoded(v) for k, v in raw.items()}

        return self.call(operation)

    def hgetall(self, key: str) -> dict[str, int]:
        """A whole hash of counters."""

        def operation() -> dict[str, int]:
            redis = self._redis()
            if redis is None:
                return dict(self.cache.get(key, {}))
            raw = redis.hgetall(self.cache.make_key(key))
            return {_decoded(k): int(v) for k, v in raw.items()}

        return self.call(operation)

    def zadd_trim(self, key: str, member: str, score: float, keep: int) -> None:
        """Score ``member`` and keep only the ``keep`` highest-scored members."""

        def operation() -> None:
            redis = self._redis()
            if redis is None:
                scores = dict(self.cache.get(key, {}))
                scores[member] = score
                top = sorted(scores.items(), key=lambda item: -item[1])[:keep]
                self.cache.set(key, dict(top), None)
                return
            pipe = redis.pipeline()
            write(pipe, None)
            pipe.execute()

        def write(pipe: Any, client: Any) -> None:
            full = self.cache.make_key(key)
            pipe.zadd(full, {member: score})
            pipe.zremrangebyrank(full, 0, -keep - 1)

        self._write(write, operation)

    def zadd_max(self, key: str, scores: dict[str, float]) -> None:
        """Raise members' scores to ``scores`` (``ZADD GT``: never lowered, atomically)."""

        def operation() -> None:
            redis = self._redis()
            if redis is None:
                current = dict(self.cache.get(key, {}))
                for member, score in scores.items():
                    current[member] = max(current.get(member, score), score)
                self.cache.set(key, current, None)
                return
            redis.zadd(self.cache.make_key(key), scores, gt=True)

        self.call(operation)

    def zscores(self, key: str, members: list[str]) -> list[float | None]:
        """The scores of ``members`` (None for absent ones), in one round trip."""

        def operation() -> list[float | None]:
            redis = self._redis()
            if redis is None:
                current = dict(self.cache.get(key, {}))
                return [current.get(m) for m in members]
            return list(redis.zmscore(self.cache.make_key(key), members)) if members else []

        return self.call(operation)

    def zsample(self, key: str, count: int) -> list[str]:
        """Up to ``count`` distinct members of a sorted set, chosen at random."""

        def operation() -> list[str]:
            redis = self._redis()
            if redis is None:
                members = list(dict(self.cache.get(key, {})))
                return random.sample(members, min(count, len(members)))
            # With a count and no scores: a list of members.
            sampled = cast(
                "list[bytes | str] | None", redis.zrandmember(self.cache.make_key(key), count)
            )
            return [_decoded(m) for m in sampled or []]

        return self.call(operation)

    def ztop(self, key: str, limit: int) -> list[str]:
        """The ``limit`` highest-scored members, highest first."""

        def operation() -> list[str]:
            redis = self._redis()
            if redis is None:
                scores = dict(self.cache.get(key, {}))
                return [m for m, _ in sorted(scores.items(), key=lambda item: -item[1])[:limit]]
            # Without scores: a list of members.
            members = cast(
                "list[bytes | str]", redis.zrevrange(self.cache.make_key(key), 0, limit - 1)
            )
            return [_decoded(m) for m in members]

        return self.call(operation)


shared_cache = SharedCache()


register_state("shared cache: the Redis breaker", shared_cache.reset_breaker)
