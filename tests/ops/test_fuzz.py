"""Property-based API fuzzing driven by the project's own OpenAPI schema (schemathesis).

Every documented operation is called over HTTP, on gunicorn, with generated
parameters and bodies (valid and invalid), as staff (so every code path is
reachable) and anonymously. No response may be a server error, and every
response must match what the schema documents: status code, content type,
headers and body. ``FUZZ_EXAMPLES`` sets the examples per operation.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory
from tests.homepage.factories import EventFactory, OfferFactory, ProductFactory, StoreFactory
from tests.servers import ROOT, gunicorn
from tests.trainers.factories import AllocationFactory, SessionFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "25")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"


@pytest.fixture
def staff_token():
    """A little of everything, so generated ids sometimes hit real rows; a staff token."""
    ProductFactory.create_batch(3)
    StoreFactory()
    EventFactory()
    OfferFactory(flash=True)
    SessionFactory(allocation=AllocationFactory())
    staff = UserFactory(username="fuzz-staff", staff=True)
    return Token.objects.create(user=staff).key


def _fuzz(base: str, tmp_path, name: str, headers: list[str]) -> dict:
    report = tmp_path / f"{name}.json"
    command = [
        str(ROOT / ".venv" / "bin" / "st"), "run", f"{base}/api/schema/", "--checks", CHECKS,
        "--max-examples", EXAMPLES, "--generation-deterministic", "--report", "json",
        "--report-json-path", str(report), "--suppress-health-check", "all",
    ]  # fmt: skip
    for header in headers:
        command += ["--header", header]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    (tmp_path.parent / f"fuzz-{name}.log").write_text(result.stdout)  # kept for inspection
    assert result.returncode == 0, result.stdout[-6000:]
    return json.loads(report.read_text()) if report.exists() else {}


def test_api_never_fails_and_matches_its_schema(staff_token, tmp_path):
    # No request-line limit here: URLs past the server's 8 KB limit would be refused by
    # gunicorn itself (414, before the application); this fuzzes the application.
    with gunicorn(connection.settings_dict["NAME"], workers=2, request_line_limit=0) as base:
        _fuzz(base, tmp_path, "staff", [f"Authorization: Token {staff_token}"])
        _fuzz(base, tmp_path, "anonymous", [])
