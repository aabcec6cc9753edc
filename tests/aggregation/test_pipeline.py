"""The section pipeline (``aggregation/pipeline.py``) on the real PostgreSQL.

Every section's plan driven in one pipeline gives what the same plan gives
run query by query; a section that fails or runs out of time inside the
pipeline fails alone; the transaction is left as it was found.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import Func, Value

from aggregation.pipeline import run_pipelined
from aggregation.plans import Rows, more
from aggregation.sections import Section, SectionContext, SectionPayload
from homepage.models import CategoryAffinity, Product
from homepage.sections import homepage_sections
from students.sections import student_bootstrap
from tests.homepage.factories import ProductFactory
from tests.students.factories import StudentFactory
from tests.trainers.factories import SessionFactory, TrainerFactory
from trainers.sections import trainer_bootstrap

pytestmark = pytest.mark.django_db(transaction=True)


def _context(**options) -> SectionContext:
    return SectionContext(now=datetime.now(UTC), limit=4, options=options)


def _compare(sections: list[Section], context: SectionContext, *, consistent: bool) -> None:
    """Pipelined outcomes equal the payloads of the same plans run query by query."""
    outcomes = run_pipelined(sections, context, using="default", consistent=consistent)
    assert [o.error_code for o in outcomes] == [None] * len(sections)
    for section, outcome in zip(sections, outcomes, strict=True):
        assert outcome.payload == section.fetch(context), section.id


def test_homepage_sections_match_their_plans_run_query_by_query(storefront):
    _compare(list(homepage_sections), _context(), consistent=False)


def test_a_personalised_homepage_matches_in_two_steps(storefront, user):
    CategoryAffinity.objects.create(user=user, category="toys", score=0.9)
    CategoryAffinity.objects.create(user=user, category="books", score=0.5)
    context = SectionContext(now=datetime.now(UTC), limit=4, user_id=user.pk)
    _compare(list(homepage_sections), context, consistent=False)
    first = run_pipelined([homepage_sections["justForYou"]], context, using="default",
                          consistent=False)[0].payload  # fmt: skip
    assert [item["category"] for item in first.items] == ["toys", "toys", "toys", "books"]


def test_bootstrap_sections_match_in_one_snapshot():
    trainer = TrainerFactory()
    SessionFactory.create_batch(3, allocation__trainer=trainer)
    student = StudentFactory()
    _compare(list(trainer_bootstrap.registry), trainer_bootstrap.context(trainer.pk),
             consistent=True)  # fmt: skip
    _compare(list(student_bootstrap.registry), student_bootstrap.context(student.pk),
             consistent=True)  # fmt: skip


def _section(section_id: str, plan) -> Section:
    return Section(id=section_id, title=section_id, type="test", fetch=lambda ctx: None, plan=plan)


def _rows(ctx):
    (found,) = yield (Rows(Product.objects.values("id")),)
    return SectionPayload(total=len(found))


def test_a_failing_or_slow_section_fails_alone_and_the_others_are_served(settings):
    settings.QUERY_TIMEOUT = 200
    ProductFactory.create_batch(2)

    def slow(ctx):
        sleeping = Product.objects.annotate(slept=Func(Value(5), function="pg_sleep"))
        yield (Rows(sleeping.values("slept")[:1]),)
        return SectionPayload()

    def broken(ctx):
        yield (Rows(Product.objects.extra(where=["no_such_column = 1"])),)
        return SectionPayload()

    def twice(ctx):
        yield (Rows(Product.objects.values("id")),)  # marked last...
        yield (Rows(Product.objects.values("id")),)  # ...yet it asks again
        return SectionPayload()

    def two_steps(ctx):
        (found,) = yield more(Rows(Product.objects.values("id")))
        (again,) = yield (Rows(Product.objects.filter(pk__in=[r["id"] for r in found])),)
        return SectionPayload(total=len(again))

    sections = [_section("a", _rows), _section("slow", slow), _section("b", two_steps),
                _section("broken", broken), _section("twice", twice), _section("c", _rows)]  # fmt: skip
    outcomes = run_pipelined(sections, _context(), using="default", consistent=True)

    codes = {o.section.id: o.error_code for o in outcomes}
    assert codes == {"a": None, "slow": "TIMEOUT_ERROR", "b": None,
                     "broken": "SECTION_FETCH_ERROR", "twice": "SECTION_FETCH_ERROR", "c": None}  # fmt: skip
    assert [o.payload.total for o in outcomes if o.ok] == [2, 2, 2]
    with connection.cursor() as cursor:  # the connection is usable, and not in a transaction
        cursor.execute("SELECT 1")
    assert not connection.in_atomic_block and connection.connection.info.transaction_status == 0


def test_a_plan_that_yields_after_its_last_step_is_a_section_error():
    def twice(ctx):
        yield (Rows(Product.objects.values("id")),)
        yield (Rows(Product.objects.values("id")),)

    (outcome,) = run_pipelined([_section("twice", twice)], _context(), using="default",
                               consistent=False)  # fmt: skip
    assert outcome.error_code == "SECTION_FETCH_ERROR"


def test_a_connection_that_died_idle_is_replaced_and_the_sections_run():
    ProductFactory()
    connection.ensure_connection()
    with connection.cursor() as cursor:  # the server ends this connection behind its back
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    (outcome,) = run_pipelined([_section("a", _rows)], _context(), using="default",
                               consistent=False)  # fmt: skip
    assert outcome.ok and outcome.payload.total == 1


def test_inside_a_transaction_it_leaves_the_transaction_as_it_was():
    ProductFactory()
    from django.db import transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 12345")
        (outcome,) = run_pipelined([_section("a", _rows)], _context(), using="default",
                                   consistent=True)  # fmt: skip
        assert outcome.ok
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "12345ms"  # its own setting was undone
