"""Who may read a student's data: that student, and staff (401/403 for anyone else)."""

from __future__ import annotations

from api.access import User, owned_or_denied
from trainers.models import Student


def student_for(user: User, student_id: int) -> Student:
    """The student ``student_id``, if ``user`` is that student or staff."""
    return owned_or_denied(Student, student_id, user, owners=["user"])
