"""``manage.py seed_demo``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from homepage.models import CategoryAffinity, Event, Offer, Product, Store
from trainers.models import Session, Student, Trainer

pytestmark = [pytest.mark.django_db, pytest.mark.storefront]


def _seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", no_progress=True, stdout=out, **options)
    return out.getvalue()


def test_seeds_the_requested_counts():
    _seed(products=300, stores=20, events=30, offers=40, users=5, trainers=3, students=6)
    assert Product.objects.count() == 300
    assert Store.objects.count() == 20
    assert Event.objects.count() == 30
    assert Offer.objects.count() == 40
    assert CategoryAffinity.objects.values("user").distinct().count() == 5
    # Realistic: every homepage list has something in it.
    now = timezone.now()
    assert Product.objects.featured_in_stock().exists()
    assert Store.objects.featured().exists()
    assert Event.objects.upcoming_featured(now).exists()
    assert Offer.objects.featured_valid(now).exists()
    assert Product.objects.values("category").annotate(n=Count("id")).count() > 5
    # Trainers with hundreds of sessions, and figures that agree with them.
    assert Trainer.objects.count() == 3 and Student.objects.count() == 6
    for trainer in Trainer.objects.all():
        sessions = Session.objects.filter(trainer=trainer)
        assert sessions.count() >= 250
        completed = sessions.filter(status="completed").count()
        assert trainer.performance.sessions_completed == completed
        for allocation in trainer.allocations.all():
            used = allocation.sessions.filter(status__in=["completed", "no_show"]).count()
            assert allocation.sessions_used == used


def test_rejects_negative_counts():
    with pytest.raises(CommandError):
        _seed(products=-1)


def test_is_reproducible_and_if_empty_skips():
    _seed(products=50, stores=5, events=5, offers=5, users=1, trainers=1, students=1, seed=7)
    names = list(Product.objects.order_by("pk").values_list("name", flat=True))
    assert "nothing to do" in _seed(products=50, if_empty=True)
    assert Product.objects.count() == 50
    _seed(
        products=50,
        stores=5,
        events=5,
        offers=5,
        users=1,
        trainers=1,
        students=1,
        seed=7,
        clear=True,
    )
    assert list(Product.objects.order_by("pk").values_list("name", flat=True)) == names


def test_seeding_again_without_clear_stops_with_one_clear_line():
    _seed(products=20, stores=2, events=2, offers=2, users=1, trainers=1, students=1)
    with pytest.raises(CommandError, match="already present.*--clear.*--if-empty"):
        _seed(products=20, stores=2, events=2, offers=2, users=1, trainers=1, students=1)
    assert Product.objects.count() == 20


def test_demo_data_has_payout_claims_and_varied_students():
    _seed(products=20, stores=2, events=2, offers=2, users=1, trainers=2, students=12)
    from trainers.models import PayoutClaim

    assert set(PayoutClaim.objects.values_list("status", flat=True)) == {
        "paid",
        "approved",
        "rejected",
        "pending",
    }
    assert Student.objects.values("level").distinct().count() > 1


def test_clearing_the_storefront_deletes_every_row_and_invalidates(
    django_capture_on_commit_callbacks,
):
    from caching.tags import read_generations
    from homepage.demo import clear_storefront

    _seed(products=20, stores=2, events=2, offers=2, users=1, trainers=0, students=0)
    before, _ = read_generations(["products", "offers"])
    with django_capture_on_commit_callbacks(execute=True):
        clear_storefront()
    assert (Product.objects.count(), Offer.objects.count(), Store.objects.count()) == (0, 0, 0)
    after, _ = read_generations(["products", "offers"])
    assert all(after[tag] > before[tag] for tag in before)
