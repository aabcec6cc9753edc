"""HTTP cache headers and conditional requests, for responses built outside DRF's renderer."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import parse_etags

VARY = "Accept-Encoding, Authorization, Cookie"


def cache_control(*, public: bool, status: int = 200) -> str:
    """Shared caches may keep anonymous responses; per-user ones are private; errors none."""
    if status != 200:
        return "no-store"
    if public:
        return (
            f"public, max-age=0, s-maxage={settings.CDN_MAX_AGE}, "
            f"stale-while-revalidate={settings.CDN_STALE_WHILE_REVALIDATE}"
        )
    return "private, no-cache"


def not_modified(request: HttpRequest, etag: str) -> bool:
    """True when the request's ``If-None-Match`` matches ``etag`` (weak comparison)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    weak = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == weak for tag in parse_etags(header))
