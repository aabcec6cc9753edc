"""Cache keys for the homepage, beside their TTLs.

The seed's logical keys are kept (``homepage:{userId|anonymous}:v1``); requests
with non-default parameters get a variant suffix so different content never
shares a key.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from caching.engine import CachePolicy

HOMEPAGE_KEY_VERSION = "v1"
DEFAULT_LIMIT = 10
MAX_VARIANT_LENGTH = 80


def homepage_variant(
    *,
    limit: int,
    sections: list[str] | None,
    location: tuple[float, float] | None,
    fieldset_paths: list[str] | None,
) -> str:
    """A canonical, bounded string of the parameters that change the content."""
    parts = []
    if limit != DEFAULT_LIMIT:
        parts.append(f"limit{limit}")
    if sections is not None:
        parts.append("s=" + ",".join(sorted(sections)))
    if location is not None:
        parts.append(f"loc={location[0]:.3f},{location[1]:.3f}")
    if fieldset_paths:
        parts.append("f=" + ",".join(fieldset_paths))
    variant = ":".join(parts)
    if len(variant) > MAX_VARIANT_LENGTH:
        variant = "h=" + hashlib.sha256(variant.encode()).hexdigest()[:24]
    return variant


def homepage_cache_key(user_id: int | None, variant: str = "") -> str:
    """``homepage:{userId}:v1`` or ``homepage:anonymous:v1``, plus the variant."""
    base = f"homepage:{user_id if user_id is not None else 'anonymous'}:{HOMEPAGE_KEY_VERSION}"
    return f"{base}:{variant}" if variant else base


def homepage_policy(*, personal: bool) -> CachePolicy:
    """Full homepage responses: stale-while-revalidate between soft and hard TTL.

    The global homepage may also be served stale once after an invalidation
    while it is refreshed; a user's own homepage is recomputed at once, so a
    user sees their own changes on the next read.
    """
    return CachePolicy(
        soft_ttl=settings.CACHE_SOFT_TTL,
        hard_ttl=settings.CACHE_TTL,
        stale_while_revalidate=settings.ENABLE_STALE_WHILE_REVALIDATE,
        stale_after_invalidation=not personal,
        stale_if_error=settings.CACHE_STALE_IF_ERROR,
    )


def section_policy() -> CachePolicy:
    """Single sections (seed 004 §4.2: ten minutes), shared by the legacy endpoints."""
    return CachePolicy(soft_ttl=settings.CACHE_SECTION_TTL, hard_ttl=settings.CACHE_SECTION_TTL)
