"""Redis going away and coming back, on a Redis server this test starts itself."""

from __future__ import annotations

import time

import pytest

from homepage.models import Product
from tests.homepage.factories import ProductFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.storefront]
URL = "/api/v1/homepage"


def _timed_get(client, *args, **kwargs):
    started = time.monotonic()
    response = client.get(*args, **kwargs)
    return response, time.monotonic() - started


def test_redis_down_then_back(api_client, user_client, own_redis):
    product = ProductFactory(name="before")
    assert api_client.get(URL).status_code == 200
    assert any(b"homepage:anonymous:v1" in k for k in own_redis.stored_keys())

    own_redis.stop()
    responses = [_timed_get(api_client, URL) for _ in range(5)]
    personal = [_timed_get(user_client, URL) for _ in range(3)]
    assert [r.status_code for r, _ in responses + personal] == [200] * 8
    # No request hangs on socket timeouts: the breaker fails fast.
    assert max(t for _, t in responses + personal) < 2.0

    # A write while Redis is away still invalidates in this process...
    Product.objects.filter(pk=product.pk).update(name="during outage")
    body = user_client.get(URL).json()
    assert body["data"]["sections"]["justForYou"]["items"][0]["name"] == "during outage"

    own_redis.start()  # an empty Redis on the same port

    def redis_used_again() -> bool:
        api_client.get(URL)
        return any(b"homepage:anonymous:v1" in k for k in own_redis.stored_keys())

    wait_until(redis_used_again, timeout=10, message="the service did not return to Redis")
    # ...and is replayed to Redis once it is back.
    assert any(b"tag:products" in k for k in own_redis.stored_keys())
    assert wait_until(lambda: api_client.get(URL).json()["data"]["metadata"]["fromCache"])
