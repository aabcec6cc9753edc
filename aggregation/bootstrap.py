"""Bootstraps: every section about one subject (a trainer, a student) at once.

From one database snapshot, cached for read-your-writes; and each section alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from caching.engine import CachePolicy

from .batch import BatchResult, compute_sections, serve_batch
from .errors import APIError, ErrorCode
from .http import batch_response, cache_control
from .sections import Section, SectionContext, SectionRegistry

_FAILURE_STATUS = {ErrorCode.TIMEOUT_ERROR: 504, ErrorCode.DB_CONNECTION_ERROR: 503}


def subject_tag(kind: str, subject_id: int) -> str:
    """The cache tag of everything shown about one subject: ``trainer:7``."""
    return f"{kind}:{subject_id}"


def subject_context(kind: str, subject_id: int) -> SectionContext:
    """A context about one subject: its id as ``options["<kind>_id"]``, and its tag."""
    options = {f"{kind}_id": subject_id, "tags": (subject_tag(kind, subject_id),)}
    return SectionContext(now=datetime.now(UTC), limit=0, options=options)


def serve_bootstrap(
    *,
    registry: SectionRegistry,
    context: SectionContext,
    cache_key: str,
    policy: CachePolicy,
    fresh: bool = False,
) -> BatchResult:
    """Every section of ``registry`` on one snapshot, through the cache.

    Sections are written to their own cache entries too (the individual
    endpoints read them) but never read from them here: a bootstrap is one
    point in time.
    """
    return serve_batch(
        registry=registry,
        sections=list(registry),
        context=context,
        cache_key=cache_key,
        policy=policy,
        section_policy=policy,
        fresh=fresh,
        consistent=True,
        layout="inline",
    )


def bootstrap_response(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """``serve_bootstrap`` as a private HTTP response (ETag, gzip, 304).

    ``metadata.userId`` is the caller (the trainer, the student or staff): the
    cached content is the same for all of them, the metadata is per response.
    """
    result = serve_bootstrap(**kwargs)
    result.user_id = request.user.pk
    return batch_response(request, result, public=False)


def section_response(
    *,
    registry: SectionRegistry,
    section: Section,
    context: SectionContext,
    policy: CachePolicy,
    public: bool = False,
) -> Response:
    """One section alone (an individual or legacy endpoint), from its own cache entry."""
    results, _ = compute_sections(registry, [section], context, section_policy=policy)
    result = results[section.id]
    if result.error is not None:
        code = result.error["code"]
        raise APIError(
            result.error["message"], code=code, status_code=_FAILURE_STATUS.get(code, 500)
        )
    response = Response({"success": True, "data": result.body})
    response["Cache-Control"] = cache_control(public=public)
    return response
