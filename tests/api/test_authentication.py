"""Authentication and access while the database is down or frozen.

Callers seen recently are served from the cache; others get 503
DB_CONNECTION_ERROR within the query timeout; never a 500 or a hang.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import orjson
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from api.authentication import token_cache_key
from caching.shared import shared_cache
from tests.factories import UserFactory
from tests.homepage.factories import ProductFactory
from tests.servers import FreezableProxy, gunicorn
from tests.trainers.factories import TrainerFactory


@pytest.mark.django_db
def test_a_token_is_looked_up_once_and_forgotten_when_deleted(
    client_for, django_assert_num_queries, django_capture_on_commit_callbacks
):
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert client.get(url).status_code == 200
    with django_assert_num_queries(0):  # token, owner and bootstrap all from the cache
        assert client.get(url).status_code == 200
    token = Token.objects.get(user=trainer.user)
    key = token.key
    with django_capture_on_commit_callbacks(execute=True):
        token.delete()
    assert not shared_cache.get_many([token_cache_key(key)])
    assert client.get(url).status_code == 401


@pytest.mark.django_db
def test_deactivating_a_user_stops_their_cached_token_at_once(
    client_for, django_capture_on_commit_callbacks
):
    trainer = TrainerFactory()
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert client.get(url).status_code == 200
    trainer.user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        trainer.user.save()
    assert client.get(url).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_database_down_serves_cached_bootstraps_and_503s_the_rest(client_for, database_outage):
    trainer, stranger = TrainerFactory(), UserFactory()
    ProductFactory()
    seen, unseen = client_for(trainer.user), client_for(stranger)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    assert seen.get(url).status_code == 200
    assert seen.get("/api/v1/homepage").status_code == 200

    database_outage(False)
    cached = seen.get(url)
    assert cached.status_code == 200 and cached.json()["data"]["metadata"]["fromCache"] is True
    assert seen.get("/api/v1/homepage").status_code == 200
    for response in (
        unseen.get(url),  # who is this? the database cannot say
        seen.get(url, {"fresh": "true"}),  # must be computed: the database is needed
        unseen.post("/api/v1/payout-claims", {"sessionIds": [1]}, format="json"),
    ):
        assert response.status_code == 503, response.content
        assert response.json()["errors"][0]["code"] == "DB_CONNECTION_ERROR"
        assert response["Retry-After"]


def _get(url: str, token: str) -> tuple[int, dict, float]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), time.monotonic() - started


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_frozen_database_never_hangs_a_request():
    trainer, stranger = TrainerFactory(), UserFactory()
    tokens = [Token.objects.create(user=u).key for u in (trainer.user, stranger)]
    proxy = FreezableProxy(("127.0.0.1", 5432))
    name = connection.settings_dict["NAME"]
    try:
        with gunicorn(
            name,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{proxy.port}/{name}",
            QUERY_TIMEOUT="1000",
            REQUEST_TIMEOUT="2000",
            DB_POOL_TIMEOUT_S="0.5",
        ) as base:
            url = f"{base}/api/v1/trainers/{trainer.pk}/bootstrap"
            for _ in range(4):  # both workers have seen the token (and cached the bootstrap)
                assert _get(url, tokens[0])[0] == 200
            proxy.freeze()
            status, body, elapsed = _get(url, tokens[0])
            # Served from the cache: a database lookup would have ended in a 503.
            assert (status, body["data"]["metadata"]["fromCache"]) == (200, True)
            for _ in range(3):
                status, body, elapsed = _get(url, tokens[1])
                assert status == 503 and body["errors"][0]["code"] == "DB_CONNECTION_ERROR"
                assert elapsed < 5.0  # the query timeout, not the freeze, decides
            proxy.thaw()
    finally:
        proxy.close()


@pytest.mark.django_db
def test_a_cached_bootstrap_is_one_cache_read_and_only_for_its_owner(
    client_for, django_assert_num_queries
):
    trainer, other = TrainerFactory(), TrainerFactory()
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    owner, stranger = client_for(trainer.user), client_for(other.user)
    assert owner.get(url).status_code == 200
    assert stranger.get(url).status_code == 403  # the cached copy is not theirs
    with django_assert_num_queries(0):
        assert owner.get(url).json()["data"]["metadata"]["fromCache"] is True
