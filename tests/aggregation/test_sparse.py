"""Sparse fieldsets: parsing, validation and application."""

from __future__ import annotations

import pytest

from aggregation.sections import Section, SectionRegistry
from aggregation.sparse import InvalidFieldset, apply_fieldset, parse_fieldset

REGISTRY = SectionRegistry(
    [
        Section(
            id="justForYou",
            title="J",
            type="t",
            fetch=None,
            aliases=("just_for_you",),
            item_fields=("id", "name", "price"),
        ),
        Section(id="events", title="E", type="t", fetch=None, item_fields=("id", "title")),
    ]
)

SECTIONS = {
    "justForYou": {
        "id": "justForYou",
        "title": "J",
        "type": "t",
        "total": 1,
        "hasMore": False,
        "lastUpdated": "x",
        "items": [{"id": "1", "name": "A", "price": 2.0}],
    },
    "events": {"id": "events", "title": "E", "items": [{"id": "9", "title": "T"}], "total": 1},
}


def test_item_fields_are_kept_and_other_keys_dropped():
    spec = parse_fieldset(["justForYou.items.name", "just_for_you.items.price"], REGISTRY)
    out = apply_fieldset(SECTIONS, spec)
    assert out["justForYou"] == {"id": "justForYou", "items": [{"name": "A", "price": 2.0}]}
    assert out["events"] == SECTIONS["events"]  # sections not named stay whole


def test_section_keys_and_whole_items():
    spec = parse_fieldset(["events.total", "events.items"], REGISTRY)
    assert apply_fieldset(SECTIONS, spec)["events"] == {
        "id": "events",
        "total": 1,
        "items": [{"id": "9", "title": "T"}],
    }


def test_naming_a_section_alone_keeps_it_whole():
    spec = parse_fieldset(["events"], REGISTRY)
    assert apply_fieldset(SECTIONS, spec)["events"] == SECTIONS["events"]


def test_error_flag_survives_a_fieldset():
    failed = {"justForYou": {**SECTIONS["justForYou"], "items": [], "error": True}}
    spec = parse_fieldset(["justForYou.total"], REGISTRY)
    assert apply_fieldset(failed, spec)["justForYou"] == {
        "id": "justForYou",
        "total": 1,
        "error": True,
    }


@pytest.mark.parametrize(
    "path",
    ["nope.items.name", "events.bogus", "events.items.nope", "events.total.x", "events.items.id.x"],
)
def test_invalid_paths_are_rejected(path):
    with pytest.raises(InvalidFieldset):
        parse_fieldset([path], REGISTRY)
