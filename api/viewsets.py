"""The bootstrap viewset both training domains declare: one class, configured by attributes.

A domain subclasses ``BootstrapViewSet`` with its ``Bootstrap`` and an access
rule, and lists its individual section endpoints with ``section_endpoint``::

    class TrainerViewSet(BootstrapViewSet):
        spec = trainer_bootstrap
        lookup_field = "trainerId"

        def subject_for(self, user, subject_id):
            return trainer_for(user, subject_id)

        overview = section_endpoint("overview", TRAINER_OVERVIEW, "Profile, ...")
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aggregation.assembly import BatchBody
from aggregation.batch import BatchResult
from aggregation.bootstrap import Bootstrap
from aggregation.bounded import within_query_timeout
from aggregation.dictionaries import Held, dictionary_key, held_dictionary
from api.access import User
from api.authentication import request_token, token_cache_key, user_from_cache
from api.deprecation import LegacyEndpoint
from api.ratelimits import RateLimit, over_budget
from caching.activity import record_activity
from caching.shared import SharedCacheUnavailable, shared_cache

from .batch_serializers import BootstrapQuerySerializer, bootstrap_response_serializer
from .responses import Holding, batch_response, section_response
from .serializers import envelope_serializer, error_responses, validated_query

ID_PATTERN = r"[0-9]{1,18}"
READ_ERRORS = error_responses(
    {
        400: "Invalid input (VALIDATION_ERROR, naming the field).",
        401: "Not signed in (NOT_AUTHENTICATED).",
        403: "Not yours (PERMISSION_DENIED), whether or not it exists.",
        404: "Not found (staff only).",
        503: "Database unavailable (DB_CONNECTION_ERROR).",
        504: "A section timed out (TIMEOUT_ERROR).",
    }
)


class BootstrapViewSet(LegacyEndpoint, viewsets.ViewSet):
    """``/{kind}s/{id}/bootstrap`` and each section alone, for one kind of subject.

    The section endpoints are the legacy ones: counted, and once deprecated
    pointing at the bootstrap.
    """

    spec: Bootstrap
    lookup_field: str
    lookup_value_regex = ID_PATTERN
    throttle_classes = [RateLimit]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Document each section endpoint and the bootstrap from the sections' schemas."""
        super().__init_subclass__(**kwargs)
        sections: dict[str, serializers.Field] = {}
        for name, member in list(vars(cls).items()):
            declared = getattr(member, "bootstrap_section", None)
            if declared is None:
                continue
            section_id, data = declared
            sections[section_id] = data
            title = f"{cls.spec.kind.title()}{section_id[0].upper()}{section_id[1:]}"
            response = envelope_serializer(f"{title}Response", copy.deepcopy(data))
            setattr(cls, name, extend_schema(responses={200: response, **READ_ERRORS})(member))
        if sections:
            extend_schema_view(bootstrap=bootstrap_schema(cls.spec.kind, sections))(cls)

    def is_legacy_operation(self) -> bool:
        """A section endpoint (its action names a section), not the bootstrap."""
        action = getattr(self, getattr(self, "action", None) or "", None)
        return getattr(action, "bootstrap_section", None) is not None

    def legacy_endpoint(self, request: Any, kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """``trainer-overview``..., replaced by the subject's bootstrap."""
        if not self.is_legacy_operation():
            return None
        action = getattr(self, self.action)
        kind = self.spec.kind
        subject = kwargs.get(self.lookup_field, "{id}")
        return f"{kind}-{action.bootstrap_section[0]}", f"/api/v1/{kind}s/{subject}/bootstrap"

    def subject_for(self, user: User, subject_id: int) -> Model:
        """The subject if ``user`` may see it (401/403/404 otherwise)."""
        raise NotImplementedError

    def _subject(self, request: Request, kwargs: dict[str, Any]) -> tuple[int, int]:
        """The subject's id and its owner's, if the caller may see it: cached when it can tell.

        The owner is cached (``Bootstrap.owner_of``), so a caller seen recently
        needs no database read to be let in, and a cached bootstrap is served
        while the database is down. Anything else asks ``subject_for``.
        """
        subject_id = int(kwargs[self.lookup_field])
        user = request.user
        if user.is_authenticated:
            owner = self.spec.owner_of(subject_id)
            if owner is not None and (owner == user.pk or user.is_staff):
                return subject_id, owner
        subject = within_query_timeout(lambda: self.subject_for(user, subject_id))
        return subject.pk, subject.user_id  # type: ignore[attr-defined]

    def _subject_id(self, request: Request, kwargs: dict[str, Any]) -> int:
        return self._subject(request, kwargs)[0]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """A cached bootstrap for a token seen recently is answered here, outside DRF.

        The token's cached user, the subject's tag generation and (on an L1
        miss) the cached bootstrap come back in one Redis round trip; the
        owner stored with the entry decides access. Anything this cannot
        settle (no cached token, a miss, ``fresh``, bad input, over the rate
        limit) goes through DRF's request cycle as usual.
        """
        if self.action_map.get(request.method.lower()) != "bootstrap":  # type: ignore[union-attr]
            return super().dispatch(request, *args, **kwargs)
        # One read of the cache serves the whole request: what the first look
        # found (the token, the owner, the entry and its generations) is not
        # read again on a miss, and every write goes out in one pipeline.
        with shared_cache.batched():
            response = self._cached_bootstrap(request, kwargs)
            if response is not None:
                return response
            return super().dispatch(request, *args, **kwargs)

    def _cached_bootstrap(
        self, request: HttpRequest, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        token = request_token(request)
        if token is None:
            return None
        try:
            params = self._params(request)
            subject_id = int(kwargs[self.lookup_field])
        except (exceptions.ValidationError, KeyError, ValueError):
            return None
        token_key = token_cache_key(token)
        _, kept_key = self._held(request, subject_id)
        extra_keys: tuple[str, ...] = (token_key, self.spec.owner_key(subject_id))
        extra_keys += (kept_key,) if kept_key is not None else ()
        cached, extra = self.spec.peek(subject_id, extra_keys=extra_keys)
        user = user_from_cache(extra.get(token_key))
        if user is None or params["fresh"]:  # (fresh: what was read is not read again)
            return None
        request.user = user  # the rate limit counts against the user, as DRF would
        if over_budget(request) is not None or not self._may_see(user, cached):
            return None
        return self._respond(request, subject_id, cached, params)  # type: ignore[arg-type]

    def _held(self, request: HttpRequest, subject_id: int) -> tuple[Held | None, str | None]:
        """The dictionary the request names, and the key its body is kept under (if any).

        Parsed once per request: the first look and the response both ask.
        """
        django_request = getattr(request, "_request", request)  # a DRF request wraps Django's
        found = getattr(django_request, "held_dictionary", None)
        if found is None:
            held = held_dictionary(request.META) if settings.DELTA_DICTIONARIES else None
            key = dictionary_key(self.spec.cache_key(subject_id), held.version) if held else None
            found = django_request.held_dictionary = (held, key)  # type: ignore[union-attr]
        return found

    def _holding(self, request: HttpRequest, subject_id: int, params: dict[str, Any]) -> Holding:
        """What the client holds: ``known=`` versions, and the dictionary it names, if kept.

        The kept body is read from the shared cache, where the first look read
        it already (no round trip of its own then).
        """
        if not settings.DELTA_DICTIONARIES:
            return Holding(known=params.get("known"))
        match = f"{request.path}?*"  # this subject's bootstrap, whatever its query
        held, key = self._held(request, subject_id)
        kept = None
        if key is not None:
            with contextlib.suppress(SharedCacheUnavailable):
                kept = shared_cache.get_many([key]).get(key)
        return Holding(known=params.get("known"), match=match, dictionary=held,
                       kept=kept if isinstance(kept, BatchBody) else None)  # fmt: skip

    def _params(self, request: HttpRequest) -> dict[str, Any]:
        """The bootstrap's validated query parameters (``fresh``, ``known``)."""
        return validated_query(BootstrapQuerySerializer, request, registry=self.spec.registry)

    @staticmethod
    def _may_see(user: User, cached: BatchResult | None) -> bool:
        """A cached bootstrap may be served to its owner and to staff."""
        return cached is not None and (
            cached.body.extras.get("owner") == user.pk or bool(user.is_staff)
        )

    @action(detail=True, methods=["get"])
    def bootstrap(self, request: Request, **kwargs: Any) -> HttpResponse:
        """Every section at once, from one database snapshot (read-your-writes).

        A fresh cached copy is served after checking the owner it was stored
        with: one cache read, no database read, no access query.
        """
        params = self._params(request)
        fresh = params["fresh"]
        user = request.user
        if not fresh and user.is_authenticated:
            subject_id = int(kwargs[self.lookup_field])
            cached, _ = self.spec.peek(subject_id)
            if self._may_see(user, cached):
                return self._respond(request, subject_id, cached, params)  # type: ignore[arg-type]
        subject_id, owner = self._subject(request, kwargs)
        return self._respond(
            request, subject_id, self.spec.serve(subject_id, fresh=fresh, owner=owner), params
        )

    def _respond(
        self, request: HttpRequest, subject_id: int, result: BatchResult, params: dict[str, Any]
    ) -> HttpResponse:
        record_activity(self.spec.kind, subject_id)
        # The cached content is the same for the subject and staff; the metadata
        # names whoever asked.
        result.user_id = request.user.pk
        return batch_response(
            request, result, public=False, holding=self._holding(request, subject_id, params)
        )

    def section(self, request: Request, kwargs: dict[str, Any], section_id: str) -> Response:
        """One section alone, from its own cache entry."""
        subject_id = self._subject_id(request, kwargs)
        return section_response(self.spec.section(subject_id, section_id))


def section_endpoint(
    section_id: str, data: serializers.Field, summary: str, *, url_path: str | None = None
) -> Any:
    """A ``GET /{kind}s/{id}/<section>`` action serving ``section_id`` alone.

    ``data`` is the section's schema; the subclass documents both this endpoint
    and its bootstrap from it (``BootstrapViewSet.__init_subclass__``).
    """

    def endpoint(self: BootstrapViewSet, request: Request, **kwargs: Any) -> Response:
        return self.section(request, kwargs, section_id)

    endpoint.__name__ = (url_path or section_id).replace("-", "_")
    endpoint.__doc__ = summary
    routed = action(detail=True, methods=["get"], url_path=url_path)(endpoint)
    routed.bootstrap_section = (section_id, data)  # type: ignore[attr-defined]
    return extend_schema(summary=summary)(routed)


def bootstrap_schema(kind: str, sections: dict[str, serializers.Field]) -> Any:
    """The OpenAPI description of a subclass's ``bootstrap`` action (for ``extend_schema_view``)."""
    return extend_schema(
        operation_id=f"{kind}_bootstrap",
        summary=f"Everything a {kind}'s app needs at start-up, from one snapshot.",
        parameters=[BootstrapQuerySerializer],
        responses={
            200: bootstrap_response_serializer(f"{kind.title()}Bootstrap", sections),
            304: None,
            **READ_ERRORS,
        },
    )
