"""The consistency monitor: cached entries compared with the database, inconsistencies counted."""

from __future__ import annotations

import time
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

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


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_the_window_s_rate_is_on_metrics_and_on_the_cache_page_as_nines(
    api_client, client, staff_user, settings
):
    product = ProductFactory(featured=True)
    trainer = TrainerFactory()
    api_client.get(HOME)
    api_client.get(HOME, {"limit": 5})
    api_client.get(HOME, {"limit": 6})
    api_client.get(HOME, {"limit": 7})
    client_for_trainer = APIClient()
    client_for_trainer.force_authenticate(trainer.user)
    client_for_trainer.get(f"/api/v1/trainers/{trainer.pk}/bootstrap")
    assert consistency.verify(limit=10).sampled == {"homepage": 4, "trainer:bootstrap": 1}
    write_behind_the_orm(product, set={"name": "Changed behind the cache"})
    assert consistency.verify(limit=10).inconsistent["homepage"] == 4

    rates = consistency.window_rates()
    assert rates["homepage"] == consistency.WindowRate("homepage", 8, 4)
    assert rates["homepage"].inconsistent_ratio == 0.5
    assert rates["homepage"].nines == pytest.approx(0.301, abs=0.001)
    trainer_rate = rates["trainer:bootstrap"]  # two clean samples: below 1 in 2
    assert (trainer_rate.sampled, trainer_rate.at_least) == (2, True)
    assert trainer_rate.nines == pytest.approx(0.301, abs=0.001)

    text = _scrape(client)
    assert 'aggregation_consistency_window_sampled{namespace="homepage"} 8.0' in text
    assert 'aggregation_consistency_window_inconsistent{namespace="homepage"} 4.0' in text
    assert 'aggregation_consistency_inconsistent_ratio{namespace="homepage"} 0.5' in text
    assert 'aggregation_consistency_inconsistent_ratio{namespace="trainer:bootstrap"} 0.0' in text
    assert "aggregation_consistency_window_seconds 86400.0" in text

    client.force_login(staff_user)
    table = client.get(reverse("cache-dashboard")).content.decode().split('id="consistency"')[1]
    homepage_row = table.split("<td>homepage</td>")[1].split("</tr>")[0]
    assert "<td>50.000 %</td>" in homepage_row and '<td class="nines">0.3</td>' in homepage_row
    trainer_row = table.split("<td>trainer:bootstrap</td>")[1].split("</tr>")[0]
    assert '<td class="nines">≥ 0.3</td>' in trainer_row

    # Passes older than the window leave it; the totals keep them.
    with time_machine.travel(time.time() + settings.CACHE_CONSISTENCY_WINDOW_S + 60):
        assert consistency.window_rates() == {}
        assert "aggregation_consistency_inconsistent_ratio{" not in _scrape(client)
    assert consistency.totals()["homepage"] == {"sampled": 8, "inconsistent": 4}


def test_a_clean_namespace_has_as_many_nines_as_its_samples_can_show(api_client):
    ProductFactory.create_batch(3, featured=True)
    for limit in range(1, 11):
        api_client.get(HOME, {"limit": limit})
    for _ in range(10):
        consistency.verify(limit=10)
    rate = consistency.window_rates()["homepage"]
    assert (rate.sampled, rate.inconsistent) == (100, 0)
    assert rate.at_least and rate.nines == 2.0  # 100 clean samples: below 1 in 100
