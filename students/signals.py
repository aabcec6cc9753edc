"""Receivers: the student's side of training events, and invalidation of student rows.

The training domain sends ``session_completed`` and ``allocation_approved``
inside its transaction; the receivers here apply the student's own rules
(``services.py``) in that same transaction. The invalidation receivers schedule
tag bumps after commit, nothing else; saves whose ``update_fields`` touch only
fields no bootstrap shows invalidate nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models.signals import post_delete, post_save

from caching.querysets import changes_content
from caching.tags import invalidate_on_commit
from trainers.models import Allocation, Session, Student
from trainers.signals import allocation_approved, session_completed
from trainers.tags import people_tags, student_tag

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


# A row of one of ``MODELS``, the ones the invalidation receivers are connected to.
Shown = Student | StudentProgress | Achievement | CourseProgress


def _tags(instance: Shown) -> list[str]:
    if isinstance(instance, Student):
        trainers = Allocation.objects.filter(student=instance).values_list("trainer_id", flat=True)
        return people_tags(trainers=set(trainers), students=[instance.pk])
    return [student_tag(instance.student_id)]  # progress, achievements


def saved(
    sender: type[Shown],
    instance: Shown,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """A save of a student row some bootstrap shows."""
    if changes_content(sender, update_fields):
        invalidate_on_commit(_tags(instance))


def deleted(sender: type[Shown], instance: Shown, **kwargs: Any) -> None:
    """A delete of a student row some bootstrap shows."""
    invalidate_on_commit(_tags(instance))


MODELS = (Student, StudentProgress, Achievement, CourseProgress)


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
        post_save.connect(saved, sender=model, dispatch_uid=f"bootstrap.{name}.saved")
        post_delete.connect(deleted, sender=model, dispatch_uid=f"bootstrap.{name}.deleted")
