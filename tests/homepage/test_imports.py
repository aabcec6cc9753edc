"""``manage.py import_storefront``: the seed's nested documents into either backend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from homepage.models import Event, Offer, Product, Store
from tests.storefront import relational_only, storefront_connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
URL = "/api/v1/homepage"
STORE_A, STORE_B = "65a000000000000000000001", "65a000000000000000000002"
OFFER = "65a0000000000000000000f1"


def _lines(path: Path, *documents: str) -> Path:
    path.write_text("\n".join(documents) + "\n")
    return path


@pytest.fixture
def export(tmp_path: Path) -> dict[str, Path]:
    """A mongoexport of each collection, in the seed's shape (Extended JSON)."""
    soon = (timezone.now() + timedelta(days=3)).date().isoformat()
    valid = {"$date": (timezone.now() + timedelta(days=10)).isoformat()}
    ends = {"$date": (timezone.now() + timedelta(hours=5)).isoformat()}
    return {
        "stores": _lines(
            tmp_path / "stores.json",
            f'{{"_id": {{"$oid": "{STORE_A}"}}, "name": "Corner Books", "logo": '
            '"https://img.example.com/a.png", "rating": 4.5, "cashback": 3, "category": "books", '
            '"location": {"type": "Point", "coordinates": [77.5946, 12.9716], "city": "Bengaluru",'
            ' "address": "1 MG Road"}, "tags": ["books", "cafe"], "featured": true, '
            '"isActive": true, "views": 900}',
            f'{{"_id": {{"$oid": "{STORE_B}"}}, "name": "Hidden Store", "category": "toys", '
            '"featured": false, "isActive": true}',
        ),
        "products": _lines(
            tmp_path / "products.json",
            '{"_id": {"$oid": "65a000000000000000000101"}, "name": "Atlas", "brand": "Maps Co",'
            ' "price": 25.5, "originalPrice": 30, "category": "books", "rating": 4.1, '
            f'"inventory": {{"stock": 7}}, "store": {{"$oid": "{STORE_A}"}}, "featured": true, '
            '"isActive": true, "views": 50, "recommendationScore": 0.8, '
            '"createdAt": {"$date": "2026-01-02T03:04:05Z"}}',
            '{"_id": {"$oid": "65a000000000000000000102"}, "name": "Sold out", "price": 1, '
            '"category": "books", "inventory": {"stock": 0}, "featured": true, "isActive": true}',
        ),
        "events": _lines(
            tmp_path / "events.json",
            '{"_id": {"$oid": "65a000000000000000000201"}, "title": "Book fair", "price": 0, '
            '"location": {"venue": "Hall 1", "city": "Bengaluru", "coordinates": [77.6, 12.9]},'
            f' "date": "{soon}", "time": "19:30", "category": "books", "organizer": "City", '
            '"featured": true, "isActive": true}',
        ),
        "offers": _lines(
            tmp_path / "offers.json",
            f'{{"_id": {{"$oid": "{OFFER}"}}, "title": "Half off", "originalPrice": 40, '
            f'"discountedPrice": 20, "cashbackPercentage": 5, "validity": {_json(valid)}, '
            f'"category": "books", "store": "{STORE_A}", "featured": true, "isActive": true, '
            f'"metadata": {{"flashSale": {{"isActive": true, "salePrice": 15, '
            f'"endsAt": {_json(ends)}, "stock": 12}}}}}}',
        ),
    }


def _json(value: dict) -> str:
    import json

    return json.dumps(value)


def _import(files: dict[str, Path], *extra: str) -> None:
    args = [f"--{collection}={path}" for collection, path in files.items()]
    call_command("import_storefront", *args, "--no-progress", *extra)


def test_the_seed_shape_is_served_in_the_api_shape(api_client, export):
    _import(export)
    body = api_client.get(URL, {"fresh": "true"}).json()
    sections = body["data"]["sections"]

    (product,) = sections["justForYou"]["items"]  # the sold-out one is not there
    assert product["name"] == "Atlas"
    assert product["inventory"] == {"stock": 7}
    assert product["originalPrice"] == 30.0
    assert product["createdAt"].startswith("2026-01-02T03:04:05")

    (store,) = sections["trendingStores"]["items"]  # only the featured one
    assert store["location"]["coordinates"] == [77.5946, 12.9716]
    assert store["tags"] == ["books", "cafe"]

    (event,) = sections["events"]["items"]
    assert event["time"] == "19:30"
    assert event["location"]["venue"] == "Hall 1"

    (sale,) = sections["flashSales"]["items"]
    assert sale["metadata"]["flashSale"]["salePrice"] == 15.0
    assert sale["metadata"]["flashSale"]["stock"] == 12
    assert sale["store"]["name"] == "Corner Books"

    if storefront_connection().vendor == "mongodb":  # the documents keep their ids
        assert sale["id"] == OFFER
        assert sale["store"]["id"] == STORE_A
    else:
        assert sale["store"]["id"] == str(Store.objects.get(name="Corner Books").pk)


def test_stores_of_an_earlier_import(export):
    """On MongoDB the stores keep their ids, so a later file can point at them."""
    _import({"stores": export["stores"]})
    if storefront_connection().vendor == "mongodb":
        _import({"products": export["products"], "offers": export["offers"]})
        assert Product.objects.get(name="Atlas").store.name == "Corner Books"
        assert Offer.objects.get().store_id == Store.objects.get(name="Corner Books").pk
    else:  # new keys: the export's store ids mean nothing any more
        with pytest.raises(CommandError, match="is in no stores file"):
            _import({"products": export["products"]})


def test_clear_replaces_the_storefront(export):
    _import(export)
    _import(export, "--clear")
    assert (Store.objects.count(), Product.objects.count()) == (2, 2)
    assert (Event.objects.count(), Offer.objects.count()) == (1, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"_id": "x1", "name": "A", "category": "c", "inventory": {"stock": -1}, "price": 1}',
         "stock"),
        ('{"_id": "x1", "name": "A", "category": "c", "inventory": {"stock": 1}, "price": "cheap"}',
         "price"),
        ('{"_id": "x1", "name": "A", "category": "c", "inventory": {"stock": 1}, "price": 1, '
         '"store": "nowhere"}', "nowhere"),
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not a JSON document"),
        ('{"_id": "x1", "name": "A\u0000B"}', "NUL"),
        ('{"_id": "x1", "name": "A\\u0000B", "category": "c", "inventory": {"stock": 1}, '
         '"price": 1}', "Null characters"),
        ("[" * 100_000 + "]" * 100_000, "not a JSON"),
        ('{"_id": "x1", "name": "' + "a" * (1 << 20) + '"}', "longer than"),
    ],
)  # fmt: skip
def test_a_bad_document_is_refused_with_its_line(tmp_path, line, message):
    fine = '{"_id": "p0", "name": "Fine", "category": "c", "inventory": {"stock": 1}, "price": 1}'
    path = _lines(tmp_path / "products.json", fine, line)
    with pytest.raises(CommandError) as error:
        _import({"products": path})
    assert f"{path}:2" in str(error.value)
    assert message in str(error.value)
    assert not Product.objects.exists()  # the batch with the bad line never went in


@relational_only("PostgreSQL away (MongoDB away: aggregation/test_mongodb.py)")
def test_an_unreachable_database_is_a_clear_error(export, database_outage):
    database_outage(False)
    with pytest.raises(CommandError, match="the storefront's database failed"):
        _import(export)


def test_the_command_refuses_missing_files_and_bad_options(tmp_path):
    with pytest.raises(CommandError, match="name at least one file"):
        call_command("import_storefront")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_storefront", f"--stores={tmp_path / 'missing.json'}")
