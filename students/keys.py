"""Cache keys of the student bootstrap and its individual endpoints."""

from __future__ import annotations

from aggregation.sections import Section, SectionContext


def student_bootstrap_cache_key(student_id: int) -> str:
    """``student:bootstrap:{studentId}``."""
    return f"student:bootstrap:{student_id}"


def student_section_cache_key(section: Section, context: SectionContext) -> str:
    """``student:overview:{id}``, ``student:sessions:{id}``, ``student:courses:{id}``..."""
    return f"student:{section.cache_name}:{context.options['student_id']}"
