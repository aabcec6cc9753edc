"""Invalidation receivers for the bootstrap models: schedule tag bumps, nothing else.

The services invalidate explicitly; these cover every other write (the admin,
shells, data fixes) so no path leaves a bootstrap stale.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from caching.tags import invalidate_on_commit
from students.models import Achievement, CourseProgress, Student, StudentProgress
from students.sections import student_tag

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
from .sections import trainer_tag


def _tags(instance) -> list[str]:
    """The trainers and students a changed row is shown to."""
    if isinstance(instance, Trainer):
        students = Allocation.objects.filter(trainer=instance).values_list("student_id", flat=True)
        return [trainer_tag(instance.pk), *(student_tag(s) for s in set(students))]
    if isinstance(instance, Student):
        trainers = Allocation.objects.filter(student=instance).values_list("trainer_id", flat=True)
        return [student_tag(instance.pk), *(trainer_tag(t) for t in set(trainers))]
    if isinstance(instance, Course):
        pairs = Allocation.objects.filter(course=instance).values_list("trainer_id", "student_id")
        return [tag for t, s in set(pairs) for tag in (trainer_tag(t), student_tag(s))]
    if isinstance(instance, Allocation | Session):
        return [trainer_tag(instance.trainer_id), student_tag(instance.student_id)]
    if isinstance(instance, TrainerPerformance | TrainerDocument | PayoutClaim):
        return [trainer_tag(instance.trainer_id)]
    if isinstance(instance, PayoutClaimSession):
        return [trainer_tag(instance.session.trainer_id)]
    return [student_tag(instance.student_id)]  # progress, achievements, course progress


def changed(sender, instance, **kwargs) -> None:
    """Any save or delete of a bootstrap model."""
    invalidate_on_commit(_tags(instance))


MODELS = (
    Trainer, TrainerPerformance, TrainerDocument, Course, Allocation, Session, PayoutClaim,
    PayoutClaimSession, Student, StudentProgress, Achievement, CourseProgress,
)  # fmt: skip


def connect() -> None:
    """Connect the receivers (from ``TrainersConfig.ready``)."""
    for model in MODELS:
        name = model._meta.label_lower
        post_save.connect(changed, sender=model, dispatch_uid=f"bootstrap.{name}.saved")
        post_delete.connect(changed, sender=model, dispatch_uid=f"bootstrap.{name}.deleted")
