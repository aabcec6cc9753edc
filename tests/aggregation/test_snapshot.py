"""One database snapshot shared by sections run in parallel (``aggregation/snapshot.py``)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import connection

from aggregation.snapshot import Snapshot
from tests.trainers.factories import allocation_with_sessions
from trainers import services
from trainers.models import Session

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS = 150


@pytest.fixture
def busy_trainer():
    return allocation_with_sessions(SESSIONS)


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


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [True, False], ids=["exported-snapshot", "one-transaction"])
def test_sections_read_one_snapshot(client_for, busy_trainer, settings, parallel):
    settings.SECTIONS_IN_PARALLEL = parallel
    inconsistent, observed = _inconsistent_reads(client_for, busy_trainer, reads=60)
    assert observed > 0  # the writer really ran during the reads
    assert inconsistent == 0


@pytest.mark.slow
def test_without_the_snapshot_the_same_reads_disagree(
    client_for, busy_trainer, monkeypatch, settings
):
    """Control: the check above can fail. Same load, sections not sharing a snapshot."""
    from aggregation import compute

    settings.SECTIONS_IN_PARALLEL = True
    monkeypatch.setattr(
        compute, "shared_snapshot", lambda **kw: contextlib.nullcontext(Snapshot("none"))
    )
    for _ in range(5):  # on a busy machine the writer may need more reads to interleave
        inconsistent, observed = _inconsistent_reads(client_for, busy_trainer, reads=60)
        if inconsistent:
            break
    assert observed > 0
    assert inconsistent > 0


@pytest.mark.parametrize("bad", ["", "x' OR '1", "0000-0001; RESET ALL", "00000003-0000001B-1'"])
def test_only_snapshot_ids_reach_the_set_statement(bad):
    # SET takes no bound parameters: the id is written into the statement.
    from aggregation.snapshot import import_snapshot

    with pytest.raises(ValueError, match="Not a snapshot id"):
        import_snapshot(bad)
