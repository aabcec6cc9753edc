"""The consistency monitor: cached entries compared with the database, inconsistencies counted."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from prometheus_client import REGISTRY

from caching import consistency
from homepage.models import Product
from tests.homepage.factories import EventFactory, ProductFactory
from tests.storefront import write_behind_the_orm
from tests.trainers.factories import TrainerFactory
from trainers import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
HOME = "/api/v1/homepage"


def _inconsistent(namespace: str) -> float:
    value = REGISTRY.get_sample_value(
        "aggregation_consistency_inconsistent_total", {"namespace": namespace}
    )
    return value or 0.0


def test_a_write_the_cache_never_heard_of_is_found(api_client, client_for):
    product = ProductFactory(name="Before", featured=True)
    trainer = TrainerFactory()
    assert api_client.get(HOME).status_code == 200  # stored, and tracked
    assert api_client.get(HOME, {"limit": 5}).status_code == 200
    assert client_for(trainer.user).get(f"/api/v1/trainers/{trainer.pk}/bootstrap").status_code
    before = _inconsistent("homepage")

    clean = consistency.verify(limit=10)
    assert clean.sampled == {"homepage": 2, "trainer:bootstrap": 1}
    assert not clean.any_inconsistent

    write_behind_the_orm(product, set={"name": "After"})  # no signal, no invalidation
    found = consistency.verify(limit=10)
    assert found.inconsistent == {"homepage": 2, "trainer:bootstrap": 0}
    assert _inconsistent("homepage") == before + 2
    assert consistency.totals()["homepage"] == {"sampled": 4, "inconsistent": 2}


def test_writes_through_the_orm_leave_nothing_inconsistent(api_client, client_for):
    product = ProductFactory(featured=True)
    EventFactory()
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    for round_ in range(3):
        api_client.get(HOME)
        client.get(f"/api/v1/trainers/{trainer.pk}/bootstrap")
        Product.objects.filter(pk=product.pk).update(name=f"Renamed {round_}")
        services.trainer_profile_update(trainer=trainer, bio=f"Bio {round_}")
        api_client.get(HOME)  # stored again after the write
        client.get(f"/api/v1/trainers/{trainer.pk}/bootstrap")
        report = consistency.verify(limit=50)
        assert not report.any_inconsistent, report
    assert sum(report.sampled.values()) >= 2


def test_the_command_reports_per_namespace_and_fails_on_a_mismatch(api_client, staff_user, client):
    product = ProductFactory(featured=True)
    api_client.get(HOME)
    out = StringIO()
    call_command("cache", "verify", stdout=out)
    assert "homepage" in out.getvalue()

    write_behind_the_orm(product, inc={"price": 1})
    with pytest.raises(CommandError) as failed:
        call_command("cache", "verify", stdout=StringIO())
    assert failed.value.returncode == 1

    client.force_login(staff_user)
    page = client.get(reverse("cache-dashboard")).content.decode()
    table = page.split('id="consistency"')[1]
    assert "homepage</td><td>2</td><td><strong>1</strong>" in table


def test_a_sample_size_below_one_compares_nothing_and_the_command_refuses_it(api_client):
    ProductFactory(featured=True)
    api_client.get(HOME)
    assert consistency.verify(limit=0).sampled == {}
    assert consistency.verify(limit=-3).sampled == {}  # never Redis's sampling with repeats
    with pytest.raises(CommandError, match="at least 1"):
        call_command("cache", "verify", "--sample", "0", stdout=StringIO())
