"""How values are written on the wire, where DRF's fields are not used."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as DRF's ``DateTimeField`` and the specification write it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(moment: datetime | None) -> str | None:
    """``iso(moment)``, or None."""
    return iso(moment) if moment is not None else None
