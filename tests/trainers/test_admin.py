"""The admin follows the domain's rules: derived figures read-only, statuses through services."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.students.factories import StudentFactory
from trainers.models import PayoutClaim, Session, Trainer

from .factories import AllocationFactory, SessionFactory, TrainerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def _claim(status: str = "pending") -> PayoutClaim:
    session = SessionFactory(status="completed")
    claim = PayoutClaim.objects.create(trainer=session.trainer, amount=40, status=status)
    claim.claimed.create(session=session)
    return claim


def _act(staff, model: str, action: str, ids: list[int]) -> list[str]:
    response = staff.post(
        reverse(f"admin:trainers_{model}_changelist"),
        {"action": action, "_selected_action": ids},
        follow=True,
    )
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_payout_claims_move_only_along_the_services_transitions(staff):
    claim = _claim("approved")
    messages = _act(staff, "payoutclaim", "claim_rejected", [claim.pk])  # approved -> rejected
    claim.refresh_from_db()
    assert claim.status == "approved"
    assert any("cannot become rejected" in m for m in messages)

    messages = _act(staff, "payoutclaim", "claim_paid", [claim.pk])
    claim.refresh_from_db()
    assert claim.status == "paid" and claim.decided_at is not None


def test_a_claims_status_and_amount_cannot_be_edited_in_its_form(staff):
    claim = _claim("approved")
    url = reverse("admin:trainers_payoutclaim_change", args=[claim.pk])
    page = staff.get(url).content.decode()
    assert 'name="status"' not in page and 'name="amount"' not in page
    staff.post(url, {"status": "pending", "amount": "1", "note": "edited", "claimed-TOTAL_FORMS": 0,
                     "claimed-INITIAL_FORMS": 0})  # fmt: skip
    claim.refresh_from_db()
    assert (claim.status, float(claim.amount), claim.note) == ("approved", 40.0, "edited")
    assert staff.get(reverse("admin:trainers_payoutclaim_add")).status_code == 403


def test_derived_figures_are_read_only(staff):
    trainer = TrainerFactory(specialties=["yoga", "pilates"])
    page = staff.get(reverse("admin:trainers_trainer_change", args=[trainer.pk])).content.decode()
    assert 'name="performance-0-sessions_completed"' not in page
    # What staff do edit stays editable: the specialties, as one comma-separated line.
    assert '<input type="text" name="specialties" value="yoga, pilates"' in page
    allocation = AllocationFactory()
    url = reverse("admin:trainers_allocation_change", args=[allocation.pk])
    page = staff.get(url).content.decode()
    assert 'name="sessions_used"' not in page and 'name="status"' not in page


def test_specialties_are_edited_as_a_comma_separated_line(staff):
    trainer = TrainerFactory(specialties=["yoga"])
    url = reverse("admin:trainers_trainer_change", args=[trainer.pk])
    assert 'value="yoga"' in staff.get(url).content.decode()
    form = {
        "user": trainer.user_id, "name": trainer.name, "email": "", "phone": "", "bio": "",
        "avatar": "", "specialties": "Yoga, Pilates ,", "hourly_rate": "40", "currency": "USD",
        "address": "", "city": "", "latitude": "", "longitude": "", "service_radius_km": 10,
        "is_active": "on",
        "performance-TOTAL_FORMS": 0, "performance-INITIAL_FORMS": 0,
        "documents-TOTAL_FORMS": 0, "documents-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = staff.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Trainer.objects.get(pk=trainer.pk).specialties == ["Yoga", "Pilates"]


def test_session_actions_use_the_services(staff):
    done, scheduled = SessionFactory(status="completed"), SessionFactory()
    messages = _act(staff, "session", "complete_sessions", [done.pk, scheduled.pk])
    assert Session.objects.get(pk=scheduled.pk).status == "completed"
    assert any("cannot be completed" in m for m in messages)
    assert scheduled.allocation.__class__.objects.get(pk=scheduled.allocation_id).sessions_used == 1


def test_every_changelist_and_form_renders_with_readable_names(staff):
    allocation = AllocationFactory(student=StudentFactory(name="Ada"))
    session = SessionFactory(allocation=allocation)
    claim = _claim()
    for model, pk in [("trainer", allocation.trainer_id), ("allocation", allocation.pk),
                      ("session", session.pk), ("payoutclaim", claim.pk), ("course", allocation.course_id)]:  # fmt: skip
        assert staff.get(reverse(f"admin:trainers_{model}_changelist")).status_code == 200
        assert staff.get(reverse(f"admin:trainers_{model}_change", args=[pk])).status_code == 200
    student_page = staff.get(reverse("admin:trainers_student_change", args=[allocation.student_id]))
    assert student_page.status_code == 200
    html = student_page.content.decode()
    assert "Course progresss" not in html and "Course progress" in html
    assert str(allocation) == f"{allocation.course} for Ada with {allocation.trainer.name}"
