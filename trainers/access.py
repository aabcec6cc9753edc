"""Who may read and change training data: a trainer their own, staff everything.

Anyone else gets 401 (not signed in) or 403, whether or not the object exists:
a 404 is only ever shown to staff, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from api.access import User, owned_or_denied

from .models import Allocation, PayoutClaim, Session, Student, Trainer

# Who, besides staff, may act on a session or an allocation: its trainer, its student.
Role = Literal["trainer", "student"]


def trainer_for(user: User, trainer_id: int) -> Trainer:
    """The trainer ``trainer_id``, if ``user`` is that trainer or staff."""
    return owned_or_denied(Trainer, trainer_id, user, owners=["user"])


def session_for(user: User, session_id: int, *, roles: Iterable[Role]) -> Session:
    """A session, if ``user`` is staff or its trainer/student (as ``roles`` allow)."""
    return owned_or_denied(Session, session_id, user, owners=[f"{r}__user" for r in roles])


def allocation_for(user: User, allocation_id: int, *, roles: Iterable[Role]) -> Allocation:
    """An allocation, if ``user`` is staff or its trainer/student (as ``roles`` allow)."""
    return owned_or_denied(
        Allocation, allocation_id, user, owners=[f"{r}__user" for r in roles], select=["course"]
    )


def payout_claim_for(user: User, claim_id: int) -> PayoutClaim:
    """A payout claim: staff only (trainers see theirs in the bootstrap)."""
    return owned_or_denied(PayoutClaim, claim_id, user, owners=[])


def student_for_allocation(user: User, student_id: int) -> Student:
    """The student an allocation is requested for: only that student, or staff."""
    return owned_or_denied(Student, student_id, user, owners=["user"])
