"""Homepage batch endpoint and the legacy single-list endpoints (seed 004 §7.1)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.access import subject_user_id
from aggregation.batch import serve_batch
from aggregation.bootstrap import section_response
from aggregation.http import batch_response
from aggregation.sections import Section, SectionContext
from aggregation.serializers import ErrorEnvelopeSerializer

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

ERRORS = {
    code: OpenApiResponse(ErrorEnvelopeSerializer, description=text)
    for code, text in {
        400: "Invalid parameters (VALIDATION_ERROR, naming the field).",
        401: "userId given without authentication (NOT_AUTHENTICATED).",
        403: "userId of someone else (PERMISSION_DENIED).",
        404: "Not found (NOT_FOUND).",
        429: "Rate limited (RATE_LIMITED), with Retry-After.",
        500: "Every section failed, or an unexpected error.",
        503: "Service temporarily unavailable.",
        504: "A single section timed out (TIMEOUT_ERROR).",
    }.items()
}


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(
        data=request.query_params, context={"registry": homepage_sections}
    )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class HomepageView(APIView):
    """``GET /api/v1/homepage``: every homepage section in one response."""

    throttle_scope = "api"

    @extend_schema(
        operation_id="homepage_batch",
        parameters=[HomepageQuerySerializer],
        responses={200: HomepageResponseSerializer, 304: None, **ERRORS},
        tags=["homepage"],
    )
    def get(self, request: Request) -> HttpResponse:
        if not settings.ENABLE_BATCH_ENDPOINT:
            raise exceptions.NotFound()
        params = _validated(HomepageQuerySerializer, request)
        user_id = subject_user_id(request.user, params.get("userId"))
        section_ids = params.get("sections")
        fieldset = params.get("fields")
        variant = homepage_variant(
            limit=params["limit"],
            sections=section_ids,
            location=params.get("location"),
            fieldset_paths=fieldset["paths"] if fieldset else None,
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
            policy=homepage_policy(personal=user_id is not None),
            section_policy=section_policy(),
            fresh=params["fresh"],
            fieldset=fieldset["spec"] if fieldset else None,
            extras=homepage_analytics,
        )
        extra = {"analytics": result.body.extras} if params["includeAnalytics"] else None
        return batch_response(request, result, public=user_id is None, extra=extra)


class LegacySectionView(APIView):
    """One homepage section on its own, as the pre-batch endpoints served it.

    The section is the very one the batch endpoint runs, and shares its
    section cache entry, so both always agree.
    """

    throttle_scope = "api"

    section: Section
    query_serializer: type[serializers.Serializer] = LimitQuerySerializer

    def section_for(self, params: dict) -> Section:
        return self.section

    def get(self, request: Request) -> Response:
        params = _validated(self.query_serializer, request)
        context = SectionContext(
            now=datetime.now(UTC),
            limit=params["limit"],
            options={"location": params.get("location")},
        )
        return section_response(
            registry=homepage_sections,
            section=self.section_for(params),
            context=context,
            policy=section_policy(),
            public=True,
        )


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
        parameters=[OffersQuerySerializer],
        responses={
            200: legacy_response_serializer("OffersResponse", OfferSectionSerializer),
            **ERRORS,
        },
        tags=["legacy"],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
