"""The edge: shared HTTP caches (Varnish, a CDN) in front of the service, purged by tag.

A public response carries its cache tags in a header (``EDGE_TAG_HEADER``:
``xkey`` for Varnish, ``Surrogate-Key`` for Fastly, ``Cache-Tag`` for
Cloudflare), the same tags the response cache uses. When a tag's generation is
bumped (in ``transaction.on_commit``), every edge in ``EDGE_PURGE_URLS`` gets
one soft purge for the bumped tags: ``PURGE`` with ``xkey-softpurge: <tags>``
and ``X-Purge-Secret``.

The write that caused it waits for the purge at most ``EDGE_PURGE_TIMEOUT_MS``
(all edges together); an edge that did not confirm is retried from Celery
with backoff until ``EDGE_PURGE_RETRY_FOR_S`` seconds have passed since the
write. Outcomes are counted in Prometheus and kept in Redis for the admin's
cache page and readiness.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import urllib3
from django.conf import settings
from prometheus_client import Counter

from .keys import EDGE_STATUS_KEY
from .shared import SharedCacheUnavailable, shared_cache

logger = logging.getLogger(__name__)

# ok; failed (will be retried); abandoned (no retry left, or none could be scheduled).
PurgeOutcome = Literal["ok", "failed", "abandoned"]

purges_total = Counter(
    "aggregation_edge_purges_total",
    "Edge purge requests by outcome: ok, failed (will be retried), abandoned.",
    ["outcome"],
)
for _outcome in ("ok", "failed", "abandoned"):  # exported at 0 before the first purge
    purges_total.labels(_outcome)

_http = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)
_retry: Callable[[str, list[str], float], None] | None = None


def enabled() -> bool:
    """True when at least one edge is configured to be purged."""
    return bool(settings.EDGE_PURGE_URLS)


def tag_header(tags: Iterable[str]) -> dict[str, str]:
    """The header naming a public response's tags, for the edge (none when it is off)."""
    if not settings.EDGE_TAG_HEADER:
        return {}
    return {settings.EDGE_TAG_HEADER: " ".join(sorted(set(tags)))}


def on_retry(schedule: Callable[[str, list[str], float], None]) -> None:
    """Register how a failed purge is retried later (``schedule(url, tags, since)``)."""
    global _retry
    _retry = schedule


def purge_one(url: str, tags: list[str], timeout: float) -> bool:
    """One soft purge of ``tags`` at the edge ``url``; True when it answered 200."""
    try:
        response = _http.request(
            "PURGE",
            url,
            headers={
                "xkey-softpurge": " ".join(tags),
                "X-Purge-Secret": settings.EDGE_PURGE_SECRET,
            },
            timeout=urllib3.Timeout(total=max(timeout, 0.001)),
        )
    except urllib3.exceptions.HTTPError as exc:
        logger.warning("Edge purge of %s at %s failed: %s", tags, url, exc)
        return False
    if response.status != 200:
        logger.warning("Edge purge of %s at %s answered %s", tags, url, response.status)
        return False
    return True


def purge(tags: Iterable[str]) -> None:
    """Soft-purge ``tags`` at every configured edge, waiting at most ``EDGE_PURGE_TIMEOUT_MS``.

    An edge that did not confirm in time is handed to the retry schedule
    (Celery). Never raises: a write must not fail because an edge did.
    """
    tags = sorted(set(tags))
    if not tags or not enabled():
        return
    started = time.time()
    deadline = time.monotonic() + settings.EDGE_PURGE_TIMEOUT_MS / 1000
    for url in settings.EDGE_PURGE_URLS:
        if purge_one(url, tags, deadline - time.monotonic()):
            record("ok")
            continue
        record("failed", f"{url}: purge of {' '.join(tags)} not confirmed")
        if _retry is not None:
            try:
                _retry(url, tags, started)
            except Exception:  # a broker that is down: counted, and the edge expires it
                logger.exception("Could not schedule a retry of the edge purge at %s", url)
                record("abandoned", f"{url}: retry could not be scheduled")


def record(outcome: PurgeOutcome, error: str = "") -> None:
    """Count one purge outcome; keep the latest success and failure for the admin."""
    purges_total.labels(outcome).inc()
    fields: dict[str, Any] = {f"last_{outcome}": time.time()}
    if error:
        fields["last_error"] = error[:300]
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.hset_many(EDGE_STATUS_KEY, fields)


def status() -> dict[str, Any]:
    """The edge's purge health: configured, last ok/failed/abandoned times, last error.

    ``failing`` is True when the latest failure or abandonment is more recent
    than the latest success.
    """
    try:
        raw = shared_cache.hgetall_raw(EDGE_STATUS_KEY)
    except SharedCacheUnavailable:
        raw = {}
    times = {k: float(raw[k]) for k in ("last_ok", "last_failed", "last_abandoned") if k in raw}
    last_bad = max(times.get("last_failed", 0.0), times.get("last_abandoned", 0.0))
    return {
        "enabled": enabled(),
        "urls": list(settings.EDGE_PURGE_URLS),
        **times,
        "last_error": raw.get("last_error", ""),
        "failing": last_bad > times.get("last_ok", 0.0),
    }
