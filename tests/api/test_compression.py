"""gzip of the responses DRF renders (``api/compression.py``): a q=0 refusal is honoured."""

from __future__ import annotations

import gzip

import orjson
import pytest

from tests.homepage.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/new-arrivals"


@pytest.mark.parametrize(
    ("accept", "compressed"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", False), ("br, gzip;q=0.0", False)],
)
def test_gzip_only_when_the_client_takes_it(api_client, accept, compressed):
    ProductFactory.create_batch(5)
    response = api_client.get(URL, HTTP_ACCEPT_ENCODING=accept)
    assert response.status_code == 200
    assert (response.get("Content-Encoding") == "gzip") is compressed
    content = gzip.decompress(response.content) if compressed else response.content
    assert len(orjson.loads(content)["data"]["items"]) == 5
    assert "Accept-Encoding" in response["Vary"]
