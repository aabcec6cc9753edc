"""What to warm for the homepage.

The global homepage with default parameters, and each section's default entry
(which the legacy endpoints serve).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aggregation.batch import ReadMode, serve_batch
from aggregation.compute import compute_sections
from aggregation.sections import Section, SectionContext
from caching.warming import register_warmer

from .keys import DEFAULT_LIMIT, section_policy
from .sections import homepage_request, homepage_sections
from .verifiers import HOMEPAGE_VERIFIER, verify_args


def _context() -> SectionContext:
    return SectionContext(now=datetime.now(UTC), limit=DEFAULT_LIMIT)


def warm_anonymous_homepage() -> None:
    """Recompute the global homepage (default parameters), reusing valid sections."""
    verify = (HOMEPAGE_VERIFIER, verify_args("", None))
    serve_batch(homepage_request({"limit": DEFAULT_LIMIT}, None, verify=verify), ReadMode.REWARM)


def _section_warmer(section: Section) -> Callable[[], None]:
    def warm() -> None:
        compute_sections(homepage_sections, [section], _context(), section_policy=section_policy())

    return warm


def register() -> None:
    """Register the homepage warmers (from ``HomepageConfig.ready``)."""
    all_tags = sorted({t for s in homepage_sections for t in s.tags})
    register_warmer("homepage:anonymous", all_tags, warm_anonymous_homepage)
    for section in homepage_sections:
        register_warmer(f"homepage:section:{section.id}", section.tags, _section_warmer(section))
