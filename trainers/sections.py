"""The trainer bootstrap's sections (specification 000), each also an individual endpoint."""

from __future__ import annotations

from aggregation.bootstrap import Bootstrap, subject_section

from . import selectors
from .tags import TRAINER

trainer_bootstrap = Bootstrap(
    TRAINER,
    [
        subject_section("overview", "Overview", selectors.trainer_overview, None),
        subject_section("sessions", "Recent sessions", selectors.trainer_sessions, []),
        subject_section("allocations", "Approved allocations", selectors.trainer_allocations, []),
        subject_section(
            "payoutClaims",
            "Payout claims",
            selectors.trainer_payout_claims,
            [],
            cache_name="payout-claims",
        ),
    ],  # fmt: skip
    owner=selectors.trainer_owner,
    subject_arg="trainer_id",
)
