"""HTTP for aggregated responses: conditional requests, compression, cache headers.

Built as a plain ``HttpResponse`` from cached bytes, bypassing DRF's renderer:
the hot path of a cache hit does no serialization at all.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags

from . import metrics
from .batch import BatchResult, render_batch
from .encoding import MIN_COMPRESS_LENGTH, accepts_gzip
from .request_logs import note_aggregation

VARY = "Accept-Encoding, Authorization, Cookie"


def cache_control(*, public: bool, status: int = 200) -> str:
    """Shared caches may keep anonymous responses; per-user ones are private."""
    if status != 200:
        return "no-store"
    if public:
        return (
            f"public, max-age=0, s-maxage={settings.CDN_MAX_AGE}, "
            f"stale-while-revalidate={settings.CDN_STALE_WHILE_REVALIDATE}"
        )
    return "private, no-cache"


def _not_modified(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    weak = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == weak for tag in parse_etags(header))


def batch_response(
    request: HttpRequest, result: BatchResult, *, public: bool, extra: dict[str, Any] | None = None
) -> HttpResponse:
    """The response for a batch result: 304, gzip or plain JSON, with cache headers."""
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
        "Cache-Control": cache_control(public=public, status=status),
        "Vary": VARY,
        "X-Cache": "STALE"
        if result.cache.stale
        else ("HIT" if result.cache.from_cache else "MISS"),
    }
    if status == 200:
        headers["ETag"] = result.body.etag
        if _not_modified(request, result.body.etag):
            response = HttpResponseNotModified()
            for name, value in headers.items():
                response[name] = value
            return response
    gzip = (
        accepts_gzip(request.META.get("HTTP_ACCEPT_ENCODING", ""))
        and len(result.body.sections_json) >= MIN_COMPRESS_LENGTH
    )
    content = render_batch(result, extra=extra, gzip=gzip)
    response = HttpResponse(content, status=status, content_type="application/json")
    if gzip:
        response["Content-Encoding"] = "gzip"
    for name, value in headers.items():
        response[name] = value
    return response
