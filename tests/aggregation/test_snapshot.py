"""One snapshot in parallel, and read-your-writes across processes."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from aggregation.snapshot import Snapshot
from tests.servers import gunicorn
from trainers import services
from trainers.models import Session

from tests.trainers.factories import AllocationFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 150


@pytest.fixture
def busy_trainer():
    allocation = AllocationFactory(sessions_total=SESSIONS + 10)
    start = timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        [
            Session(allocation=allocation, trainer=allocation.trainer, student=allocation.student,
                    scheduled_at=start + timedelta(hours=i))
            for i in range(SESSIONS)
        ]
    )  # fmt: skip
    return allocation


def _inconsistent_reads(client_for, allocation, reads: int) -> tuple[int, int]:
    """Complete sessions in a writer thread while reading the bootstrap; count mismatches.

    Each completion changes three sections in one transaction: the session's
    status (sessions), the allocation's sessionsUsed (allocations) and the
    trainer's sessionsCompleted (overview). A consistent read agrees on all three.
    """
    stop = threading.Event()

    def writer() -> None:
        try:
            for session in Session.objects.filter(allocation=allocation).order_by("pk"):
                if stop.is_set():
                    return
                services.session_complete(session=session)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    client = client_for(allocation.trainer.user)
    inconsistent = observed = 0
    try:
        for _ in range(reads):
            data = client.get(
                f"/api/v1/trainers/{allocation.trainer_id}/bootstrap", {"fresh": "true"}
            ).json()["data"]
            completed = sum(s["status"] == "completed" for s in data["sessions"])
            used = data["allocations"][0]["sessionsUsed"]
            performance = data["overview"]["performance"]["sessionsCompleted"]
            observed = max(observed, completed)
            inconsistent += not (completed == used == performance)
    finally:
        stop.set()
        thread.join(60)
    return inconsistent, observed


@pytest.mark.parametrize("parallel", [True, False], ids=["exported-snapshot", "one-transaction"])
def test_sections_read_one_snapshot(client_for, busy_trainer, settings, parallel):
    settings.SECTIONS_IN_PARALLEL = parallel
    inconsistent, observed = _inconsistent_reads(client_for, busy_trainer, reads=60)
    assert observed > 0  # the writer really ran during the reads
    assert inconsistent == 0


def test_without_the_snapshot_the_same_reads_disagree(
    client_for, busy_trainer, monkeypatch, settings
):
    """Control: the check above can fail. Same load, sections not sharing a snapshot."""
    from aggregation import batch

    settings.SECTIONS_IN_PARALLEL = True
    monkeypatch.setattr(
        batch, "shared_snapshot", lambda **kw: contextlib.nullcontext(Snapshot("none"))
    )
    inconsistent, observed = _inconsistent_reads(client_for, busy_trainer, reads=60)
    assert observed > 0
    assert inconsistent > 0


# --- read-your-writes across processes ------------------------------------------------


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


def test_a_mutation_is_seen_by_the_next_read_in_any_process(
    client_for, busy_trainer, other_processes
):
    trainer = busy_trainer.trainer
    token = Token.objects.create(user=trainer.user).key
    local = client_for(trainer.user)
    path = f"/api/v1/trainers/{trainer.pk}/bootstrap"
    sessions = list(Session.objects.filter(allocation=busy_trainer).order_by("pk")[:12])

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
