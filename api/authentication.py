"""Token authentication that does not ask the database on every request.

The token -> user lookup is kept in Redis for ``TOKEN_CACHE_TTL_S`` seconds, as
the few fields requests use (id, username, active, staff, superuser), never
the password hash. It is dropped when the token or its user changes (signals
below), so a deleted token or a deactivated user stops working at once.

So a cached response (a bootstrap) is served to a caller seen recently even
while the database is down; a caller not seen recently gets 503
``DB_CONNECTION_ERROR`` within ``QUERY_TIMEOUT``, never a 500 or a hang.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from aggregation.bounded import within_query_timeout
from caching.shared import SharedCacheUnavailable, shared_cache

USER_FIELDS = ("id", "username", "is_active", "is_staff", "is_superuser")
# A user change that touches none of these leaves cached tokens alone (last_login...).
_AUTH_FIELDS = frozenset({"username", "is_active", "is_staff", "is_superuser", "password"})


def token_cache_key(key: str) -> str:
    """``auth:token:<sha256 of the key>``: the key itself never reaches Redis."""
    return f"auth:token:{hashlib.sha256(key.encode()).hexdigest()}"


def request_token(request: HttpRequest) -> str | None:
    """The key of ``Authorization: Token <key>``, or None (absent or malformed)."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "token":
        return None
    return parts[1]


def user_from_cache(fields: Any) -> Any:
    """The user a cached token entry (``token_cache_key``) describes, if active; else None."""
    if not isinstance(fields, dict) or not fields.get("is_active"):
        return None
    return get_user_model()(**fields)


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, looked up in Redis first, the database second."""

    def authenticate_credentials(self, key: str) -> tuple[Any, str]:
        """The user of ``key`` (from the cache when seen recently); 401 if unknown or inactive."""
        cache_key = token_cache_key(key)
        with contextlib.suppress(SharedCacheUnavailable):
            fields = shared_cache.get_many([cache_key]).get(cache_key)
            if fields is not None:
                return get_user_model()(**fields), key
        lookup = super().authenticate_credentials
        user, _ = within_query_timeout(lambda: lookup(key))
        if not user.is_active:  # DRF checks too; kept explicit for the cached path
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        with contextlib.suppress(SharedCacheUnavailable):
            fields = {name: getattr(user, name) for name in USER_FIELDS}
            shared_cache.set(cache_key, fields, settings.TOKEN_CACHE_TTL_S)
        return user, key


def _forget(keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(SharedCacheUnavailable):
            shared_cache.delete(token_cache_key(key))


def token_changed(sender: type[Token], instance: Token, **kwargs: Any) -> None:
    """A token was created, changed or deleted: forget what the cache knew of it."""
    key = instance.key  # now: a deleted instance loses its primary key (the key itself)
    transaction.on_commit(lambda: _forget([key]), robust=True)


def user_changed(
    sender: Any, instance: Any, update_fields: Iterable[str] | None = None, **kwargs: Any
) -> None:
    """A user changed in a way authentication depends on: forget their tokens."""
    if update_fields is not None and not (set(update_fields) & _AUTH_FIELDS):
        return
    keys = list(Token.objects.filter(user_id=instance.pk).values_list("key", flat=True))
    if keys:
        transaction.on_commit(lambda: _forget(keys), robust=True)


def connect() -> None:
    """Connect the invalidation receivers (from ``ApiConfig.ready``)."""
    post_save.connect(token_changed, sender=Token, dispatch_uid="api.token.saved")
    post_delete.connect(token_changed, sender=Token, dispatch_uid="api.token.deleted")
    user = get_user_model()
    post_save.connect(user_changed, sender=user, dispatch_uid="api.user.saved")
    post_delete.connect(user_changed, sender=user, dispatch_uid="api.user.deleted")
