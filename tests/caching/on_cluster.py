"""Django on the listener tests' private cluster: the steps a consistency run takes there.

The tests' own Django is on the suite's database. The consistency run needs the
app's querysets and the consistency monitor on the listened cluster, so it
starts one ``manage.py shell`` there running ``serve`` and sends it steps: one
call a line on stdin, its result one JSON line on stdout (after ``MARK``: log
lines may share the stream). One process for the whole run, so a step costs no
Django start-up.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

import orjson
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from caching import capture, consistency

MARK = "\x1eon-cluster "
SAMPLE = 100  # more than the run ever tracks: the monitor compares every tracked entry
TEXT = ("CharField", "TextField")


def serve() -> None:
    """Answer steps from stdin until it closes."""
    for line in sys.stdin:
        call = orjson.loads(line)
        try:
            answer = {"result": STEPS[call["step"]](**call["kwargs"])}
        except Exception:  # the test raises it, with this traceback
            answer = {"error": traceback.format_exc()}
        sys.stdout.write(MARK + orjson.dumps(answer).decode() + "\n")
        sys.stdout.flush()


def people() -> dict[str, Any]:
    """Whose pages the run reads: the first approved allocation's trainer and student.

    Also a shopper with category affinities (their personalised homepage) and
    a staff user's token (staff may read every page and make every write).
    """
    from homepage.models import CategoryAffinity
    from trainers.models import Allocation

    allocation = Allocation.objects.filter(status="approved").order_by("pk").first()
    assert allocation is not None, "the demo data has no approved allocation"
    staff = get_user_model().objects.filter(is_staff=True).order_by("pk").first()
    assert staff is not None, "the demo data has no staff user"
    shopper = CategoryAffinity.objects.order_by("user_id").values_list("user_id", flat=True)[0]
    return {
        "allocation": allocation.pk,
        "trainer": allocation.trainer_id,
        "student": allocation.student_id,
        "shopper": shopper,
        "staff": staff.get_username(),
        "token": Token.objects.get_or_create(user=staff)[0].key,
    }


def _target(label: str, pk: Any, field: str, choices: list[Any] | None = None) -> dict[str, Any]:
    """One row of one watched model, and a column of it the pages show."""
    model = apps.get_model(label)
    column = model._meta.get_field(field)
    kind = "choice" if choices else "text" if column.get_internal_type() in TEXT else "number"
    return {"model": label, "table": model._meta.db_table, "column": column.column,
            "field": column.attname, "pk": int(pk), "kind": kind, "choices": choices or [],
            "featured": getattr(model.objects.get(pk=pk), "featured", None)}  # fmt: skip


def targets(*, allocation: int, shown: dict[str, int], category: str, rounds: int) -> dict:
    """A row of every watched model the cached pages show, and sessions the API may complete.

    ``shown``: storefront rows the homepage shows (the newest product, the
    first event and offer, the offer's store, the shopper). The training rows
    are the allocation's: its trainer, student, course, a session of both
    ahead, the trainer's document, claim and claimed session, the student's
    progress, achievement and course progress. ``watched`` is every watched
    table, so the test can check that none is left out.
    """
    from homepage.models import CategoryAffinity
    from students.models import Achievement, CourseProgress, StudentProgress
    from trainers.models import (
        Allocation,
        PayoutClaim,
        PayoutClaimSession,
        Session,
        TrainerDocument,
        TrainerPerformance,
    )

    one = Allocation.objects.get(pk=allocation)
    trainer, student = one.trainer_id, one.student_id
    ahead = Session.objects.filter(
        allocation=one, status="scheduled", scheduled_at__gt=timezone.now()
    )
    session = ahead.order_by("scheduled_at", "id").first()
    assert session is not None, "the allocation has no session ahead"
    claims = list(PayoutClaim.objects.filter(trainer_id=trainer).order_by("pk")[:2])
    claimed = PayoutClaimSession.objects.filter(claim__in=claims).order_by("pk").first()
    assert len(claims) == 2 and claimed is not None, "the trainer has no two payout claims"
    other_claim = next(c.pk for c in claims if c.pk != claimed.claim_id)
    affinity = CategoryAffinity.objects.get(user_id=shown["shopper"], category=category)

    def first(model: Any, **lookup: Any) -> int:
        return model.objects.filter(**lookup).order_by("pk").values_list("pk", flat=True)[0]

    rows = [
        _target("homepage.Product", shown["product"], "name"),
        _target("homepage.Store", shown["store"], "name"),
        _target("homepage.Event", shown["event"], "title"),
        _target("homepage.Offer", shown["offer"], "title"),
        # The category of the shopper's first "just for you": dropped (0), then first (5).
        _target("homepage.CategoryAffinity", affinity.pk, "score", [0.0, 5.0]),
        _target("trainers.Trainer", trainer, "name"),  # shown to their students too
        _target("trainers.Student", student, "name"),  # shown to their trainers too
        _target("trainers.TrainerPerformance", first(TrainerPerformance, trainer_id=trainer), "minutes_delivered"),
        _target("trainers.TrainerDocument", first(TrainerDocument, trainer_id=trainer), "title"),
        _target("trainers.Course", one.course_id, "title"),
        _target("trainers.Allocation", one.pk, "notes"),
        _target("trainers.Session", session.pk, "cancel_reason"),
        _target("trainers.PayoutClaim", claims[0].pk, "note"),
        # Moved to the trainer's other claim and back: the claims list its sessions.
        _target("trainers.PayoutClaimSession", claimed.pk, "claim_id", [other_claim, claimed.claim_id]),
        _target("students.StudentProgress", first(StudentProgress, student_id=student), "sessions_completed"),
        _target("students.Achievement", first(Achievement, student_id=student), "title"),
        _target("students.CourseProgress", first(CourseProgress, student_id=student), "sessions_completed"),
    ]  # fmt: skip
    completable = ahead.exclude(pk=session.pk).order_by("-scheduled_at", "-id")[:rounds]
    return {
        "rows": rows,
        "complete": [str(pk) for pk in completable.values_list("pk", flat=True)],
        "watched": sorted(capture.watched_models()),
    }


def update_each(*, rows: list[dict[str, Any]], values: list[Any]) -> None:
    """``QuerySet.update()`` of each row, each in its own transaction (the querysets' own)."""
    for row, value in zip(rows, values, strict=True):
        apps.get_model(row["model"]).objects.filter(pk=row["pk"]).update(**{row["field"]: value})


def update_and_write_behind(
    *, update: dict[str, Any], value: Any, raw: dict[str, Any], raw_value: Any
) -> None:
    """One transaction: a ``QuerySet.update()`` (announced) and a raw ``UPDATE`` beside it.

    The app announces and bumps the first row's tags; only the listener can
    see that the second row changed too.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        apps.get_model(update["model"]).objects.filter(pk=update["pk"]).update(
            **{update["field"]: value}
        )
        cursor.execute(f'UPDATE "{raw["table"]}" SET "{raw["column"]}" = %s WHERE id = %s',  # noqa: S608
                       [raw_value, raw["pk"]])  # fmt: skip


def verify() -> dict[str, Any]:
    """One pass of the consistency monitor over every tracked entry."""
    report = consistency.verify(SAMPLE)
    return {
        "sampled": report.sampled,
        "inconsistent": report.inconsistent,
        "skipped": report.skipped,
    }


STEPS: dict[str, Callable[..., Any]] = {
    step.__name__: step for step in (people, targets, update_each, update_and_write_behind, verify)
}
