"""The OpenAPI schema and the offline docs (``api/docs.py``)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command


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
    for path in [
        "/api/v1/trainers/{trainerId}/bootstrap", "/api/v1/trainers/{trainerId}/overview",
        "/api/v1/trainers/{trainerId}/sessions", "/api/v1/trainers/{trainerId}/allocations",
        "/api/v1/trainers/{trainerId}/payout-claims", "/api/v1/students/{studentId}/bootstrap",
        "/api/v1/students/{studentId}/courses",
    ]:  # fmt: skip
        responses = paths[path]["get"]["responses"]
        assert "$ref" in str(responses["200"]) and "ErrorEnvelope" in str(responses["403"]), path
    for path, method in [
        ("/api/v1/sessions", "post"), ("/api/v1/sessions/{id}/complete", "post"),
        ("/api/v1/sessions/{id}/cancel", "post"), ("/api/v1/sessions/{id}/no-show", "post"),
        ("/api/v1/sessions/{id}/confirm", "post"), ("/api/v1/allocations", "post"),
        ("/api/v1/allocations/{id}/approve", "post"), ("/api/v1/allocations/{id}/cancel", "post"),
        ("/api/v1/allocations/{id}/status", "post"), ("/api/v1/payout-claims", "post"),
        ("/api/v1/payout-claims/{id}/status", "post"),
        ("/api/v1/trainers/{trainerId}/profile", "patch"),
        ("/api/v1/trainers/{trainerId}/performance", "patch"),
    ]:  # fmt: skip
        responses = paths[path][method]["responses"]
        assert "ErrorEnvelope" in str(responses["409"]), path
    bootstrap = schema["components"]["schemas"]["TrainerBootstrapData"]["properties"]
    assert {"overview", "sessions", "allocations", "payoutClaims", "metadata"} <= set(bootstrap)
    homepage = schema["components"]["schemas"]["HomepageResponse"]
    assert {"success", "data", "version"} <= set(homepage["properties"])
    assert "ProductItem" in schema["components"]["schemas"]


EXTERNAL = re.compile(rb"https?://(?!127\.0\.0\.1|localhost|testserver)[A-Za-z0-9.-]+")


def _external_urls(content: bytes) -> set[bytes]:
    # Links a browser would follow, not licence texts or documentation strings in a bundle.
    found = set(EXTERNAL.findall(content))
    return {u for u in found if not u.startswith((b"http://www.w3.org", b"https://www.w3.org"))}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_render_from_local_assets_only(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content
    assert _external_urls(html) == set()  # no fonts, no CDN: the docs work offline
    scripts = re.findall(rb'<script src="([^"]+)"', html)
    assert scripts
    for script in scripts:
        asset = client.get(script.decode())
        assert asset.status_code == 200
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert b"cdn.redoc.ly" not in body


def test_every_operation_has_a_summary(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) == 29
    assert all(op.get("summary") and "``" not in op["summary"] for op in operations)
