"""Homepage batch endpoint and the legacy single-list endpoints (seed 004 §7.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.batch import BatchResult, ReadMode, cached_batch, serve_batch
from aggregation.compute import compute_sections, section_tags
from aggregation.sections import Section, SectionContext
from api.access import personalised_user_id
from api.authentication import request_token, token_cache_key, user_from_cache
from api.deprecation import LegacyEndpoint
from api.ratelimits import RateLimit, over_budget
from api.responses import Holding, batch_response, section_response
from api.serializers import error_responses, validated_query
from caching.shared import shared_cache

from .keys import section_policy
from .sections import all_valid_offers, homepage_request, homepage_sections
from .serializers import (
    EventSectionSerializer,
    HomepageQuerySerializer,
    HomepageResponseSerializer,
    LimitQuerySerializer,
    LocatedListQuerySerializer,
    OfferSectionSerializer,
    OffersQuerySerializer,
    ProductSectionSerializer,
    StoreSectionSerializer,
    legacy_response_serializer,
)
from .verifiers import HOMEPAGE_VERIFIER, verify_args

ERRORS = error_responses(
    {
        400: "Invalid parameters (VALIDATION_ERROR, naming the field).",
        401: "userId given without authentication (NOT_AUTHENTICATED).",
        403: "userId of someone else (PERMISSION_DENIED).",
        404: "Not found (NOT_FOUND).",
        429: "Rate limited (RATE_LIMITED), with Retry-After.",
        500: "Every section failed, or an unexpected error.",
        503: "Service temporarily unavailable.",
        504: "A single section timed out (TIMEOUT_ERROR).",
    }
)


def _params(serializer_class: type[serializers.Serializer], request: HttpRequest) -> dict:
    return validated_query(serializer_class, request, registry=homepage_sections)


def _respond(request: HttpRequest, params: dict, result: BatchResult) -> HttpResponse:
    fieldset = params.get("fields")
    return batch_response(
        request,
        result,
        # Shared caches may keep the anonymous page, never a fresh=true answer.
        public=result.user_id is None and not params["fresh"],
        extra={"analytics": result.body.extras} if params["includeAnalytics"] else None,
        fieldset=(fieldset["paths"], fieldset["spec"]) if fieldset else None,
        holding=Holding(known=params.get("known")),
    )


class HomepageView(APIView):
    """``GET /api/v1/homepage``: every homepage section in one response."""

    throttle_classes = [RateLimit]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """A cache hit is answered here, without DRF's request cycle, when it can be.

        Anonymous (no credentials at all, so nothing can authenticate or fail
        to), or ``userId`` with a token seen recently: the token's cached user
        and the entry come back in one Redis round trip, and the user must be
        ``userId`` or staff. The rate limit still counts the request. Anything
        else (a miss, a stale copy, ``fresh``, invalid parameters) goes the
        whole way, reading nothing from the cache twice, and writing to it in
        one pipeline.
        """
        if request.method != "GET" or not settings.ENABLE_BATCH_ENDPOINT:
            return super().dispatch(request, *args, **kwargs)
        with shared_cache.batched():
            response = self._cached(request)
            if response is not None:
                return response
            return super().dispatch(request, *args, **kwargs)

    def _cached(self, request: HttpRequest) -> HttpResponse | None:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            return None
        token = request_token(request)
        anonymous = "HTTP_AUTHORIZATION" not in request.META
        if not anonymous and token is None:
            return None
        try:
            params = _params(HomepageQuerySerializer, request)
        except exceptions.ValidationError:
            return None
        user_id = params.get("userId")
        if anonymous:
            if user_id is not None or params["fresh"] or over_budget(request) is not None:
                return None
            cached, _ = cached_batch(homepage_request(params, None))
            return _respond(request, params, cached) if cached is not None else None
        if user_id is None or token is None:
            return None
        token_key = token_cache_key(token)
        cached, extra = cached_batch(homepage_request(params, user_id), extra_keys=(token_key,))
        user = user_from_cache(extra.get(token_key))
        if cached is None or user is None or params["fresh"]:  # (what was read stays read)
            return None
        if user.pk != user_id and not user.is_staff:
            return None  # DRF's cycle answers 403
        request.user = user  # the rate limit counts against the user, as DRF would
        if over_budget(request) is not None:
            return None
        return _respond(request, params, cached)

    @extend_schema(
        operation_id="homepage_batch",
        summary="Every homepage section in one response.",
        parameters=[HomepageQuerySerializer],
        responses={200: HomepageResponseSerializer, 304: None, **ERRORS},
        tags=["homepage"],
    )
    def get(self, request: Request) -> HttpResponse:
        if not settings.ENABLE_BATCH_ENDPOINT:
            raise exceptions.NotFound()
        params = _params(HomepageQuerySerializer, request)
        user_id = personalised_user_id(request.user, params.get("userId"))
        verify = (HOMEPAGE_VERIFIER, verify_args(request.META.get("QUERY_STRING", ""), user_id))
        mode = ReadMode.FRESH if params["fresh"] else ReadMode.CACHED
        result = serve_batch(homepage_request(params, user_id, verify=verify), mode)
        return _respond(request, params, result)


class LegacySectionView(LegacyEndpoint, APIView):
    """One homepage section on its own, as the pre-batch endpoints served it.

    The section is the very one the batch endpoint runs, and shares its
    section cache entry, so both always agree. Calls are counted, and once
    the legacy endpoints are deprecated the response points at the batch
    endpoint's section.
    """

    throttle_classes = [RateLimit]

    section: Section
    query_serializer: type[serializers.Serializer] = LimitQuerySerializer

    def section_for(self, params: dict) -> Section:
        return self.section

    def legacy_endpoint(self, request: Request, kwargs: dict[str, Any]) -> tuple[str, str]:
        """Named by its URL; replaced by the homepage's section of the same content."""
        match = getattr(request, "resolver_match", None)
        name = match.url_name if match is not None and match.url_name else type(self).__name__
        section = getattr(self, "section", None) or homepage_sections["offers"]
        return name, f"{reverse('homepage')}?sections={section.id}"

    def get(self, request: Request) -> Response:
        params = _params(self.query_serializer, request)
        context = SectionContext(
            now=datetime.now(UTC),
            limit=params["limit"],
            options={"location": params.get("location")},
        )
        section = self.section_for(params)
        results, _ = compute_sections(
            homepage_sections, [section], context, section_policy=section_policy()
        )
        return section_response(
            results[section.id], public=True, tags=section_tags(section, context)
        )


def _legacy(
    section_id: str,
    name: str,
    response: type[serializers.Serializer],
    query: type[serializers.Serializer] = LimitQuerySerializer,
    summary: str = "",
) -> type[LegacySectionView]:
    section = homepage_sections[section_id]
    view = type(name, (LegacySectionView,), {"section": section, "query_serializer": query})
    return extend_schema_view(
        get=extend_schema(
            operation_id=name,
            summary=summary,
            parameters=[query],
            responses={200: legacy_response_serializer(f"{name}Response", response), **ERRORS},
            tags=["legacy"],
        )
    )(view)


FeaturedProductsView = _legacy(
    "justForYou",
    "FeaturedProducts",
    ProductSectionSerializer,
    summary="Featured products (the justForYou section, anonymous).",
)
NewArrivalsView = _legacy(
    "newArrivals", "NewArrivals", ProductSectionSerializer, summary="Newest in-stock products."
)
FeaturedStoresView = _legacy(
    "trendingStores",
    "FeaturedStores",
    StoreSectionSerializer,
    LocatedListQuerySerializer,
    summary="Featured stores (the trendingStores section).",
)
FeaturedEventsView = _legacy(
    "events",
    "FeaturedEvents",
    EventSectionSerializer,
    LocatedListQuerySerializer,
    summary="Upcoming featured events (the events section).",
)


class OffersView(LegacySectionView):
    """``/offers``: with ``featured=true`` exactly the homepage's offers section."""

    query_serializer = OffersQuerySerializer

    def section_for(self, params: dict) -> Section:
        return homepage_sections["offers"] if params["featured"] else all_valid_offers

    @extend_schema(
        operation_id="Offers",
        summary="Valid offers (featured=true: the homepage's offers section).",
        parameters=[OffersQuerySerializer],
        responses={
            200: legacy_response_serializer("OffersResponse", OfferSectionSerializer),
            **ERRORS,
        },
        tags=["legacy"],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
