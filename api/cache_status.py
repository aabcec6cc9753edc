"""The ``Cache-Status`` header (RFC 9211): which of the service's caches answered, and how.

The service has two caches in a chain: ``app-l2`` (Redis, shared by every
process) nearest the origin (the database), then ``app-l1`` (this process's
LRU). RFC 9211 lists the caches that handled a response from the origin's side
to the client's, so an edge in front (the shipped Varnish adds ``edge``)
appends its own member after these.

Derived from the engine's ``CacheResult`` alone (the engine knows no HTTP):

- an L1 hit names only ``app-l1`` (L2's value was not read);
- an L2 hit names ``app-l2; hit`` and ``app-l1; fwd=miss; stored`` (L1 keeps the copy);
- a computation names both with ``fwd=miss`` (``fwd=request`` for ``fresh=true``,
  whose semantics forbid a stored answer) and ``stored`` when the result was
  cached; a request that waited for another's computation (single-flight)
  adds ``collapsed``;
- ``ttl`` is the remaining freshness in whole seconds, negative once past the
  soft TTL; a copy served stale (while revalidating, or because recomputing
  failed) carries ``detail=stale``, since an invalidated copy may still have
  time left.
"""

from __future__ import annotations

import math
import time

from caching.engine import CacheResult

L2 = "app-l2"
L1 = "app-l1"


def _member(cache: str, *params: str) -> str:
    return "; ".join((cache, *params))


def _ttl(result: CacheResult, now: float) -> str:
    return f"ttl={math.floor(result.stored_at + result.ttl - now)}"


def _hit(cache: str, result: CacheResult, now: float) -> str:
    params = ["hit"]
    remaining = math.floor(result.stored_at + result.ttl - now)
    if not result.stale or remaining < 0:
        params.append(f"ttl={remaining}")
    if result.stale:
        params.append("detail=stale")
    return _member(cache, *params)


def cache_status(result: CacheResult, *, fresh: bool = False, now: float | None = None) -> str:
    """The ``Cache-Status`` value for a response served as ``result`` says.

    ``fresh``: the request asked for data computed after it began
    (``fresh=true``), so the caches were skipped on purpose, not missed.
    """
    now = time.time() if now is None else now
    if result.from_cache and result.layer == "l1":
        return _hit(L1, result, now)
    if result.from_cache and result.layer == "l2":
        return f"{_hit(L2, result, now)}, {_member(L1, 'fwd=miss', 'stored')}"
    forward = "fwd=request" if fresh else "fwd=miss"
    params = [forward]
    if result.layer == "flight":
        params.append("collapsed")
    if result.ok and result.ttl > 0:
        params += ["stored", _ttl(result, now)]
    return f"{_member(L2, *params)}, {_member(L1, *params)}"
