"""Whose data a request may see: the ``userId`` rule of DESIGN.md §3."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework import exceptions

from .errors import APIError, ErrorCode


def subject_user_id(user: AbstractBaseUser | AnonymousUser, requested: int | None) -> int | None:
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
