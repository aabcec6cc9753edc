"""The training domain's people (trainers, students) and what joins them.

Trainers, their documents and performance; students; courses, allocations,
sessions, payouts.

A session, its allocation and the trainer's performance change together in one
transaction (see ``services.py``); the bootstrap reads them from one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from caching.querysets import InvalidatingQuerySet, RowValues

from .querysets import AllocationQuerySet, SessionQuerySet
from .tags import people_tags, trainer_tag

# Cache tags: every model here names the bootstraps its rows are shown in
# (``cache_row_tags``, see ``caching.querysets.RowTagged``), for the receivers,
# the querysets and the change listener alike. ``rows=None``: every row (a
# ``TRUNCATE``), which is everyone's.


def _ids(rows: Sequence[RowValues], column: str) -> set[int]:
    """The ids in ``column`` of ``rows`` (ints from the ORM, text from the WAL)."""
    return {int(row[column]) for row in rows if row.get(column) is not None}


def everyone_tags() -> list[str]:
    """Every trainer's and student's tag (what a ``TRUNCATE`` invalidates)."""
    return people_tags(
        trainers=Trainer.objects.values_list("pk", flat=True),
        students=Student.objects.values_list("pk", flat=True),
    )


def _allocated_tags(**lookup: Iterable[int]) -> list[str]:
    pairs = set(Allocation.objects.filter(**lookup).values_list("trainer_id", "student_id"))
    return people_tags(trainers={t for t, _ in pairs}, students={s for _, s in pairs})


def _trainer_rows_tags(rows: Sequence[RowValues] | None) -> list[str]:
    """Rows that belong to one trainer (``trainer_id``): shown in that trainer's bootstrap."""
    if rows is None:
        return everyone_tags()
    return [trainer_tag(t) for t in _ids(rows, "trainer_id")]


class Trainer(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trainer"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    bio = models.TextField(blank=True)
    avatar = models.URLField(max_length=500, blank=True)
    specialties = models.JSONField(default=list, blank=True)
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    service_radius_km = models.PositiveIntegerField(default=10)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("id",)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The trainer's bootstrap, and their students' (who see their profile)."""
        if rows is None:
            return everyone_tags()
        trainers = _ids(rows, "id")
        return sorted({*people_tags(trainers=trainers), *_allocated_tags(trainer_id__in=trainers)})


class Student(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="student"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    avatar = models.URLField(max_length=500, blank=True)
    level = models.CharField(max_length=30, default="beginner")
    goals = models.TextField(blank=True)
    joined_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("id",)

    class Meta:
        db_table = "students_student"  # kept from when it lived in the students app

    def __str__(self) -> str:
        return self.name

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The student's bootstrap, and their trainers' (who see them in allocations)."""
        if rows is None:
            return everyone_tags()
        students = _ids(rows, "id")
        return sorted({*people_tags(students=students), *_allocated_tags(student_id__in=students)})


class TrainerPerformance(models.Model):
    """Running figures, updated in the same transaction as the sessions they count."""

    trainer = models.OneToOneField(Trainer, on_delete=models.CASCADE, related_name="performance")
    sessions_completed = models.PositiveIntegerField(default=0)
    sessions_cancelled = models.PositiveIntegerField(default=0)
    sessions_no_show = models.PositiveIntegerField(default=0)
    minutes_delivered = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    rating_count = models.PositiveIntegerField(default=0)
    earnings_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("trainer_id",)

    class Meta:
        verbose_name_plural = "performance"

    def __str__(self) -> str:
        return f"Performance of {self.trainer}"

    @property
    def rating_average(self) -> float | None:
        """Mean rating, or None before the first one."""
        return round(self.rating_sum / self.rating_count, 2) if self.rating_count else None

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The trainer's bootstrap."""
        return _trainer_rows_tags(rows)


class TrainerDocument(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        REJECTED = "rejected"

    trainer = models.ForeignKey(Trainer, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=50)  # id_proof, certificate, background_check...
    title = models.CharField(max_length=200)
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    uploaded_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("trainer_id",)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["trainer", "-uploaded_at"], name="document_trainer_idx")]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The trainer's bootstrap."""
        return _trainer_rows_tags(rows)


class Course(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    level = models.CharField(max_length=30, default="beginner")
    total_sessions = models.PositiveIntegerField(default=10)
    session_minutes = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("id",)

    def __str__(self) -> str:
        return self.title

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The bootstraps of everyone allocated to the course."""
        if rows is None:
            return everyone_tags()
        return _allocated_tags(course_id__in=_ids(rows, "id"))


# ``Allocation.Status``'s values, for what takes one as a string (a requested transition).
AllocationStatus = Literal["pending", "approved", "rejected", "completed", "cancelled"]


class Allocation(models.Model):
    """A student taught a course by a trainer, for a number of sessions."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    trainer = models.ForeignKey(Trainer, on_delete=models.PROTECT, related_name="allocations")
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="allocations")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="allocations")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    schedule = models.JSONField(default=dict, blank=True, help_text="e.g. {'days': ['mon']}")
    sessions_total = models.PositiveIntegerField()
    sessions_used = models.PositiveIntegerField(default=0)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AllocationQuerySet.as_manager()

    cache_ignored_fields = ("updated_at",)
    cache_row_columns = ("trainer_id", "student_id")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["trainer", "status", "-created_at"], name="allocation_trainer_idx"
            ),
            models.Index(
                fields=["student", "status", "-created_at"], name="allocation_student_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(sessions_used__lte=models.F("sessions_total")),
                name="allocation_sessions_within_total",
            )
        ]

    def __str__(self) -> str:
        return f"{self.course} for {self.student} with {self.trainer}"

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """Its trainer's and its student's bootstraps."""
        if rows is None:
            return everyone_tags()
        return people_tags(trainers=_ids(rows, "trainer_id"), students=_ids(rows, "student_id"))


class Session(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        NO_SHOW = "no_show"

    allocation = models.ForeignKey(Allocation, on_delete=models.PROTECT, related_name="sessions")
    # Denormalised from the allocation: the bootstraps list sessions per person.
    trainer = models.ForeignKey(Trainer, on_delete=models.PROTECT, related_name="sessions")
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="sessions")
    scheduled_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=60)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    student_confirmed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SessionQuerySet.as_manager()

    cache_ignored_fields = ("created_at", "updated_at")
    cache_row_columns = ("trainer_id", "student_id")

    class Meta:
        ordering = ["-scheduled_at", "-id"]
        indexes = [
            models.Index(
                fields=["trainer", "-scheduled_at", "-id"], name="session_trainer_recent_idx"
            ),
            models.Index(
                fields=["student", "scheduled_at", "id"],
                condition=Q(status="scheduled"),
                name="session_student_upcoming_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="session_rating_1_to_5",
            )
        ]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.get_status_display()})"

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """Its trainer's and its student's bootstraps."""
        if rows is None:
            return everyone_tags()
        return people_tags(trainers=_ids(rows, "trainer_id"), students=_ids(rows, "student_id"))


# ``PayoutClaim.Status``'s values, for what takes one as a string (a requested transition).
PayoutClaimStatus = Literal["pending", "approved", "rejected", "paid"]


class PayoutClaim(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        PAID = "paid"

    trainer = models.ForeignKey(Trainer, on_delete=models.PROTECT, related_name="payout_claims")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    sessions: models.ManyToManyField = models.ManyToManyField(
        Session, through="PayoutClaimSession", related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("trainer_id",)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["trainer", "-created_at"], name="payout_trainer_idx")]

    def __str__(self) -> str:
        return f"Claim {self.pk} ({self.get_status_display()})"

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The trainer's bootstrap."""
        return _trainer_rows_tags(rows)


class PayoutClaimSession(models.Model):
    """A session claimed for payout. A session can be claimed once, ever (unless rejected)."""

    claim = models.ForeignKey(PayoutClaim, on_delete=models.CASCADE, related_name="claimed")
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="claims")
    active = models.BooleanField(default=True, help_text="False once the claim is rejected.")

    objects = InvalidatingQuerySet.as_manager()

    cache_row_columns = ("claim_id",)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=Q(active=True), name="payout_session_claimed_once"
            )
        ]

    def __str__(self) -> str:
        return f"Session {self.session_id} in claim {self.claim_id}"

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The bootstrap of the claim's trainer."""
        if rows is None:
            return everyone_tags()
        claims = PayoutClaim.objects.filter(pk__in=_ids(rows, "claim_id"))
        return people_tags(trainers=set(claims.values_list("trainer_id", flat=True)))
