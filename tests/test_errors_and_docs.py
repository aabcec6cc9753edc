"""Error envelopes for non-API URLs, and the OpenAPI schema and offline docs."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_unknown_url_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "success": False,
        "message": "Not found.",
        "errors": [{"code": "NOT_FOUND", "message": "Not found."}],
    }


def test_schema_generates_without_warnings(tmp_path, capsys):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    for path in [
        "/api/v1/homepage",
        "/api/v1/products/featured",
        "/api/v1/products/new-arrivals",
        "/api/v1/stores/featured",
        "/api/v1/events/featured",
        "/api/v1/offers",
    ]:
        assert path in paths
        responses = paths[path]["get"]["responses"]
        assert "$ref" in str(responses["200"]), path
        assert "ErrorEnvelope" in str(responses["400"]), path
    homepage = schema["components"]["schemas"]["HomepageResponse"]
    assert {"success", "data", "version"} <= set(homepage["properties"])
    assert "ProductItem" in schema["components"]["schemas"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_render_from_local_assets(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/" in html
    asset = re.search(r'(/static/drf_spectacular_sidecar/[^"\']+\.js)', html).group(1)
    assert client.get(asset).status_code == 200
