"""HTTP responses for aggregated results: a batch (homepage, bootstrap) or one section.

A batch response is a plain ``HttpResponse`` built from cached bytes, bypassing
DRF's renderer: the hot path of a cache hit does no serialization at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from rest_framework.response import Response

from aggregation import metrics, tracing
from aggregation.batch import BatchResult
from aggregation.compute import SectionResult
from aggregation.encoding import MIN_COMPRESS_LENGTH, accepts_gzip
from aggregation.errors import ErrorCode
from aggregation.rendering import render_batch, sparse_etag
from aggregation.sparse import SectionFields
from api.cache_status import cache_status
from api.errors import APIError
from api.http import VARY, cache_control, not_modified
from api.request_logs import note_aggregation
from caching import edge

_FAILURE_STATUS = {ErrorCode.TIMEOUT_ERROR: 504, ErrorCode.DB_CONNECTION_ERROR: 503}


def batch_response(
    request: HttpRequest,
    result: BatchResult,
    *,
    public: bool,
    extra: dict[str, Any] | None = None,
    fieldset: tuple[list[str], dict[str, SectionFields]] | None = None,
    fresh: bool = False,
) -> HttpResponse:
    """The response for a batch result: 304, gzip or plain JSON, with cache headers.

    ``fieldset`` (its paths and its spec) reduces the cached sections for this
    response only; the ETag names the reduced content. ``fresh``: the request
    skipped the cache on purpose (``fresh=true``), as ``Cache-Status`` says.
    """
    status = result.status_code
    note_aggregation(
        request,
        cacheHit=result.cache.from_cache,
        stale=result.cache.stale,
        cacheKey=result.cache_key,
        sections=result.body.section_status,
    )
    endpoint = getattr(getattr(request, "resolver_match", None), "url_name", None) or "batch"
    metrics.batch_responses.labels(endpoint, str(result.body.partial_failure).lower()).inc()
    headers = {
        "Cache-Control": cache_control(
            public=public, status=status, expires_at=result.body.expires_at
        ),
        "Vary": VARY,
        "X-Cache": "STALE"
        if result.cache.stale
        else ("HIT" if result.cache.from_cache else "MISS"),
        "Cache-Status": cache_status(result.cache, fresh=fresh),
    }
    tracing.annotate(
        {
            "aggregation.cache_key": result.cache_key,
            "aggregation.cache_status": headers["Cache-Status"],
            "aggregation.partial_failure": result.body.partial_failure,
        }
    )
    if public and status == 200:
        headers |= edge.tag_header(result.tags)
    etag = sparse_etag(result.body.etag, fieldset[0]) if fieldset else result.body.etag
    if status == 200:
        headers["ETag"] = etag
        if not_modified(request, etag):
            response: HttpResponse = HttpResponseNotModified()
            for name, value in headers.items():
                response[name] = value
            return response
    gzip = (
        accepts_gzip(request.META.get("HTTP_ACCEPT_ENCODING", ""))
        and len(result.body.sections_json) >= MIN_COMPRESS_LENGTH
    )
    content = render_batch(
        result, extra=extra, gzip=gzip, fieldset=fieldset[1] if fieldset else None
    )
    response = HttpResponse(content, status=status, content_type="application/json")
    if gzip:
        response["Content-Encoding"] = "gzip"
    for name, value in headers.items():
        response[name] = value
    return response


def section_response(
    result: SectionResult, *, public: bool = False, tags: Iterable[str] = ()
) -> Response:
    """One section alone (an individual or legacy endpoint), or its failure as an error.

    ``tags``: what its content depends on, named for the edge when ``public``.
    """
    if result.error is not None:
        code = ErrorCode(result.error["code"])
        raise APIError(
            result.error["message"], code=code, status_code=_FAILURE_STATUS.get(code, 500)
        )
    response = Response({"success": True, "data": result.body})
    response["Cache-Control"] = cache_control(public=public, expires_at=result.expires_at)
    if public:
        for name, value in edge.tag_header(tags).items():
            response[name] = value
    return response
