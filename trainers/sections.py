"""The trainer bootstrap's sections (seed 000), each also an individual endpoint."""

from __future__ import annotations

from aggregation.bootstrap import subject_context, subject_tag
from aggregation.sections import Section, SectionContext, SectionPayload, SectionRegistry

from . import selectors
from .keys import trainer_section_cache_key


def trainer_tag(trainer_id: int) -> str:
    """The cache tag of everything shown about one trainer."""
    return subject_tag("trainer", trainer_id)


def trainer_context(trainer_id: int) -> SectionContext:
    """The section context of one trainer's bootstrap."""
    return subject_context("trainer", trainer_id)


def _trainer_id(context: SectionContext) -> int:
    return context.options["trainer_id"]


def fetch_overview(context: SectionContext) -> SectionPayload:
    """Profile, performance, documents and location."""
    return SectionPayload(value=selectors.trainer_overview(trainer_id=_trainer_id(context)))


def fetch_sessions(context: SectionContext) -> SectionPayload:
    """The 200 most recent sessions."""
    return SectionPayload(value=selectors.trainer_sessions(trainer_id=_trainer_id(context)))


def fetch_allocations(context: SectionContext) -> SectionPayload:
    """Approved allocations with details."""
    return SectionPayload(value=selectors.trainer_allocations(trainer_id=_trainer_id(context)))


def fetch_payout_claims(context: SectionContext) -> SectionPayload:
    """Payout claims."""
    return SectionPayload(value=selectors.trainer_payout_claims(trainer_id=_trainer_id(context)))


trainer_sections = SectionRegistry(
    [
        Section(
            id="overview", title="Overview", type="overview", fetch=fetch_overview,
            kind="value", empty=None, cache_name="overview",
        ),
        Section(
            id="sessions", title="Sessions", type="sessions", fetch=fetch_sessions,
            kind="value", empty=[], cache_name="sessions",
        ),
        Section(
            id="allocations", title="Allocations", type="allocations", fetch=fetch_allocations,
            kind="value", empty=[], cache_name="allocations",
        ),
        Section(
            id="payoutClaims", title="Payout claims", type="payoutClaims",
            fetch=fetch_payout_claims, kind="value", empty=[], cache_name="payout-claims",
        ),
    ],
    cache_key=trainer_section_cache_key,
)  # fmt: skip
