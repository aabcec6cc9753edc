"""Rate limits: django-ratelimit's counters in Redis, applied as a DRF throttle.

Every process shares one budget per client: per user when signed in, per client
IP otherwise. Reads of the aggregation endpoints share ``RATE_LIMIT_READS``;
``fresh=true`` reads also count against the tighter ``RATE_LIMIT_FRESH``;
writes share ``RATE_LIMIT_WRITES``. Over budget: 429 ``RATE_LIMITED`` with
``Retry-After``. Views name ``RateLimit`` in their ``throttle_classes``.

The client IP is the address ``TRUSTED_PROXY_COUNT`` hops from the right of
``X-Forwarded-For`` (the one our own outermost proxy saw), or ``REMOTE_ADDR``
with no trusted proxies: entries a client adds itself are ignored.

When Redis is unreachable the limits fail open: serving matters more than counting.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from caching.shared import CACHE_ERRORS, shared_cache

TRUTHY = {"true", "1", "yes", "on"}


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting only our own proxies' ``X-Forwarded-For`` entries."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def client_key(group: str, request: HttpRequest) -> str:
    """Whose budget a request spends: the user's, or the client IP's."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def _groups(request: HttpRequest) -> list[tuple[str, str]]:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        groups = [("reads", settings.RATE_LIMIT_READS)]
        if str(request.GET.get("fresh", "")).lower() in TRUTHY:
            groups.append(("fresh", settings.RATE_LIMIT_FRESH))
        return groups
    return [("writes", settings.RATE_LIMIT_WRITES)]


def _count(request: HttpRequest) -> float | None:
    if not settings.RATELIMIT_ENABLE or not shared_cache.available:
        return None
    for group, rate in _groups(request):
        if not rate:
            continue
        try:
            usage = get_usage(request, group=group, key=client_key, rate=rate, increment=True)
        except CACHE_ERRORS:
            return None
        if usage and usage["should_limit"]:
            return max(usage["time_left"], 1)
    return None


def over_budget(request: HttpRequest) -> float | None:
    """Count ``request`` against its budgets; seconds to wait if one is spent, else None.

    Counted once per request however often it is asked: a view's cached fast
    path (outside DRF) counts it, and the throttle that may follow reuses that.
    """
    target: Any = getattr(request, "_request", request)  # a DRF request wraps Django's
    if not hasattr(target, "rate_limit_wait"):
        target.rate_limit_wait = _count(target)
    return target.rate_limit_wait


class RateLimit(BaseThrottle):
    """DRF throttle counting with django-ratelimit in the shared cache."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: HttpRequest, view: Any) -> bool:
        """Count this request in each of its groups; refuse if any is over budget."""
        self._wait = over_budget(request)
        return self._wait is None

    def wait(self) -> float | None:
        """Seconds until the window that refused this request ends (``Retry-After``)."""
        return self._wait
