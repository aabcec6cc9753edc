"""Sparse fieldsets (seed 004 §6.4): ``fields=justForYou.items.name,events.total``.

A path is ``<section>[.<key>[.<item field>]]``. Sections a fieldset names keep
``id`` (and ``error`` when set) plus the keys named; ``items.<field>`` keeps only
those item fields. Sections it does not name are returned whole, as in JSON:API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .sections import SectionRegistry

SECTION_KEYS = ("id", "title", "type", "items", "total", "hasMore", "lastUpdated")
_ALWAYS_KEPT = ("id", "error")


class InvalidFieldset(ValueError):
    """A fieldset path names an unknown section, key or item field."""


@dataclass
class SectionFields:
    """What to keep of one section: its keys, and (None = all) its item fields."""

    keys: set[str] = field(default_factory=set)
    item_fields: set[str] | None = None


def parse_fieldset(raw: list[str], registry: SectionRegistry) -> dict[str, SectionFields]:
    """Validate and group fieldset paths by canonical section id."""
    spec: dict[str, SectionFields] = {}
    for path in raw:
        _add_path(spec, path, registry)
    # "items" named alone means whole items, whatever else names item fields.
    for path in raw:
        parts = path.strip().split(".")
        section_id = registry.canonical(parts[0])
        if len(parts) == 2 and parts[1] == "items" and section_id is not None:
            spec[section_id].item_fields = None
    return spec


def _add_path(spec: dict[str, SectionFields], path: str, registry: SectionRegistry) -> None:
    """Add one path (``section``, ``section.key``, ``section.items.field``) to ``spec``."""
    parts = path.strip().split(".")
    section_id = registry.canonical(parts[0])
    if section_id is None:
        raise InvalidFieldset(f"'{path}': unknown section '{parts[0]}'.")
    fields = spec.setdefault(section_id, SectionFields())
    if len(parts) == 1:
        fields.keys.update(SECTION_KEYS)
        return
    key = parts[1]
    if key not in SECTION_KEYS:
        raise InvalidFieldset(f"'{path}': unknown key '{key}'.")
    fields.keys.add(key)
    if len(parts) == 2:
        return
    if key != "items" or len(parts) > 3:
        raise InvalidFieldset(f"'{path}': only items.<field> may be nested.")
    allowed = registry[section_id].item_fields
    if parts[2] not in allowed:
        raise InvalidFieldset(
            f"'{path}': unknown item field '{parts[2]}' (one of: {', '.join(allowed)})."
        )
    if fields.item_fields is None:
        fields.item_fields = set()
    fields.item_fields.add(parts[2])


def apply_fieldset(sections: dict[str, Any], spec: dict[str, SectionFields]) -> dict[str, Any]:
    """Return ``sections`` reduced to the fieldset; unnamed sections are untouched."""
    out = {}
    for section_id, body in sections.items():
        fields = spec.get(section_id)
        if fields is None or body is None:
            out[section_id] = body
            continue
        keep = fields.keys | set(_ALWAYS_KEPT)
        reduced = {k: v for k, v in body.items() if k in keep}
        if "items" in reduced and fields.item_fields is not None:
            reduced["items"] = [
                {k: v for k, v in item.items() if k in fields.item_fields}
                for item in reduced["items"]
            ]
        out[section_id] = reduced
    return out
