"""A student's side of the training domain: progress summary, achievements, course progress.

The student (``trainers.models.Student``) is one of the training domain's
people and lives there, beside the trainer, so that sessions and allocations
never point up into this app.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models
from django.utils import timezone

from caching.querysets import InvalidatingQuerySet, RowValues
from trainers.models import Student, everyone_tags
from trainers.tags import people_tags


class StudentRows:
    """Rows that belong to one student (``student_id``): shown in that student's bootstrap.

    Their managers invalidate on bulk writes too (``InvalidatingQuerySet``).
    """

    cache_row_columns = ("student_id",)

    @classmethod
    def cache_row_tags(cls, rows: Sequence[RowValues] | None) -> list[str]:
        """The student's bootstrap (everyone's for every row)."""
        if rows is None:
            return everyone_tags()
        return people_tags(students={int(r["student_id"]) for r in rows if r.get("student_id")})


class StudentProgress(StudentRows, models.Model):
    """Summary figures, updated in the same transaction as the sessions they count."""

    student = models.OneToOneField(Student, on_delete=models.CASCADE, related_name="progress")
    sessions_completed = models.PositiveIntegerField(default=0)
    minutes_completed = models.PositiveIntegerField(default=0)
    courses_completed = models.PositiveIntegerField(default=0)
    last_session_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "progress"

    def __str__(self) -> str:
        return f"Progress of {self.student}"


class Achievement(StudentRows, models.Model):
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="achievements")
    code = models.CharField(max_length=50)
    title = models.CharField(max_length=200)
    description = models.CharField(max_length=300, blank=True)
    earned_at = models.DateTimeField(default=timezone.now)

    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        ordering = ["-earned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["student", "code"], name="achievement_once_per_student")
        ]

    def __str__(self) -> str:
        return self.title


class CourseProgress(StudentRows, models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="course_progress")
    course = models.ForeignKey("trainers.Course", on_delete=models.PROTECT, related_name="+")
    sessions_completed = models.PositiveIntegerField(default=0)
    sessions_total = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvalidatingQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        verbose_name_plural = "course progress"
        constraints = [
            models.UniqueConstraint(fields=["student", "course"], name="course_progress_once")
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.course}"

    @property
    def percent(self) -> float:
        """Share of the course's sessions completed, 0-100."""
        if not self.sessions_total:
            return 0.0
        return round(min(self.sessions_completed / self.sessions_total, 1) * 100, 1)
