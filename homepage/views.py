"""Homepage batch endpoint and the legacy single-list endpoints (seed 004 §7.1)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.batch import compute_sections, serve_batch
from aggregation.responses import batch_response, section_response
from aggregation.sections import Section, SectionContext
from api.access import personalised_user_id
from api.ratelimits import RateLimit
from api.serializers import error_responses, validated_query

from .keys import homepage_cache_key, homepage_policy, homepage_variant, section_policy
from .sections import all_valid_offers, homepage_analytics, homepage_sections
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


def _params(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    return validated_query(serializer_class, request, registry=homepage_sections)


class HomepageView(APIView):
    """``GET /api/v1/homepage``: every homepage section in one response."""

    throttle_classes = [RateLimit]

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
        section_ids = params.get("sections")
        fieldset = params.get("fields")
        variant = homepage_variant(
            limit=params["limit"],
            sections=section_ids,
            location=params.get("location"),
        )
        result = serve_batch(
            registry=homepage_sections,
            sections=homepage_sections.resolve(section_ids),
            context=SectionContext(
                now=datetime.now(UTC),
                limit=params["limit"],
                user_id=user_id,
                options={"location": params.get("location")},
            ),
            cache_key=homepage_cache_key(user_id, variant),
            policy=homepage_policy(),
            section_policy=section_policy(),
            fresh=params["fresh"],
            extras=homepage_analytics,
        )
        extra = {"analytics": result.body.extras} if params["includeAnalytics"] else None
        return batch_response(
            request,
            result,
            public=user_id is None,
            extra=extra,
            fieldset=(fieldset["paths"], fieldset["spec"]) if fieldset else None,
        )


class LegacySectionView(APIView):
    """One homepage section on its own, as the pre-batch endpoints served it.

    The section is the very one the batch endpoint runs, and shares its
    section cache entry, so both always agree.
    """

    throttle_classes = [RateLimit]

    section: Section
    query_serializer: type[serializers.Serializer] = LimitQuerySerializer

    def section_for(self, params: dict) -> Section:
        return self.section

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
        return section_response(results[section.id], public=True)


def _legacy(section_id: str, name: str, response, query=LimitQuerySerializer, summary=""):
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
