"""Legacy endpoints on their way out: always counted, marked deprecated by a switch.

The specification keeps the individual endpoints, then deprecates them, then
removes them once nobody calls them. Each step is a setting, and "nobody calls
them" is a number:

- every call of a legacy endpoint is counted per endpoint and per client (the
  signed-in user, else the ``X-Client`` header when sent, else ``anonymous``),
  in Prometheus and in Redis with the time of the last call (the admin's cache
  page shows them);
- with ``LEGACY_DEPRECATED_SINCE`` set, their responses carry ``Deprecation``
  (RFC 9745), ``Sunset`` (RFC 8594; ``LEGACY_SUNSET``, default 90 days later)
  and a ``Link`` to the endpoint that replaces them, and the OpenAPI schema
  marks them deprecated.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import http_date
from prometheus_client import Counter

from caching.process import register_state
from caching.shared import SharedCacheUnavailable, shared_cache

CALLS_KEY = "legacy:calls"  # hash: "endpoint|client" -> calls
LAST_KEY = "legacy:last"  # hash: "endpoint|client" -> epoch seconds of the last call
SUNSET_AFTER = timedelta(days=90)  # the specification's "after 3 months"
MAX_CLIENT_LABELS = 500  # distinct Prometheus client labels per process; then "other"
CLIENT_HEADER = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")

calls_total = Counter(
    "aggregation_legacy_calls_total",
    "Calls of the legacy individual endpoints, by endpoint and client.",
    ["endpoint", "client"],
)
_labels_lock = threading.Lock()
_client_labels: set[str] = set()


def client_of(request: HttpRequest) -> str:
    """``user:<id>`` when signed in, ``client:<X-Client>`` when sent, else ``anonymous``."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    header = request.headers.get("X-Client", "")
    return f"client:{header}" if CLIENT_HEADER.match(header) else "anonymous"


def _label(client: str) -> str:
    """A bounded set of label values: Prometheus keeps one series per value."""
    with _labels_lock:
        if client in _client_labels or len(_client_labels) < MAX_CLIENT_LABELS:
            _client_labels.add(client)
            return client
    return "other"


def record_call(request: HttpRequest, endpoint: str) -> None:
    """Count one call of the legacy ``endpoint`` by this request's client."""
    client = client_of(request)
    calls_total.labels(endpoint, _label(client)).inc()
    field = f"{endpoint}|{client}"
    with contextlib.suppress(SharedCacheUnavailable), shared_cache.deferred_writes():
        shared_cache.hincrby_many(CALLS_KEY, {field: 1})  # both in one round trip
        shared_cache.hset_many(LAST_KEY, {field: time.time()})


def is_deprecated() -> bool:
    """True once ``LEGACY_DEPRECATED_SINCE`` is set."""
    return settings.LEGACY_DEPRECATED_SINCE is not None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def headers(successor: str) -> dict[str, str]:
    """``Deprecation``, ``Sunset`` and ``Link`` for a legacy response (none until deprecated)."""
    since = settings.LEGACY_DEPRECATED_SINCE
    if since is None:
        return {}
    sunset = settings.LEGACY_SUNSET or since + SUNSET_AFTER
    return {
        "Deprecation": f"@{int(_midnight(since).timestamp())}",
        "Sunset": http_date(_midnight(sunset).timestamp()),
        "Link": f'<{successor}>; rel="successor-version"',
    }


def calls() -> list[dict[str, Any]]:
    """Every legacy endpoint and client seen: calls and the last call, most recent first."""
    try:
        counts = shared_cache.hgetall_raw(CALLS_KEY)
        last = shared_cache.hgetall_raw(LAST_KEY)
    except SharedCacheUnavailable:
        return []
    rows: list[tuple[float, dict[str, Any]]] = []
    for field, count in counts.items():
        endpoint, _, client = field.partition("|")
        moment = float(last.get(field, 0))
        row = {
            "endpoint": endpoint,
            "client": client,
            "calls": int(count),
            "last_called": datetime.fromtimestamp(moment, UTC) if moment else None,
        }
        rows.append((moment, row))
    return [row for _, row in sorted(rows, key=lambda item: item[0], reverse=True)]


def panel() -> dict[str, Any]:
    """The cache page's panel: the switch's state and every endpoint's calls."""
    since = settings.LEGACY_DEPRECATED_SINCE
    return {
        "deprecated": since is not None,
        "since": since,
        "sunset": (settings.LEGACY_SUNSET or since + SUNSET_AFTER) if since else None,
        "calls": calls(),
    }


class LegacyEndpoint:
    """Mixin for DRF views serving legacy endpoints: counts each call, adds the headers.

    A view says which of its requests are legacy calls, and what replaces them,
    with ``legacy_endpoint``; ``is_legacy_operation`` tells the schema.
    """

    def legacy_endpoint(self, request: Any, kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """``(endpoint name, successor URL)`` for a legacy call, else None."""
        raise NotImplementedError

    def is_legacy_operation(self) -> bool:
        """True when the operation being documented is a legacy one."""
        return True

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Count the call (answered or refused) and, once deprecated, say so."""
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        found = self.legacy_endpoint(request, kwargs)
        if found is not None:
            endpoint, successor = found
            record_call(request, endpoint)
            for name, value in headers(successor).items():
                response[name] = value
        return response


def _forget_client_labels() -> None:
    with _labels_lock:
        _client_labels.clear()


register_state("legacy calls: client label values in use", _forget_client_labels)
