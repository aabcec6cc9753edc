"""HTTP cache headers and conditional requests, for responses built outside DRF's renderer."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import parse_etags

VARY = "Accept-Encoding, Authorization, Cookie"
DICTIONARY_VARY = "Available-Dictionary, Dictionary-ID"  # where dcz is offered (RFC 9842)


def cache_control(*, public: bool, status: int = 200, expires_at: float | None = None) -> str:
    """Shared caches may keep anonymous responses; per-user ones are private; errors none.

    ``expires_at`` (epoch seconds) is when the content stops being true (an
    offer ends): a shared cache may keep it fresh, or serve it stale, only until
    then.
    """
    if status != 200:
        return "no-store"
    if not public:
        return "private, no-cache"
    fresh, revalidate, on_error = (
        settings.CDN_MAX_AGE_S,
        settings.CDN_STALE_WHILE_REVALIDATE_S,
        settings.CDN_STALE_IF_ERROR_S,
    )
    if expires_at is not None:
        left = max(int(expires_at - time.time()), 0)
        fresh = min(fresh, left)
        revalidate, on_error = min(revalidate, left - fresh), min(on_error, left - fresh)
    return (
        f"public, max-age=0, s-maxage={fresh}, "
        f"stale-while-revalidate={revalidate}, stale-if-error={on_error}"
    )


def not_modified(request: HttpRequest, etag: str) -> bool:
    """True when the request's ``If-None-Match`` matches ``etag`` (weak comparison)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    weak = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == weak for tag in parse_etags(header))
