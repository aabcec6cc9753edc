"""Who may see what: the ``userId`` rule and ownership checks every endpoint shares.

Anyone who may not see an object gets 401 (not signed in) or 403, whether or
not it exists: a 404 is only ever shown to staff, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model
from rest_framework import exceptions

from aggregation.errors import ErrorCode

from .errors import APIError

User = AbstractUser | AnonymousUser
M = TypeVar("M", bound=Model)


def require_signed_in(user: User) -> None:
    """401 unless ``user`` is authenticated."""
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated()


def require_staff(user: User) -> None:
    """401 or 403 unless ``user`` is staff."""
    require_signed_in(user)
    if not user.is_staff:
        raise exceptions.PermissionDenied()


def owned_or_denied(
    model: type[M], pk: int, user: User, *, owners: Iterable[str], select: Iterable[str] = ()
) -> M:
    """``model`` ``pk`` if ``user`` is staff or reaches it through one of the ``owners`` paths.

    ``owners`` are lookups from the object to a user (``"user"``,
    ``"trainer__user"``). Staff get 404 for a missing object; anyone else 403.
    """
    require_signed_in(user)
    queryset = model._default_manager.select_related(*select)
    if user.is_staff:
        try:
            return queryset.get(pk=pk)
        except ObjectDoesNotExist as exc:
            raise exceptions.NotFound() from exc
    for path in owners:
        found = queryset.filter(pk=pk, **{path: user}).first()
        if found is not None:
            return found
    raise exceptions.PermissionDenied()


def personalised_user_id(user: User, requested: int | None) -> int | None:
    """The user a personalised response is for, or None for the global one.

    No ``userId``: the authenticated caller's own id (None when anonymous).
    A ``userId`` needs authentication (401) and must be the caller's own
    unless the caller is staff (403). Staff asking for a missing user get 404.
    """
    if requested is None:
        return user.pk if user.is_authenticated else None
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated("Authentication is required to use userId.")
    if requested == user.pk:
        return requested
    if not user.is_staff:
        raise exceptions.PermissionDenied("userId must be your own.")
    if not get_user_model().objects.filter(pk=requested).exists():
        raise APIError("No such user.", code=ErrorCode.NOT_FOUND, field="userId", status_code=404)
    return requested
