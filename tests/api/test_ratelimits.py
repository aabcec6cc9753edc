"""Rate limits: shared budgets in Redis, per user or client IP, 429 with Retry-After."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.homepage.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/homepage"


@pytest.fixture(autouse=True)
def _catalogue(db):
    ProductFactory()


def _statuses(client, n: int, **extra) -> list[int]:
    return [client.get(URL, **extra).status_code for _ in range(n)]


def test_anonymous_callers_are_limited_per_ip(settings):
    settings.RATE_LIMIT_READS = "3/m"
    client = APIClient()
    assert _statuses(client, 3) == [200, 200, 200]
    response = client.get(URL)
    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == "RATE_LIMITED"
    assert 1 <= int(response["Retry-After"]) <= 60
    other_ip = APIClient(REMOTE_ADDR="10.1.2.3")
    assert other_ip.get(URL).status_code == 200


def test_users_have_their_own_budgets(settings, user_client, client_for, other_user):
    settings.RATE_LIMIT_READS = "2/m"
    assert _statuses(user_client, 3) == [200, 200, 429]
    assert client_for(other_user).get(URL).status_code == 200
    assert APIClient().get(URL).status_code == 200  # same IP, but anonymous budget


def test_all_aggregation_endpoints_share_one_budget(settings):
    settings.RATE_LIMIT_READS = "3/m"
    client = APIClient()
    assert client.get(URL).status_code == 200
    assert client.get("/api/v1/products/featured").status_code == 200
    assert client.get("/api/v1/stores/featured").status_code == 200
    assert client.get("/api/v1/events/featured").status_code == 429


def test_docs_and_schema_are_not_limited(settings):
    settings.RATE_LIMIT_READS = "1/m"
    client = APIClient()
    assert [client.get("/api/schema/").status_code for _ in range(3)] == [200, 200, 200]


def test_fresh_has_a_tighter_budget(settings):
    settings.RATE_LIMIT_FRESH = "2/m"
    client = APIClient()
    assert [client.get(URL, {"fresh": "true"}).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(URL).status_code == 200  # cached reads still allowed


def test_a_client_cannot_dodge_the_limit_with_x_forwarded_for(settings):
    settings.RATE_LIMIT_READS = "2/m"
    client = APIClient()
    codes = [client.get(URL, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(3)]
    assert codes == [200, 200, 429]


def test_behind_a_trusted_proxy_the_proxys_entry_counts(settings):
    settings.RATE_LIMIT_READS = "2/m"
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()
    # The client forges entries on the left; our proxy appends the real address last.
    codes = [
        client.get(URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.7").status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    assert client.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200
    # A malformed entry falls back to the connection's address (its own budget).
    garbage = [client.get(URL, HTTP_X_FORWARDED_FOR="not-an-ip").status_code for _ in range(3)]
    assert garbage == [200, 200, 429]


def test_writes_are_limited(settings, staff_client):
    settings.RATE_LIMIT_WRITES = "1/m"
    first = staff_client.post("/api/v1/sessions", {}, format="json")
    second = staff_client.post("/api/v1/sessions", {}, format="json")
    assert first.status_code == 400 and second.status_code == 429


SUBPROCESS = """
import django
django.setup()
from django.test import Client
print(Client().get("/api/v1/homepage").status_code)
"""


def test_the_budget_is_shared_across_processes(settings):
    settings.RATE_LIMIT_READS = "2/m"
    assert _statuses(APIClient(), 2) == [200, 200]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "RATE_LIMIT_READS": "2/m",
    }
    out = subprocess.run(
        [sys.executable, "-c", SUBPROCESS], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "429"
