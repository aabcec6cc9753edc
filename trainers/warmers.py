"""Warm the bootstraps of recently active trainers and students (a bounded number)."""

from __future__ import annotations

from django.conf import settings

from aggregation.bootstrap import serve_bootstrap
from caching.activity import recently_active
from caching.warming import register_warmer
from students.keys import student_bootstrap_cache_key
from students.sections import student_context, student_sections

from .keys import bootstrap_policy, trainer_bootstrap_cache_key
from .sections import trainer_context, trainer_sections


def _warm_recent(kind: str, registry, key, context) -> None:
    """Make sure the bootstraps of the most recently active ``kind`` are cached."""
    for subject_id in recently_active(kind, settings.BOOTSTRAP_WARM_LIMIT):
        serve_bootstrap(
            registry=registry,
            context=context(subject_id),
            cache_key=key(subject_id),
            policy=bootstrap_policy(),
        )


def warm_recent_trainers() -> None:
    """Make sure the most recently active trainers' bootstraps are cached."""
    _warm_recent("trainer", trainer_sections, trainer_bootstrap_cache_key, trainer_context)


def warm_recent_students() -> None:
    """Make sure the most recently active students' bootstraps are cached."""
    _warm_recent("student", student_sections, student_bootstrap_cache_key, student_context)


def register() -> None:
    """Register the bootstrap warmers (from ``TrainersConfig.ready``)."""
    register_warmer("trainers:recent-bootstraps", (), warm_recent_trainers)
    register_warmer("students:recent-bootstraps", (), warm_recent_students)
