"""Storefront reads (``homepage/selectors.py``): pages, totals, and the indexes they use.

Totals are shared and end on time; on a big catalogue every section's queries
use an index (EXPLAIN, never a sequential scan).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aggregation.sections import SectionContext
from homepage import selectors
from homepage.sections import all_valid_offers, homepage_sections
from tests.storefront import counting_queries, storefront_connection

from .factories import EventFactory, StoreFactory

PRODUCTS, STORES, EVENTS, OFFERS = 300_000, 20_000, 20_000, 60_000
BIG_TABLES = {"products", "stores", "events", "offers"}


@pytest.mark.django_db
@pytest.mark.storefront
def test_has_more_is_exact_and_the_total_is_counted_once(django_capture_on_commit_callbacks):
    StoreFactory.create_batch(4)
    page = selectors.stores_trending(limit=4)
    assert (len(page.rows), page.total, page.has_more) == (4, 4, False)  # read limit + 1
    with django_capture_on_commit_callbacks(execute=True):  # the new store's invalidation
        StoreFactory()
    page = selectors.stores_trending(limit=4)
    assert (page.total, page.has_more) == (5, True)
    with CaptureQueriesContext(storefront_connection()) as queries:
        selectors.stores_trending(limit=4)
    assert queries.captured_queries  # the rows were read
    assert not counting_queries(queries.captured_queries)


@pytest.mark.django_db
@pytest.mark.storefront
def test_a_total_ends_when_the_next_item_leaves_its_set():
    now = timezone.now()
    EventFactory(starts_at=now + timedelta(minutes=5))
    EventFactory.create_batch(2, starts_at=now + timedelta(days=2))
    assert selectors.events_featured(now=now, limit=1).total == 3
    later = now + timedelta(minutes=6)
    with time_machine.travel(later, tick=False):
        assert selectors.events_featured(now=later, limit=1).total == 2  # one has started


def _generate() -> None:
    """A catalogue shaped like the demo's (5 % of products featured, 20-30 % of the rest)."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO stores (name, logo, image, rating, cashback, category, address,
                city, latitude, longitude, tags, featured, is_active, views, created_at, updated_at)
            SELECT 'store ' || i, '', '', (i % 50) / 10.0, 5, 'c' || (i % 12), '', 'x',
                12.9 + (i % 1000) / 5000.0, 77.5 + (i % 997) / 5000.0, '[]', i % 5 = 0, true,
                i % 10000, now(), now()
            FROM generate_series(1, {STORES}) AS i;
            INSERT INTO products (name, brand, image, price, original_price, currency,
                category, rating, cashback, stock, store_id, featured, is_active, views,
                recommendation_score, created_at, updated_at)
            SELECT 'p ' || i, 'b', '', 10, 12, 'USD', 'c' || (i % 12), 4, 1, i % 10, NULL,
                i % 20 = 0, i % 33 <> 0, i % 100000, (i % 997) / 997.0,
                now() - (i || ' minutes')::interval, now()
            FROM generate_series(1, {PRODUCTS}) AS i;
            INSERT INTO events (title, subtitle, image, price, venue, city, latitude,
                longitude, starts_at, category, organizer, featured, is_active, views,
                created_at, updated_at)
            SELECT 'e ' || i, '', '', 0, '', 'x', 12.9 + (i % 1000) / 5000.0,
                77.5 + (i % 997) / 5000.0, now() + ((i % 4000 - 200) || ' hours')::interval,
                'c', '', i % 3 = 0, true, i, now(), now()
            FROM generate_series(1, {EVENTS}) AS i;
            INSERT INTO offers (title, subtitle, image, original_price, discounted_price,
                cashback_percentage, valid_until, category, store_id, featured, is_active,
                flash_sale_active, flash_sale_price, flash_sale_ends_at, flash_sale_stock, views,
                created_at, updated_at)
            SELECT 'o ' || i, '', '', 100, 80, 5, now() + ((i % 2000 - 72) || ' hours')::interval,
                'c', (SELECT min(id) FROM stores), i % 3 = 0, true, i % 7 = 0,
                60 + i % 40, now() + ((i % 48) || ' hours')::interval, 10, i,
                now() - (i || ' minutes')::interval, now()
            FROM generate_series(1, {OFFERS}) AS i;
        """)  # noqa: S608  (constants only)
        cursor.execute("VACUUM ANALYZE")  # as a live database is: statistics, visibility map


def _scans(plan: dict) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_section_query_scans_a_big_table():  # relational: EXPLAIN on PostgreSQL
    _generate()
    now = datetime.now(UTC)
    contexts = [
        SectionContext(now=now, limit=10),
        SectionContext(now=now, limit=10, options={"location": (77.6, 12.95)}),
    ]
    sequential = []
    for context in contexts:
        for section in [*homepage_sections, all_valid_offers]:
            with CaptureQueriesContext(connection) as queries:
                section.fetch(context)
            assert queries.captured_queries, (section.id, context.options)  # plans to check
            for query in queries.captured_queries:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (FORMAT JSON) " + query["sql"])
                    found = cursor.fetchone()[0]
                plan = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
                for node, relation in _scans(plan):
                    if node == "Seq Scan" and relation in BIG_TABLES:
                        sequential.append((section.id, relation, query["sql"][:120]))
    assert sequential == [], "\n".join(map(str, sequential))
