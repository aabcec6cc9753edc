"""Unknown URLs answer in the error envelope (``api/errors.py``), whatever the method."""

from __future__ import annotations

import pytest
from django.test import Client


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


@pytest.mark.django_db
def test_unknown_api_urls_are_json_even_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/no-such-thing/at-all")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_unknown_api_urls_are_json_for_every_method(method):
    client = Client(enforce_csrf_checks=True)  # as a real client: no CSRF exemption
    response = getattr(client, method)("/api/v1/sessions/%C2%84/complete")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"
