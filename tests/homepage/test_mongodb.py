"""The storefront's MongoDB collections and indexes (``homepage/mongodb_migrations``).

Run with --storefront=mongodb; also a deleted user's affinities (no foreign key
across databases). Time limits and failures: ``tests/aggregation/test_mongodb.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.collection import Collection

from homepage.models import CategoryAffinity
from tests.factories import UserFactory
from tests.storefront import storefront_connection

from .factories import CategoryAffinityFactory, small_catalogue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
URL = "/api/v1/homepage"


@pytest.fixture(autouse=True)
def _on_mongodb():
    if storefront_connection().vendor != "mongodb":
        pytest.skip("the storefront is not in MongoDB here (run with --storefront=mongodb)")


@pytest.fixture
def catalogue() -> None:
    small_catalogue()


# --- Collections and indexes --------------------------------------------------------

# Seed 004 appendix B, as our fields name them: (keys, partialFilterExpression).
APPENDIX_B = {
    "products": [
        ({"views": -1, "created_at": -1}, {"featured": True, "is_active": True}),
        ({"created_at": -1}, {"is_active": True}),
    ],
    "stores": [({"rating": -1, "views": -1}, {"featured": True, "is_active": True})],
    "events": [({"starts_at": 1, "views": -1}, {"featured": True, "is_active": True})],
    "offers": [
        ({"valid_until": 1, "created_at": -1}, {"featured": True, "is_active": True}),
        ({"valid_until": 1, "flash_sale_price": 1}, {"flash_sale_active": True, "is_active": True}),
    ],
}


def _conditions(match: dict) -> dict[str, Any]:
    """A ``$match`` (or partial filter) as field -> condition, ``$and`` flattened."""
    found: dict[str, Any] = {}
    for key, value in match.items():
        if key == "$and":
            for part in value:
                found.update(_conditions(part))
        else:
            found[key] = value["$eq"] if isinstance(value, dict) and "$eq" in value else value
    return found


def _indexes(collection: str) -> dict[str, tuple[dict, dict]]:
    """Each index of ``collection`` by name: its keys and its partial filter."""
    database = storefront_connection().database
    return {
        index["name"]: (dict(index["key"]), _conditions(index.get("partialFilterExpression", {})))
        for index in database[collection].list_indexes()
    }


def test_the_storefront_is_in_the_seed_collections_with_the_appendix_b_indexes():
    names = set(storefront_connection().database.list_collection_names())
    assert {"products", "stores", "events", "offers", "category_affinities"} <= names
    for collection, wanted in APPENDIX_B.items():
        for keys, partial in wanted:
            assert (keys, partial) in _indexes(collection).values(), (collection, keys)


def _serves(index: tuple[dict, dict], match: dict[str, Any], sort: list[str]) -> bool:
    """Whether ``index`` can serve a query, by MongoDB's rule for partial indexes.

    The query implies the index's filter; then the index's keys, past those the
    query pins by equality, continue with the sort or a filtered field.
    """
    keys, partial = index
    if any(match.get(field) != condition for field, condition in partial.items()):
        return False
    rest = [key for key in keys if not (key in match and not isinstance(match[key], dict))]
    return bool(rest) and (rest[0] in match or (bool(sort) and rest[0] == sort[0]))


@contextlib.contextmanager
def _pipelines() -> Iterator[list[tuple[str, list]]]:
    """Every aggregation the block sends, as (collection, pipeline)."""
    sent: list[tuple[str, list]] = []
    original = Collection.aggregate

    def recording(self, pipeline, *args, **kwargs):
        sent.append((self.name, pipeline))
        return original(self, pipeline, *args, **kwargs)

    Collection.aggregate = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Collection.aggregate = original  # type: ignore[method-assign]


def test_each_section_query_filters_first_on_an_index_that_serves_it(
    api_client, user_client, user, catalogue
):
    """Each section's query starts with its ``$match`` and an index serves it.

    On MongoDB itself (``STOREFRONT_TEST_MONGODB_URL``) its own ``explain``
    must show an index scan and no collection scan. secantusdb's planner
    chooses no index for a ``$and`` filter, which is how django-mongodb-backend
    writes every multi-field filter, so there the index is found by MongoDB's
    rule for partial indexes (docs/mongodb.md), and the query
    hinted with it must plan an index scan of it and return the same rows.
    """
    CategoryAffinityFactory(user=user, category="books")
    with _pipelines() as sent:
        assert api_client.get(URL, {"fresh": "true"}).status_code == 200
        assert api_client.get(URL, {"fresh": "true", "location": "77.59,12.97"}).status_code == 200
        assert user_client.get(URL, {"fresh": "true"}).status_code == 200
        assert api_client.get("/api/v1/offers", {"featured": "false"}).status_code == 200
    database = storefront_connection().database
    checked = set()
    for collection, pipeline in sent:
        if collection not in APPENDIX_B:
            continue
        first = pipeline[0]
        assert "$match" in first, (collection, pipeline)  # filtered before anything else
        match = _conditions(first["$match"])
        if set(match) == {"_id"}:
            continue  # the offers' stores, by primary key
        sort = next((list(stage["$sort"]) for stage in pipeline if "$sort" in stage), [])
        serving = [
            name
            for name, index in _indexes(collection).items()
            if name != "_id_" and _serves(index, match, sort)
        ]
        assert serving, (collection, match, sort)
        explain = {"aggregate": collection, "pipeline": pipeline, "cursor": {}}
        explained = database.command("explain", explain)
        if explained.get("serverInfo", {}).get("host") != "secantus":  # a real MongoDB
            stages = _plan_stages(explained)
            assert "IXSCAN" in stages and "COLLSCAN" not in stages, (collection, stages)
        hinted = database.command("explain", {**explain, "hint": serving[0]})
        assert "IXSCAN" in _plan_stages(hinted), (collection, serving[0])
        rows = list(database[collection].aggregate(pipeline))
        assert list(database[collection].aggregate(pipeline, hint=serving[0])) == rows
        checked.add(collection)
    assert checked == set(APPENDIX_B)


def _plan_stages(explained: Any) -> list[str]:
    """Every ``stage`` named in an explain output's winning plans."""
    if isinstance(explained, list):
        return [stage for item in explained for stage in _plan_stages(item)]
    if not isinstance(explained, dict):
        return []
    found = [explained["stage"]] if isinstance(explained.get("stage"), str) else []
    for key, value in explained.items():
        if key != "rejectedPlans":
            found += _plan_stages(value)
    return found


def test_a_users_affinities_go_with_the_user(user):
    CategoryAffinityFactory(user=user, category="books")
    other = UserFactory()
    CategoryAffinityFactory(user=other, category="books")
    user.delete()
    assert list(CategoryAffinity.objects.values_list("user_id", flat=True)) == [other.pk]
