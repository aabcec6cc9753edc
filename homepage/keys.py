"""Cache keys and policies of the storefront's datasets, beside their TTLs.

The specification's logical keys are kept: ``homepage:{userId|anonymous}:v1``
for whole responses, ``homepage:section:{id}:limit{n}:v1`` for sections;
parameters that change the content add a canonical suffix, so different
content never shares a key.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from aggregation.sections import Section, SectionContext
from caching.engine import CachePolicy

HOMEPAGE_KEY_VERSION = "v1"
DEFAULT_LIMIT = 10
MAX_VARIANT_LENGTH = 80

HOMEPAGE_NAMESPACE = "homepage"
SECTION_NAMESPACE = "homepage:section"
COUNT_NAMESPACE = "homepage:count"

Location = tuple[float, float]


def location_part(location: Location) -> str:
    """``loc=77.595,12.972``: a location as keys spell it (about 100 m)."""
    return f"loc={location[0]:.3f},{location[1]:.3f}"


def homepage_variant(
    *,
    limit: int,
    sections: list[str] | None,
    location: Location | None,
) -> str:
    """A canonical, bounded string of the parameters that change the content."""
    parts = []
    if limit != DEFAULT_LIMIT:
        parts.append(f"limit{limit}")
    if sections is not None:
        parts.append("s=" + ",".join(sorted(sections)))
    if location is not None:
        parts.append(location_part(location))
    variant = ":".join(parts)
    if len(variant) > MAX_VARIANT_LENGTH:
        variant = "h=" + hashlib.sha256(variant.encode()).hexdigest()[:24]
    return variant


def homepage_cache_key(user_id: int | None, variant: str = "") -> str:
    """``homepage:{userId}:v1`` or ``homepage:anonymous:v1``, plus the variant."""
    base = f"homepage:{user_id if user_id is not None else 'anonymous'}:{HOMEPAGE_KEY_VERSION}"
    return f"{base}:{variant}" if variant else base


def homepage_section_cache_key(section: Section, context: SectionContext) -> str:
    """``homepage:section:justForYou:limit10:v1`` (specification §4.2), plus what it varies by."""
    params = [f"limit{context.limit}"]
    if "user" in section.vary and context.user_id is not None:
        params.append(f"user{context.user_id}")
    location = context.options.get("location")
    if "location" in section.vary and location:
        params.append(location_part(location))
    return f"homepage:section:{section.id}:{':'.join(params)}:{HOMEPAGE_KEY_VERSION}"


def count_cache_key(name: str) -> str:
    """``homepage:count:featuredInStock:v1``: a total many entries share."""
    return f"homepage:count:{name}:{HOMEPAGE_KEY_VERSION}"


@functools.cache  # per request otherwise; settings change only in tests (below)
def homepage_policy() -> CachePolicy:
    """Whole homepage responses: fresh ``CACHE_SOFT_TTL_S``, then stale-while-revalidate.

    Served stale only for age (between the soft and the hard TTL, while one
    refresh runs) and on errors (``CACHE_STALE_IF_ERROR_S``); never after an
    invalidation: a committed write is seen by every request that starts after it.
    """
    return CachePolicy(
        namespace=HOMEPAGE_NAMESPACE,
        soft_ttl=settings.CACHE_SOFT_TTL_S,
        hard_ttl=settings.CACHE_TTL,
        stale_while_revalidate=settings.ENABLE_STALE_WHILE_REVALIDATE,
        stale_if_error=settings.CACHE_STALE_IF_ERROR_S,
    )


@functools.cache
def section_policy() -> CachePolicy:
    """Single sections (specification §4.2: ten minutes), shared by the legacy endpoints."""
    return CachePolicy(
        namespace=SECTION_NAMESPACE,
        soft_ttl=settings.CACHE_SECTION_TTL_S,
        hard_ttl=settings.CACHE_SECTION_TTL_S,
    )


@receiver(setting_changed)
def _settings_changed(**_: object) -> None:  # (the policies read several settings)
    homepage_policy.cache_clear()
    section_policy.cache_clear()
