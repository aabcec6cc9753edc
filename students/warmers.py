"""Warm the bootstraps of recently active students (a bounded number per run)."""

from __future__ import annotations

from .sections import student_bootstrap


def register() -> None:
    """Register the student bootstrap warmer and verifier (from ``StudentsConfig.ready``)."""
    student_bootstrap.register_warmer()
    student_bootstrap.register_verifier()
