"""Hostile bodies: deep nesting, huge bodies and NUL characters get a 4xx envelope, never a 500."""

from __future__ import annotations

import pytest

from tests.trainers.factories import AllocationFactory, CourseFactory, TrainerFactory

pytestmark = pytest.mark.django_db

WRITE_URLS = ["/api/v1/sessions", "/api/v1/allocations", "/api/v1/payout-claims"]


def _post(client, url: str, raw: bytes):
    return client.generic("POST", url, raw, content_type="application/json")


@pytest.mark.parametrize("url", WRITE_URLS)
@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_deeply_nested_bodies_are_a_400_even_anonymously(api_client, url, opening):
    closing = b"]" if opening == b"[" else b"}"
    response = _post(api_client, url, opening * 1500 + b"1" + closing * 1500)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "VALIDATION_ERROR"


def test_nesting_within_the_limit_is_parsed_and_then_validated(staff_client):
    response = _post(staff_client, "/api/v1/sessions", b"[" * 900 + b"]" * 900)
    assert response.status_code == 400  # a list is not a session: a validation error


def test_a_body_over_the_upload_limit_is_a_413(staff_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = _post(staff_client, "/api/v1/sessions", b'{"notes": "' + b"x" * 5_000 + b'"}')
    assert response.status_code == 413
    body = response.json()
    assert body["success"] is False and body["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"


def test_nul_anywhere_in_the_json_is_a_400_naming_where(client_for):
    allocation = AllocationFactory()
    student_client = client_for(allocation.student.user)
    body = {
        "trainerId": TrainerFactory().pk,
        "studentId": allocation.student_id,
        "courseId": CourseFactory().pk,
        "schedule": {"days": ["mon", "t\u0000ue"]},
    }
    response = student_client.post("/api/v1/allocations", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "schedule.days.1"

    body["schedule"] = {"d\u0000ays": ["mon"]}
    response = student_client.post("/api/v1/allocations", body, format="json")
    assert response.status_code == 400
    assert "schedule" in response.json()["errors"][0]["field"]
