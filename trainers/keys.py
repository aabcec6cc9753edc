"""Cache keys and policy of the trainer bootstrap and its individual endpoints (seed 000)."""

from __future__ import annotations

from django.conf import settings

from aggregation.sections import Section, SectionContext
from caching.engine import CachePolicy


def trainer_bootstrap_cache_key(trainer_id: int) -> str:
    """``trainer:bootstrap:{trainerId}``."""
    return f"trainer:bootstrap:{trainer_id}"


def trainer_section_cache_key(section: Section, context: SectionContext) -> str:
    """``trainer:overview:{id}``, ``trainer:sessions:{id}``, ``trainer:payout-claims:{id}``..."""
    return f"trainer:{section.cache_name}:{context.options['trainer_id']}"


def bootstrap_policy() -> CachePolicy:
    """Read-your-writes: never stale, never unverified (TTL ``CACHE_TTL``, 5 minutes).

    Every read checks the tag generations; a copy whose generations cannot be
    checked (Redis down) is not served, and no stale copy is served on errors:
    after a mutation returns, no read shows the state before it.
    """
    return CachePolicy(
        soft_ttl=settings.CACHE_TTL, hard_ttl=settings.CACHE_TTL, verified_reads=True
    )
