"""Trainer and student endpoints over HTTP (``trainers/views.py``, ``students/views.py``).

Shapes, mutations, permissions, caching, and read-your-writes across processes.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from students.models import Achievement, CourseProgress
from tests.decoding import decoded
from tests.factories import UserFactory
from tests.servers import gunicorn
from tests.students.factories import StudentFactory
from trainers.models import PayoutClaim, Session

from .factories import (
    AllocationFactory,
    CourseFactory,
    SessionFactory,
    TrainerDocumentFactory,
    TrainerFactory,
    allocation_with_sessions,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    trainer = TrainerFactory()
    TrainerDocumentFactory(trainer=trainer)
    allocation = AllocationFactory(trainer=trainer)
    AllocationFactory(trainer=trainer, status="pending")
    past = SessionFactory(allocation=allocation, scheduled_at=timezone.now() - timedelta(days=1))
    upcoming = SessionFactory(allocation=allocation)
    return {"trainer": trainer, "allocation": allocation, "student": allocation.student,
            "past": past, "upcoming": upcoming}  # fmt: skip


def _bootstrap(client, kind: str, pk: int, **params):
    response = client.get(f"/api/v1/{kind}/{pk}/bootstrap", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_trainer_bootstrap_shape(client_for, world):
    trainer = world["trainer"]
    body = _bootstrap(client_for(trainer.user), "trainers", trainer.pk)
    assert body["success"] is True
    data = body["data"]
    assert list(data) == ["overview", "sessions", "allocations", "payoutClaims", "metadata"]
    assert set(data["overview"]) == {"profile", "performance", "documents", "location"}
    assert data["overview"]["profile"]["id"] == str(trainer.pk)
    assert len(data["overview"]["documents"]) == 1
    assert [s["id"] for s in data["sessions"]] == [str(world["upcoming"].pk), str(world["past"].pk)]
    assert [a["status"] for a in data["allocations"]] == ["approved"]  # approved only
    assert data["allocations"][0]["student"]["id"] == str(world["student"].pk)
    assert data["payoutClaims"] == []
    metadata = data["metadata"]
    assert metadata["cacheKey"] == f"trainer:bootstrap:{trainer.pk}"
    assert metadata["userId"] == str(trainer.user_id)
    assert metadata["snapshot"] == {"mode": "single-transaction", "id": None}  # the default
    assert metadata["fromCache"] is False
    again = _bootstrap(client_for(trainer.user), "trainers", trainer.pk)
    assert again["data"]["metadata"]["fromCache"] is True
    assert {k: v for k, v in again["data"].items() if k != "metadata"} == {
        k: v for k, v in data.items() if k != "metadata"
    }


def test_sections_in_the_pool_share_one_exported_snapshot(client_for, world, settings):
    settings.SECTIONS_IN_PARALLEL = True
    trainer = world["trainer"]
    body = _bootstrap(client_for(trainer.user), "trainers", trainer.pk, fresh="true")
    snapshot = body["data"]["metadata"]["snapshot"]
    assert snapshot["mode"] == "exported" and snapshot["id"]
    assert [s["id"] for s in body["data"]["sessions"]] == [
        str(world["upcoming"].pk),
        str(world["past"].pk),
    ]


def test_trainer_sessions_are_the_200_most_recent(client_for):
    allocation = AllocationFactory(sessions_total=500)
    start = timezone.now() - timedelta(days=300)
    Session.objects.bulk_create(
        [
            Session(allocation=allocation, trainer=allocation.trainer, student=allocation.student,
                    scheduled_at=start + timedelta(hours=i))
            for i in range(230)
        ]
    )  # fmt: skip
    sessions = _bootstrap(client_for(allocation.trainer.user), "trainers", allocation.trainer_id)[
        "data"
    ]["sessions"]
    assert len(sessions) == 200
    times = [s["scheduledAt"] for s in sessions]
    assert times == sorted(times, reverse=True)


def test_student_bootstrap_shape(client_for, world):
    student = world["student"]
    body = _bootstrap(client_for(student.user), "students", student.pk)
    data = body["data"]
    assert list(data) == ["overview", "sessions", "allocations", "courses", "metadata"]
    assert set(data["overview"]) == {"profile", "progress", "achievements"}
    assert [s["id"] for s in data["sessions"]] == [str(world["upcoming"].pk)]  # upcoming only
    assert [a["id"] for a in data["allocations"]] == [str(world["allocation"].pk)]  # active only
    assert data["metadata"]["cacheKey"] == f"student:bootstrap:{student.pk}"


@pytest.mark.parametrize(
    ("kind", "section", "key"),
    [
        ("trainers", "overview", "overview"),
        ("trainers", "sessions", "sessions"),
        ("trainers", "allocations", "allocations"),
        ("trainers", "payout-claims", "payoutClaims"),
        ("students", "overview", "overview"),
        ("students", "sessions", "sessions"),
        ("students", "allocations", "allocations"),
        ("students", "courses", "courses"),
    ],
)
def test_individual_endpoints_match_the_bootstrap(client_for, world, kind, section, key):
    subject = world["trainer"] if kind == "trainers" else world["student"]
    client = client_for(subject.user)
    single = client.get(f"/api/v1/{kind}/{subject.pk}/{section}")
    assert single.status_code == 200
    assert single.json()["data"] == _bootstrap(client, kind, subject.pk)["data"][key]


def test_completing_a_session_is_seen_by_both_bootstraps(client_for, world):
    trainer, student, session = world["trainer"], world["student"], world["upcoming"]
    trainer_client, student_client = client_for(trainer.user), client_for(student.user)
    _bootstrap(trainer_client, "trainers", trainer.pk)
    _bootstrap(student_client, "students", student.pk)

    response = trainer_client.post(
        f"/api/v1/sessions/{session.pk}/complete", {"rating": 5}, format="json"
    )
    assert response.status_code == 200 and response.json()["data"]["status"] == "completed"

    trainer_view = _bootstrap(trainer_client, "trainers", trainer.pk)["data"]
    student_view = _bootstrap(student_client, "students", student.pk)["data"]
    assert trainer_view["metadata"]["fromCache"] is False
    assert trainer_view["overview"]["performance"]["sessionsCompleted"] == 1
    assert trainer_view["allocations"][0]["sessionsUsed"] == 1
    assert student_view["overview"]["progress"]["sessionsCompleted"] == 1
    assert student_view["sessions"] == []
    assert student_view["courses"][0]["sessionsCompleted"] == 1


def test_every_mutation_endpoint_invalidates(client_for, staff_client, world):
    trainer, student = world["trainer"], world["student"]
    t, s = client_for(trainer.user), client_for(student.user)
    soon = (timezone.now() + timedelta(days=3)).isoformat()
    course = CourseFactory()
    steps = [
        (t, "post", "/api/v1/sessions", {"allocationId": world["allocation"].pk, "scheduledAt": soon}, 201),
        (s, "post", f"/api/v1/sessions/{world['upcoming'].pk}/confirm", None, 200),
        (t, "post", f"/api/v1/sessions/{world['upcoming'].pk}/no-show", None, 200),
        (s, "post", "/api/v1/allocations", {"trainerId": trainer.pk, "studentId": student.pk, "courseId": course.pk}, 201),
        (t, "patch", f"/api/v1/trainers/{trainer.pk}/profile", {"bio": "Changed"}, 200),
        (staff_client, "patch", f"/api/v1/trainers/{trainer.pk}/performance", {"earningsTotal": "12.50"}, 200),
    ]  # fmt: skip
    for client, method, url, payload, expected in steps:
        _bootstrap(t, "trainers", trainer.pk)
        _bootstrap(s, "students", student.pk)
        response = getattr(client, method)(url, payload, format="json")
        assert response.status_code == expected, (url, response.content)
        assert _bootstrap(t, "trainers", trainer.pk)["data"]["metadata"]["fromCache"] is False, url
        # The student's bootstrap shows no trainer performance figures.
        student_stale = not url.endswith("/performance")
        student_view = _bootstrap(s, "students", student.pk)["data"]["metadata"]
        assert student_view["fromCache"] is not student_stale, url


def test_allocation_and_payout_flow(client_for, staff_client, world):
    trainer = world["trainer"]
    t = client_for(trainer.user)
    pending = trainer.allocations.get(status="pending")
    assert (
        t.post(f"/api/v1/allocations/{pending.pk}/approve").json()["data"]["status"] == "approved"
    )
    conflict = t.post(f"/api/v1/allocations/{pending.pk}/approve")
    assert conflict.status_code == 409 and conflict.json()["errors"][0]["code"] == "CONFLICT"
    assert (
        t.post(
            f"/api/v1/allocations/{pending.pk}/status", {"status": "completed"}, format="json"
        ).status_code
        == 200
    )

    t.post(f"/api/v1/sessions/{world['past'].pk}/complete", {}, format="json")
    claim = t.post("/api/v1/payout-claims", {"sessionIds": [world["past"].pk]}, format="json")
    assert claim.status_code == 201 and claim.json()["data"]["amount"] == 40.0
    twice = t.post("/api/v1/payout-claims", {"sessionIds": [world["past"].pk]}, format="json")
    assert twice.status_code == 409
    claim_id = claim.json()["data"]["id"]
    assert (
        t.post(
            f"/api/v1/payout-claims/{claim_id}/status", {"status": "approved"}, format="json"
        ).status_code
        == 403
    )
    approved = staff_client.post(
        f"/api/v1/payout-claims/{claim_id}/status", {"status": "approved"}, format="json"
    )
    assert approved.json()["data"]["status"] == "approved"
    claims = _bootstrap(t, "trainers", trainer.pk)["data"]["payoutClaims"]
    assert [c["status"] for c in claims] == ["approved"]


def test_invalid_transitions_are_409(client_for, world):
    t = client_for(world["trainer"].user)
    session = world["upcoming"]
    assert (
        t.post(f"/api/v1/sessions/{session.pk}/cancel", {"reason": "x"}, format="json").status_code
        == 200
    )
    response = t.post(f"/api/v1/sessions/{session.pk}/complete", {}, format="json")
    assert response.status_code == 409
    assert response.json() == {
        "success": False,
        "message": "A cancelled session cannot be completed.",
        "errors": [{"code": "CONFLICT", "message": "A cancelled session cannot be completed."}],
    }
    cancelled = AllocationFactory(trainer=world["trainer"], status="cancelled")
    assert t.post(f"/api/v1/allocations/{cancelled.pk}/approve").status_code == 409


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/sessions", {"allocationId": "x", "scheduledAt": "2030-01-01T10:00:00Z"}, "allocationId"),
        ("/api/v1/sessions", {"allocationId": 1, "scheduledAt": "soon"}, "scheduledAt"),
        ("/api/v1/sessions", {"allocationId": 1, "scheduledAt": "2030-01-01T10:00:00Z", "durationMinutes": 5}, "durationMinutes"),
        ("/api/v1/allocations", {"trainerId": 1, "studentId": 1}, "courseId"),
        ("/api/v1/payout-claims", {"sessionIds": []}, "sessionIds"),
        ("/api/v1/payout-claims", {"sessionIds": ["a"]}, "sessionIds.0"),
    ],
)  # fmt: skip
def test_bad_payloads_are_400(client_for, world, url, payload, field):
    response = client_for(world["trainer"].user).post(url, payload, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_bad_bodies_are_400(client_for, world):
    t = client_for(world["trainer"].user)
    url = f"/api/v1/sessions/{world['upcoming'].pk}/complete"
    assert t.post(url, {"rating": 9}, format="json").status_code == 400
    raw = t.post(url, "{not json", content_type="application/json")
    assert raw.status_code == 400 and raw.json()["errors"][0]["code"] == "VALIDATION_ERROR"
    empty = t.patch(f"/api/v1/trainers/{world['trainer'].pk}/profile", {}, format="json")
    assert empty.status_code == 400


# --- who may read and write ---------------------------------------------------------


def test_reads_need_authentication(api_client, world):
    for url in [f"/api/v1/trainers/{world['trainer'].pk}/bootstrap",
                f"/api/v1/students/{world['student'].pk}/bootstrap",
                f"/api/v1/trainers/{world['trainer'].pk}/sessions"]:  # fmt: skip
        response = api_client.get(url)
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "NOT_AUTHENTICATED"


def test_nobody_reads_someone_elses_data_or_learns_it_exists(client_for, world):
    other_trainer = TrainerFactory()
    stranger = client_for(UserFactory())
    student_client = client_for(world["student"].user)
    trainer_id, student_id = world["trainer"].pk, world["student"].pk
    missing = 987654
    for client in (stranger, client_for(other_trainer.user)):
        for url in [f"/api/v1/trainers/{trainer_id}/bootstrap",
                    f"/api/v1/trainers/{missing}/bootstrap",
                    f"/api/v1/students/{student_id}/bootstrap",
                    f"/api/v1/students/{missing}/courses"]:  # fmt: skip
            assert client.get(url).status_code == 403, url
    assert student_client.get(f"/api/v1/trainers/{trainer_id}/overview").status_code == 403


def test_staff_read_anything_and_get_404_for_missing(staff_client, world):
    assert staff_client.get(f"/api/v1/trainers/{world['trainer'].pk}/bootstrap").status_code == 200
    assert staff_client.get(f"/api/v1/students/{world['student'].pk}/bootstrap").status_code == 200
    assert staff_client.get("/api/v1/trainers/987654/bootstrap").status_code == 404


def test_nobody_changes_someone_elses_data(client_for, world):
    stranger = client_for(TrainerFactory().user)
    student = client_for(world["student"].user)
    session = world["upcoming"]
    assert (
        stranger.post(f"/api/v1/sessions/{session.pk}/complete", {}, format="json").status_code
        == 403
    )
    assert stranger.post("/api/v1/sessions/987654/complete", {}, format="json").status_code == 403
    assert (
        student.post(f"/api/v1/sessions/{session.pk}/complete", {}, format="json").status_code
        == 403
    )
    assert student.post(f"/api/v1/allocations/{world['allocation'].pk}/approve").status_code == 403
    assert (
        stranger.patch(
            f"/api/v1/trainers/{world['trainer'].pk}/profile", {"bio": "x"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client_for(world["trainer"].user)
        .patch(
            f"/api/v1/trainers/{world['trainer'].pk}/performance",
            {"sessionsCompleted": 9},
            format="json",
        )
        .status_code
        == 403
    )  # staff only
    other_student = StudentFactory()
    request = {
        "trainerId": world["trainer"].pk,
        "studentId": other_student.pk,
        "courseId": CourseFactory().pk,
    }
    assert student.post("/api/v1/allocations", request, format="json").status_code == 403
    # A trainer claiming another trainer's session is told nothing about it: to them it
    # is an unknown session (400), never a conflict that would confirm it exists.
    claim = stranger.post(
        "/api/v1/payout-claims", {"sessionIds": [world["past"].pk]}, format="json"
    )
    assert claim.status_code == 400
    assert claim.json() == {
        "success": False,
        "message": "Unknown sessions for this trainer.",
        "errors": [
            {
                "code": "VALIDATION_ERROR",
                "field": "sessionIds",
                "message": "Unknown sessions for this trainer.",
            }
        ],
    }
    assert not PayoutClaim.objects.exists()
    assert Session.objects.get(pk=session.pk).status == "scheduled"


def test_a_trainer_cannot_claim_another_trainers_sessions(client_for, world):
    stranger_trainer = TrainerFactory()
    response = client_for(stranger_trainer.user).post(
        "/api/v1/payout-claims", {"sessionIds": [world["past"].pk]}, format="json"
    )
    assert response.status_code == 400  # unknown sessions for this trainer
    assert (
        client_for(stranger_trainer.user)
        .post(
            "/api/v1/payout-claims",
            {"trainerId": world["trainer"].pk, "sessionIds": [world["past"].pk]},
            format="json",
        )
        .status_code
        == 403
    )


# --- read-your-writes across processes ---------------------------------------------


@pytest.fixture
def other_processes():
    """Gunicorn (two worker processes) on the test database and the suite's Redis."""
    with gunicorn(connection.settings_dict["NAME"]) as base:
        yield base


def _remote(base: str, token: str, path: str, body: dict | None = None, method: str = "GET"):
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def busy_allocation():
    return allocation_with_sessions(12)


@pytest.mark.slow
def test_a_mutation_is_seen_by_the_next_read_in_any_process(
    client_for, busy_allocation, other_processes
):
    trainer = busy_allocation.trainer
    token = Token.objects.create(user=trainer.user).key
    local = client_for(trainer.user)
    path = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    sessions = list(Session.objects.filter(allocation=busy_allocation).order_by("pk")[:12])

    for i, session in enumerate(sessions[:6], start=1):
        for _ in range(3):  # warm both server processes' caches
            _remote(other_processes, token, path)
        done = local.post(f"/api/v1/sessions/{session.pk}/complete", {}, format="json")
        assert done.status_code == 200
        remote = _remote(other_processes, token, path)["data"]
        assert remote["overview"]["performance"]["sessionsCompleted"] == i
        assert remote["allocations"][0]["sessionsUsed"] == i

    for i, session in enumerate(sessions[6:], start=7):
        local.get(path)  # cached here
        _remote(other_processes, token, f"/api/v1/sessions/{session.pk}/complete", {}, "POST")
        data = local.get(path).json()["data"]
        assert data["overview"]["performance"]["sessionsCompleted"] == i
    bio = _remote(
        other_processes, token, f"/api/v1/trainers/{trainer.pk}/profile", {"bio": "remote"}, "PATCH"
    )
    assert bio["data"]["bio"] == "remote"
    assert local.get(path).json()["data"]["overview"]["profile"]["bio"] == "remote"


# --- section versions, known=, encodings -------------------------------------------

TRAINER_SECTIONS = ["overview", "sessions", "allocations", "payoutClaims"]
STUDENT_SECTIONS = ["overview", "sessions", "allocations", "courses"]


def _change_trainer_bio(world, client_for):
    trainer = world["trainer"]
    response = client_for(trainer.user).patch(
        f"/api/v1/trainers/{trainer.pk}/profile", {"bio": "Now teaching pilates"}, format="json"
    )
    assert response.status_code == 200


def _save(instance, **changes):
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.save()  # the receivers invalidate, as for any write


# Each write changes exactly one section of that bootstrap.
BOOTSTRAP_WRITES = {
    ("trainers", "overview"): _change_trainer_bio,
    ("trainers", "sessions"): lambda w, _: _save(w["past"], cancel_reason="moved"),
    ("trainers", "allocations"): lambda w, _: _save(w["allocation"], notes="Mondays only"),
    ("trainers", "payoutClaims"): lambda w, _: PayoutClaim.objects.create(
        trainer=w["trainer"], amount=Decimal("40.00")
    ),
    ("students", "overview"): lambda w, _: Achievement.objects.create(
        student=w["student"], code="early-bird", title="Early bird"
    ),
    ("students", "sessions"): lambda w, _: _save(w["upcoming"], cancel_reason="moved"),
    ("students", "allocations"): lambda w, _: _save(w["allocation"], notes="Mondays only"),
    ("students", "courses"): lambda w, _: CourseProgress.objects.create(
        student=w["student"], course=w["allocation"].course, sessions_total=10,
        status=CourseProgress.Status.COMPLETED,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("kind", "section"), list(BOOTSTRAP_WRITES))
def test_a_version_changes_with_its_section_only(client_for, world, kind, section):
    subject = world["trainer"] if kind == "trainers" else world["student"]
    client = client_for(subject.user)
    first = _bootstrap(client, kind, subject.pk)["data"]["metadata"]["sectionVersions"]
    assert list(first) == (TRAINER_SECTIONS if kind == "trainers" else STUDENT_SECTIONS)
    recomputed = _bootstrap(client, kind, subject.pk, fresh="true")["data"]["metadata"]
    assert recomputed["fromCache"] is False and recomputed["sectionVersions"] == first
    BOOTSTRAP_WRITES[kind, section](world, client_for)
    after = _bootstrap(client, kind, subject.pk)["data"]["metadata"]
    assert after["fromCache"] is False
    assert {s for s in first if after["sectionVersions"][s] != first[s]} == {section}


def test_known_after_a_profile_change_returns_only_the_overview(client_for, world):
    trainer = world["trainer"]
    client = client_for(trainer.user)
    before = _bootstrap(client, "trainers", trainer.pk)["data"]
    versions = before["metadata"]["sectionVersions"]
    known = ",".join(f"{s}:{v}" for s, v in versions.items())
    unchanged = _bootstrap(client, "trainers", trainer.pk, known=known)["data"]
    assert unchanged["metadata"]["fromCache"] is True
    assert {s: unchanged[s] for s in TRAINER_SECTIONS} == {
        s: {"id": s, "notModified": True, "version": v} for s, v in versions.items()
    }
    _change_trainer_bio(world, client_for)
    after = _bootstrap(client, "trainers", trainer.pk, known=known)["data"]
    assert [s for s in TRAINER_SECTIONS if "notModified" not in (after[s] or {})] == ["overview"]
    assert after["overview"]["profile"]["bio"] == "Now teaching pilates"
    merged = {s: before[s] if after[s].get("notModified") else after[s] for s in TRAINER_SECTIONS}
    full = _bootstrap(client, "trainers", trainer.pk)["data"]
    assert merged == {s: full[s] for s in TRAINER_SECTIONS}
    assert after["metadata"]["snapshot"] == full["metadata"]["snapshot"]
    assert after["metadata"]["bodyVersion"] == full["metadata"]["bodyVersion"]


def test_known_with_the_etag_held_is_a_304_until_a_section_changes(client_for, world):
    trainer = world["trainer"]
    client = client_for(trainer.user)
    url = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    whole = client.get(url)
    before = whole.json()["data"]
    known = ",".join(f"{s}:{v}" for s, v in before["metadata"]["sectionVersions"].items())
    # The ETag of a known= answer is that of the copy the client holds once merged.
    assert client.get(url, {"known": known})["ETag"] == whole["ETag"]
    unchanged = client.get(url, {"known": known}, HTTP_IF_NONE_MATCH=whole["ETag"])
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged["ETag"] == whole["ETag"]
    _change_trainer_bio(world, client_for)
    changed = client.get(url, {"known": known}, HTTP_IF_NONE_MATCH=whole["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != whole["ETag"]
    after = changed.json()["data"]
    assert [s for s in TRAINER_SECTIONS if "notModified" not in after[s]] == ["overview"]
    merged = {s: before[s] if after[s].get("notModified") else after[s] for s in TRAINER_SECTIONS}
    now = client.get(url)
    assert now["ETag"] == changed["ETag"]  # names the merged copy: the whole body
    assert merged == {s: now.json()["data"][s] for s in TRAINER_SECTIONS}


def test_a_version_never_unlocks_another_subjects_data(client_for, world, staff_client):
    mine, other = world["trainer"], TrainerFactory()
    mine_client, other_client = client_for(mine.user), client_for(other.user)
    ours = _bootstrap(mine_client, "trainers", mine.pk)["data"]
    theirs = _bootstrap(other_client, "trainers", other.pk)["data"]
    assert ours["payoutClaims"] == theirs["payoutClaims"] == []  # equal content...
    mine_versions = ours["metadata"]["sectionVersions"]
    # ...but versions are per subject, so none matches another subject's section.
    assert not set(mine_versions.values()) & set(theirs["metadata"]["sectionVersions"].values())
    known = ",".join(f"{s}:{v}" for s, v in mine_versions.items())
    sent = _bootstrap(other_client, "trainers", other.pk, known=known)["data"]
    assert sent["payoutClaims"] == [] and sent["sessions"] == theirs["sessions"]
    # Staff see the subject's own versions (the same cached entry).
    assert _bootstrap(staff_client, "trainers", mine.pk)["data"]["metadata"]["sectionVersions"] == (
        mine_versions
    )


@pytest.mark.parametrize(
    "known", ["overview", "nope:abc", "sessions:", "sessions:a/b", "overview:a,overview:b"]
)
def test_a_malformed_known_is_400_naming_the_item(client_for, world, known):
    trainer = world["trainer"]
    client = client_for(trainer.user)
    _bootstrap(client, "trainers", trainer.pk)  # cached: the fast path must reject it too
    response = client.get(f"/api/v1/trainers/{trainer.pk}/bootstrap", {"known": known})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("known", "VALIDATION_ERROR")
    assert known.split(",")[0].split(":")[0] in error["message"]


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_every_encoding_decodes_to_the_same_bootstrap(client_for, world, coding):
    student = world["student"]
    client = client_for(student.user)
    url = f"/api/v1/students/{student.pk}/bootstrap"
    plain = _bootstrap(client, "students", student.pk)["data"]
    response = client.get(url, HTTP_ACCEPT_ENCODING=coding)
    assert response["Content-Encoding"] == coding
    body = decoded(response)["data"]
    assert {s: body[s] for s in STUDENT_SECTIONS} == {s: plain[s] for s in STUDENT_SECTIONS}
    version = plain["metadata"]["sectionVersions"]["courses"]
    part = client.get(url, {"known": f"courses:{version}"}, HTTP_ACCEPT_ENCODING=coding)
    sections = decoded(part)["data"]
    assert sections["courses"] == {"id": "courses", "notModified": True, "version": version}
    assert sections["overview"] == plain["overview"]
