"""The trainer bootstrap's sections (specification 000), each also an individual endpoint."""

from __future__ import annotations

from aggregation.bootstrap import Bootstrap, subject_section

from . import selectors
from .tags import TRAINER

trainer_bootstrap = Bootstrap(
    TRAINER,
    [
        subject_section(
            "overview",
            "Profile, performance, documents and location",
            lambda trainer_id, _: selectors.trainer_overview(trainer_id=trainer_id),
            empty=None,
        ),
        subject_section(
            "sessions",
            "The 200 most recent sessions",
            lambda trainer_id, _: selectors.trainer_sessions(trainer_id=trainer_id),
            empty=[],
        ),
        subject_section(
            "allocations",
            "Approved allocations with details",
            lambda trainer_id, _: selectors.trainer_allocations(trainer_id=trainer_id),
            empty=[],
        ),
        subject_section(
            "payoutClaims",
            "Payout claims",
            lambda trainer_id, _: selectors.trainer_payout_claims(trainer_id=trainer_id),
            empty=[],
            cache_name="payout-claims",
        ),
    ],
    owner=selectors.trainer_owner,
)
