"""Receivers: the student's side of training events, and invalidation of student rows.

The training domain sends ``session_completed`` and ``allocation_approved``
inside its transaction; the receivers here apply the student's own rules
(``services.py``) in that same transaction. The invalidation receivers schedule
tag bumps after commit, nothing else, as in ``trainers.signals``: bulk writes go
through the models' ``InvalidatingQuerySet``, any other writer through the
change listener, all from the models' ``cache_row_tags``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models.signals import post_delete, post_save

from caching.querysets import invalidate_deleted, invalidate_saved
from trainers.models import Allocation, Session
from trainers.signals import allocation_approved, session_completed

from . import services
from .models import Achievement, CourseProgress, StudentProgress


def on_session_completed(
    sender: type[Session], *, session: Session, allocation: Allocation, completed_at: datetime,
    **kwargs: Any,
) -> None:  # fmt: skip
    """Count the session in the student's progress, course progress and achievements."""
    services.student_session_record(
        allocation=allocation, minutes=session.duration_minutes, completed_at=completed_at
    )


def on_allocation_approved(
    sender: type[Allocation], *, allocation: Allocation, **kwargs: Any
) -> None:
    """Start the student's progress in the course."""
    services.course_progress_start(allocation=allocation)


# The student's own rows (``Student`` is the training domain's: its receivers are there).
MODELS = (StudentProgress, Achievement, CourseProgress)


def connect() -> None:
    """Connect the receivers (from ``StudentsConfig.ready``)."""
    session_completed.connect(
        on_session_completed, sender=Session, dispatch_uid="students.session_completed"
    )
    allocation_approved.connect(
        on_allocation_approved, sender=Allocation, dispatch_uid="students.allocation_approved"
    )
    for model in MODELS:
        name = model._meta.label_lower
        post_save.connect(invalidate_saved, sender=model, dispatch_uid=f"bootstrap.{name}.saved")
        post_delete.connect(
            invalidate_deleted, sender=model, dispatch_uid=f"bootstrap.{name}.deleted"
        )
