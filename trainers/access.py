"""Who may read and change what: a trainer their own data, a student theirs, staff all.

Anyone else gets 401 (not signed in) or 403, whether or not the object exists:
a 404 is only ever shown to staff, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model
from rest_framework import exceptions

from students.models import Student

from .models import Allocation, PayoutClaim, Session, Trainer

User = AbstractBaseUser | AnonymousUser


def _signed_in(user: User) -> None:
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated()


def _get(model: type[Model], pk: int, user: User, owned: Iterable[str], select: tuple = ()):
    """``model`` ``pk`` if ``user`` is staff or owns it through one of the ``owned`` paths."""
    _signed_in(user)
    queryset = model.objects.select_related(*select)
    if user.is_staff:
        try:
            return queryset.get(pk=pk)
        except model.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
    for path in owned:
        found = queryset.filter(pk=pk, **{path: user}).first()
        if found is not None:
            return found
    raise exceptions.PermissionDenied()


def trainer_for(user: User, trainer_id: int) -> Trainer:
    """The trainer ``trainer_id``, if ``user`` is that trainer or staff."""
    return _get(Trainer, trainer_id, user, ["user"])


def student_for(user: User, student_id: int) -> Student:
    """The student ``student_id``, if ``user`` is that student or staff."""
    return _get(Student, student_id, user, ["user"])


def session_for(user: User, session_id: int, *, roles: Iterable[str]) -> Session:
    """A session, if ``user`` is staff or its trainer/student (as ``roles`` allow)."""
    return _get(Session, session_id, user, [f"{role}__user" for role in roles])


def allocation_for(user: User, allocation_id: int, *, roles: Iterable[str]) -> Allocation:
    """An allocation, if ``user`` is staff or its trainer/student (as ``roles`` allow)."""
    return _get(Allocation, allocation_id, user, [f"{role}__user" for role in roles], ("course",))


def payout_claim_for(user: User, claim_id: int) -> PayoutClaim:
    """A payout claim: staff only (trainers see theirs in the bootstrap)."""
    return _get(PayoutClaim, claim_id, user, [])


def require_staff(user: User) -> None:
    """401 or 403 unless ``user`` is staff."""
    _signed_in(user)
    if not user.is_staff:
        raise exceptions.PermissionDenied()
