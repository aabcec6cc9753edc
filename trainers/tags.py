"""Cache tags of the training domain: whose bootstraps a change shows up in.

A trainer's data is shown to the trainer; sessions and allocations to their
trainer and their student. The student bootstrap (``students`` app) is
declared with ``STUDENT`` as its kind, so its tag is ``student_tag``.
"""

from __future__ import annotations

from collections.abc import Iterable

from aggregation.bootstrap import subject_tag

TRAINER = "trainer"
STUDENT = "student"


def trainer_tag(trainer_id: int) -> str:
    """``trainer:7``: everything shown in one trainer's bootstrap."""
    return subject_tag(TRAINER, trainer_id)


def student_tag(student_id: int) -> str:
    """``student:9``: everything shown in one student's bootstrap."""
    return subject_tag(STUDENT, student_id)


def people_tags(*, trainers: Iterable[int] = (), students: Iterable[int] = ()) -> list[str]:
    """The tags of these trainers and students."""
    return [*map(trainer_tag, trainers), *map(student_tag, students)]
