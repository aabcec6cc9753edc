"""Domain signals the training domain sends, and its invalidation receivers.

``session_completed`` and ``allocation_approved`` are sent inside the service's
transaction, so what other domains do in response (a student's progress and
achievements) commits or rolls back with it.

The invalidation receivers schedule tag bumps after commit and do nothing else.
The services invalidate explicitly; these cover every other write (the admin,
shells, data fixes) so no path leaves a bootstrap stale. Saves whose
``update_fields`` touch only fields no bootstrap shows invalidate nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal

from caching.querysets import changes_content
from caching.tags import invalidate_on_commit

from .models import (
    Allocation,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    Session,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)
from .tags import people_tags, trainer_tag

# Sent with ``session``, ``allocation`` (both locked) and ``completed_at``.
session_completed = Signal()
# Sent with ``allocation`` when it becomes approved.
allocation_approved = Signal()

# A row of one of ``MODELS``, the ones the receivers are connected to.
Shown = (
    Trainer | TrainerPerformance | TrainerDocument | Course | Allocation | Session | PayoutClaim
    | PayoutClaimSession
)  # fmt: skip


def _tags(instance: Shown) -> list[str]:
    """The trainers and students a changed row is shown to."""
    if isinstance(instance, Trainer):
        students = Allocation.objects.student_ids_of(instance.pk)
        return people_tags(trainers=[instance.pk], students=students)
    if isinstance(instance, Course):
        pairs = set(
            Allocation.objects.filter(course=instance).values_list("trainer_id", "student_id")
        )
        return people_tags(trainers=[t for t, _ in pairs], students=[s for _, s in pairs])
    if isinstance(instance, Allocation | Session):
        return people_tags(trainers=[instance.trainer_id], students=[instance.student_id])
    if isinstance(instance, PayoutClaimSession):
        return [trainer_tag(instance.claim.trainer_id)]
    return [trainer_tag(instance.trainer_id)]  # performance, documents, claims


def saved(
    sender: type[Shown],
    instance: Shown,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """A save of a model some bootstrap shows."""
    if changes_content(sender, update_fields):
        invalidate_on_commit(_tags(instance))


def deleted(sender: type[Shown], instance: Shown, **kwargs: Any) -> None:
    """A delete of a model some bootstrap shows."""
    invalidate_on_commit(_tags(instance))


MODELS = (
    Trainer, TrainerPerformance, TrainerDocument, Course, Allocation, Session, PayoutClaim,
    PayoutClaimSession,
)  # fmt: skip


def connect() -> None:
    """Connect the receivers (from ``TrainersConfig.ready``)."""
    for model in MODELS:
        name = model._meta.label_lower
        post_save.connect(saved, sender=model, dispatch_uid=f"bootstrap.{name}.saved")
        post_delete.connect(deleted, sender=model, dispatch_uid=f"bootstrap.{name}.deleted")
