"""Reusable filters for the training models (``Allocation.objects.approved()``).

Every training model's manager derives from ``InvalidatingQuerySet``: bulk
writes (``update()``, ``bulk_create()``, ``bulk_update()``) invalidate the tags
of the rows they write, as saves and deletes do through the receivers.
"""

from __future__ import annotations

from caching.querysets import InvalidatingQuerySet


class AllocationQuerySet(InvalidatingQuerySet):
    def approved(self) -> AllocationQuerySet:
        """Active allocations: approved and not yet completed or cancelled."""
        return self.filter(status="approved")

    def student_ids_of(self, trainer_id: int) -> list[int]:
        """The students a trainer teaches or has taught (whom their profile is shown to)."""
        return list(
            self.filter(trainer_id=trainer_id).values_list("student_id", flat=True).distinct()
        )


class SessionQuerySet(InvalidatingQuerySet):
    def scheduled(self) -> SessionQuerySet:
        """Sessions still to happen (not completed, cancelled or missed)."""
        return self.filter(status="scheduled")
