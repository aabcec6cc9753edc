"""Query shapes (``aggregation/shapes.py``) on the real PostgreSQL.

A bound shape's SQL and parameters are its queryset's, its rows read back
are the ORM's, and a build the stand-ins cannot template is compiled on each
use instead. Every list the homepage reads is a template, so a change that
quietly makes one compile per request fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.test import override_settings

from aggregation.pipeline import run_pipelined
from aggregation.sections import SectionContext
from aggregation.shapes import Shape, ShapeMismatch, compiled, is_template
from homepage import selectors
from homepage.models import CategoryAffinity, Offer, Product
from homepage.sections import homepage_sections
from tests.homepage.factories import OfferFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _fetched(query) -> list:
    """What the pipeline would read for ``query``: its SQL run, its rows read by its reader."""
    try:
        found = compiled(query, connection)
    except EmptyResultSet:  # no query needed: no rows, as the pipeline reads it
        return []
    with connection.cursor() as cursor:
        cursor.execute(found.sql, found.params)
        return found.read(cursor.fetchall())


def _shapes(shape: Shape) -> Iterator[Shape]:
    yield shape
    for derived in shape._derived.values():
        yield from _shapes(derived)


@pytest.fixture
def fresh_homepage_shapes() -> list[Shape]:
    """The homepage selectors' shapes, with no template compiled yet."""
    shapes = [s for s in vars(selectors).values() if isinstance(s, Shape)]
    for shape in shapes:
        shape._templates.clear()
        shape._derived.clear()
    return shapes


def test_a_bound_shape_reads_what_its_queryset_reads():
    ProductFactory(price=Decimal("9.50"), stock=3, category="books")
    ProductFactory(price=Decimal("12.25"), stock=0, category="books")
    ProductFactory(price=Decimal("3.10"), stock=8, category="toys")
    shape = Shape(
        lambda category, stock: (
            Product.objects.filter(category=category, stock__gte=stock)
            .order_by("pk")
            .values("name", "price", "created_at")
        ),
        binds=("category", "stock"),
    )
    for category, stock in [("books", 1), ("books", 0), ("toys", 1), ("none", 0)]:
        bound = shape(category=category, stock=stock)
        assert is_template(bound, connection)
        rows = _fetched(bound)
        assert rows == list(bound.queryset())
        assert all(isinstance(row["price"], Decimal) for row in rows)  # converters applied


def test_values_list_flat_and_sequence_values():
    ProductFactory.create_batch(2, category="books")
    ProductFactory(category="toys")
    ProductFactory(category="games")
    shape = Shape(
        lambda names, flat: (
            Product.objects.filter(category__in=names)
            .order_by("pk")
            .values_list("category", flat=flat)
        ),
        binds=("names",),
    )
    for names in [("books",), ("books", "toys"), ("toys", "games", "books")]:
        for flat in (True, False):
            bound = shape(names=names, flat=flat)
            assert is_template(bound, connection)
            assert _fetched(bound) == list(bound.queryset())
    assert len(shape._templates) == 6  # one per length of the sequence and per ``flat``


def test_derived_shapes_bind_the_same_values():
    now = datetime.now(UTC)
    OfferFactory.create_batch(2)
    OfferFactory(valid_until=now - timedelta(days=1))
    base = Shape(lambda now: Offer.objects.valid(now).order_by("-created_at", "pk"), binds=("now",))
    page = base(now=now).then(("values", 5), lambda q: q.values("id", "title")[:5])
    assert is_template(page, connection)
    assert _fetched(page) == list(Offer.objects.valid(now).order_by("-created_at", "pk")
                                  .values("id", "title")[:5])  # fmt: skip
    # The first step given a key is the one kept: the key must name the step.
    again = base(now=now).then(("values", 5), lambda q: q.values("id")[:1])
    assert _fetched(again) == _fetched(page) and len(_fetched(again)) == 2


def test_what_cannot_be_a_template_is_compiled_per_use():
    ProductFactory.create_batch(3, stock=5)
    derived_value = Shape(
        lambda stock: Product.objects.filter(stock__gte=stock + 1).values("id"), binds=("stock",)
    )
    instances = Shape(lambda stock: Product.objects.filter(stock__gte=stock), binds=("stock",))
    for bound in (derived_value(stock=4), instances(stock=4)):
        assert not is_template(bound, connection)
        assert _fetched(bound) == list(bound.queryset())
    assert {type(row) for row in _fetched(instances(stock=4))} == {Product}


def test_verification_catches_a_build_that_branches_on_a_bound_value():
    shape = Shape(
        lambda stock: (
            Product.objects.filter(stock__gte=stock).values("id")
            if stock > 100
            else Product.objects.filter(stock__lte=stock).values("id")
        ),
        binds=("stock",),
    )
    assert is_template(shape(stock=1000), connection)  # both stand-ins are above 100
    with override_settings(QUERY_SHAPES_VERIFY=True), pytest.raises(ShapeMismatch):
        compiled(shape(stock=5), connection)


def test_integers_out_of_a_columns_range_are_compiled_for_that_use():
    # Django drops a condition or the whole query for an integer outside the
    # column's range; a template would send it as it is (and psycopg wrap it).
    ProductFactory(stock=5)
    shape = Shape(
        lambda stock: Product.objects.filter(stock__gte=stock).order_by("pk").values("id"),
        binds=("stock",),
    )
    assert is_template(shape(stock=1), connection)
    for stock in (3_000_000_000, -1, 2**40):
        bound = shape(stock=stock)
        assert _fetched(bound) == list(bound.queryset()), stock


def test_a_stand_in_the_build_refuses_leaves_it_compiled_per_use():
    product = ProductFactory()
    shape = Shape(lambda pk: Product.objects.filter(pk=pk).values("id"), binds=("pk",))
    bound = shape(pk=str(product.pk))  # the ORM takes "42" for a key; the stand-in text it refuses
    assert not is_template(bound, connection)
    assert _fetched(bound) == [{"id": product.pk}]
    unhashable = Shape(lambda cols: Product.objects.values(*cols))(cols=["id"])
    assert _fetched(unhashable) == [{"id": product.pk}]


def test_a_bind_must_name_an_argument():
    with pytest.raises(TypeError, match="user"):
        Shape(lambda user_id: Product.objects.filter(pk=user_id), binds=("user",))


@pytest.mark.django_db(transaction=True)
def test_every_list_of_the_homepage_is_a_template(fresh_homepage_shapes, storefront, user):
    CategoryAffinity.objects.create(user=user, category="toys", score=0.9)
    CategoryAffinity.objects.create(user=user, category="books", score=0.5)
    now = datetime.now(UTC)
    contexts = [
        SectionContext(now=now, limit=2),
        SectionContext(now=now, limit=2, user_id=user.pk),
        SectionContext(now=now, limit=2, options={"location": (-73.98, 40.75)}),
    ]
    for context in contexts:
        outcomes = run_pipelined(list(homepage_sections), context, using="default",
                                 consistent=False)  # fmt: skip
        assert [o.error_code for o in outcomes] == [None] * len(outcomes)
    used = {}
    for top in fresh_homepage_shapes:
        found = [t for shape in _shapes(top) for t in shape._templates.values()]
        if found:
            used[top] = found
    # every list but /offers's (not a homepage section), near a location too
    assert set(fresh_homepage_shapes) - set(used) == {selectors._VALID_OFFERS}
    assert [top.build.__qualname__ for top, found in used.items() if None in found] == []
    assert sum(map(len, used.values())) >= 15  # with the totals and the affinity groups
