"""What to warm for the homepage.

The global homepage with default parameters, and each section's default entry
(which the legacy endpoints serve).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aggregation.batch import compute_sections, serve_batch
from aggregation.sections import Section, SectionContext
from caching.warming import register_warmer

from .keys import DEFAULT_LIMIT, homepage_cache_key, homepage_policy, section_policy
from .sections import homepage_analytics, homepage_sections
from .verifiers import HOMEPAGE_VERIFIER, verify_args


def _context() -> SectionContext:
    return SectionContext(now=datetime.now(UTC), limit=DEFAULT_LIMIT)


def warm_anonymous_homepage() -> None:
    """Recompute the global homepage (default parameters), reusing valid sections."""
    serve_batch(
        registry=homepage_sections,
        sections=list(homepage_sections),
        context=_context(),
        cache_key=homepage_cache_key(None),
        policy=homepage_policy(),
        section_policy=section_policy(),
        refresh=True,
        extras=homepage_analytics,
        verify=(HOMEPAGE_VERIFIER, verify_args("", None)),
    )


def _section_warmer(section: Section):
    def warm() -> None:
        compute_sections(homepage_sections, [section], _context(), section_policy=section_policy())

    return warm


def register() -> None:
    """Register the homepage warmers (from ``HomepageConfig.ready``)."""
    all_tags = sorted({t for s in homepage_sections for t in s.tags})
    register_warmer("homepage:anonymous", all_tags, warm_anonymous_homepage)
    for section in homepage_sections:
        register_warmer(f"homepage:section:{section.id}", section.tags, _section_warmer(section))
