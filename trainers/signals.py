"""Domain signals the training domain sends, and its invalidation receivers.

``session_completed`` and ``allocation_approved`` are sent inside the service's
transaction, so what other domains do in response (a student's progress and
achievements) commits or rolls back with it.

Invalidation has one path per kind of write, as in the storefront: saves and
deletes (the services, the admin, a shell) reach the receivers connected here;
bulk writes (``update()``, ``bulk_create()``, ``bulk_update()``) go through the
models' ``InvalidatingQuerySet``. Both bump, on commit, the tags the model names
for the rows written (``cache_row_tags`` in ``models.py``); the services make no
invalidation calls of their own. A save whose ``update_fields`` touch only fields
no bootstrap shows invalidates nothing. Writes that reach the database some
other way (``psql``, another service, raw SQL, a migration's data step) are
bumped by the change listener (``manage.py cache listen``) from the same
declarations. The trap: a save that moves a row to another trainer or student
bumps the new one here; the old one is bumped by the listener (it sees the old
row), or when the listener is not running, by the hard TTL.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal

from caching.querysets import invalidate_deleted, invalidate_saved

from .models import (
    Allocation,
    Course,
    PayoutClaim,
    PayoutClaimSession,
    Session,
    Student,
    Trainer,
    TrainerDocument,
    TrainerPerformance,
)

# Sent with ``session``, ``allocation`` (both locked) and ``completed_at``.
session_completed = Signal()
# Sent with ``allocation`` when it becomes approved.
allocation_approved = Signal()

MODELS = (
    Trainer, Student, TrainerPerformance, TrainerDocument, Course, Allocation, Session,
    PayoutClaim, PayoutClaimSession,
)  # fmt: skip


def connect() -> None:
    """Connect the receivers (from ``TrainersConfig.ready``)."""
    for model in MODELS:
        name = model._meta.label_lower
        post_save.connect(invalidate_saved, sender=model, dispatch_uid=f"bootstrap.{name}.saved")
        post_delete.connect(
            invalidate_deleted, sender=model, dispatch_uid=f"bootstrap.{name}.deleted"
        )
