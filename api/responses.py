"""HTTP responses for aggregated results: a batch (homepage, bootstrap) or one section.

A batch response is a plain ``HttpResponse`` built from cached bytes, bypassing
DRF's renderer: the hot path of a cache hit does no serialization at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from rest_framework.response import Response

from aggregation import metrics, tracing
from aggregation.assembly import BatchBody, with_pieces
from aggregation.batch import BatchResult
from aggregation.compute import SectionResult
from aggregation.dictionaries import (
    DCZ,
    Held,
    compressor_for,
    dcz,
    dictionary_id,
    held_version,
    keep,
    restored,
    takes_dcz,
)
from aggregation.encoding import IDENTITY
from aggregation.errors import ErrorCode
from aggregation.rendering import render_batch, sparse_etag
from aggregation.sparse import SectionFields
from api.cache_status import cache_status
from api.errors import DATABASE_RETRY_AFTER_S, APIError
from api.http import DICTIONARY_VARY, VARY, cache_control, not_modified
from api.request_logs import note_aggregation
from caching import edge

logger = logging.getLogger(__name__)

_FAILURE_STATUS = {ErrorCode.TIMEOUT_ERROR: 504, ErrorCode.DB_CONNECTION_ERROR: 503}


@dataclass(frozen=True)
class Holding:
    """What a client holds of earlier responses, and whether whole ones may become dictionaries.

    ``known``: section versions (``known=``). ``match``: the ``Use-As-Dictionary``
    pattern of the endpoint (None: not offered). ``dictionary``: the one the
    request names, and ``kept``, its body as kept in the shared cache.
    """

    known: dict[str, str] | None = None
    match: str | None = None
    dictionary: Held | None = None
    kept: BatchBody | None = None


def batch_response(
    request: HttpRequest,
    result: BatchResult,
    *,
    public: bool,
    extra: dict[str, Any] | None = None,
    fieldset: tuple[list[str], dict[str, SectionFields]] | None = None,
    holding: Holding = Holding(),
) -> HttpResponse:
    """The response for a batch result: 304, or JSON in the best coding the client takes.

    ``fieldset`` (its paths and its spec) reduces the cached sections for this
    response only; ``holding.known`` (section: version the client holds) sends
    each section still at that version as ``notModified``. The ETag names the
    content the client holds once it has merged them (reduced by ``fieldset``).
    With ``holding.match``, a whole response is offered as a dictionary and a
    client holding one gets ``dcz`` (``aggregation/dictionaries.py``). A result
    asked for with ``fresh=true`` skipped the cache on purpose, as
    ``Cache-Status`` says.
    """
    known = holding.known
    result.body = with_pieces(result.body, result.cache_key)
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
        "Vary": VARY if holding.match is None else f"{VARY}, {DICTIONARY_VARY}",
        "X-Cache": "STALE"
        if result.cache.stale
        else ("HIT" if result.cache.from_cache else "MISS"),
        "Cache-Status": cache_status(result.cache, fresh=result.fresh),
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
    if status == 503:  # every section failed for want of the database
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    # The ETag is the merged copy's: a ``notModified`` section is what the
    # client holds, so sent with ``known=`` it names the body the client ends
    # up with, and ``If-None-Match`` with it answers 304 when nothing changed.
    # Not with a fieldset: a version is of the whole section, so what the
    # client kept may be another fieldset's; that variant stays apart.
    variant = [*fieldset[0], *(f"known:{s}" for s in (known or {}))] if fieldset else []
    etag = sparse_etag(result.body.etag, variant) if variant else result.body.etag
    if status == 200:
        headers["ETag"] = etag
        if not_modified(request, etag):
            response: HttpResponse = HttpResponseNotModified()
            for name, value in headers.items():
                response[name] = value
            return response
    accept_encoding = request.META.get("HTTP_ACCEPT_ENCODING", "")
    if holding.match is not None and status == 200 and not fieldset and not known:
        headers["Use-As-Dictionary"] = _offered(result, holding.match, accept_encoding)
    delta = _delta(result, holding) if status == 200 else None
    rendered = render_batch(
        result,
        extra=extra,
        accept_encoding=IDENTITY if delta is not None else accept_encoding,
        fieldset=fieldset[1] if fieldset else None,
        known=known,
    )
    if delta is not None:
        rendered.content, rendered.encoding = dcz(rendered.content, *delta), DCZ
    response = HttpResponse(rendered.content, status=status, content_type="application/json")
    if rendered.encoding != IDENTITY:
        response["Content-Encoding"] = rendered.encoding
    for name, value in headers.items():
        response[name] = value
    return response


def _delta(result: BatchResult, holding: Holding) -> tuple[bytes, Any] | None:
    """The held dictionary's hash and a compressor with it, if the client's copy is made again.

    The kept body was read under this response's cache key and the version
    the id names; the bytes made from it must hash to what the client sent.
    Otherwise None: the response goes out as usual.
    """
    held, kept = holding.dictionary, holding.kept
    if held is None or kept is None:
        return None

    def make() -> bytes:
        body = with_pieces(restored(kept), result.cache_key)
        again = BatchResult(body=body, cache=result.cache, cache_key=result.cache_key,
                            user_id=None, started=0.0, fixed_moment=held.moment)  # fmt: skip
        return render_batch(again, accept_encoding=IDENTITY).content

    ident = (result.cache_key, dictionary_id(held.version, held.moment))
    try:
        compressor = compressor_for(ident, held.digest, make)
    except Exception:  # a kept body this release cannot render (say, an older one's)
        logger.warning("dictionary_unusable", exc_info=True)
        return None
    return None if compressor is None else (held.digest, compressor)


def _offered(result: BatchResult, match: str, accept_encoding: str) -> str:
    """``Use-As-Dictionary`` of a whole response, whose body is kept for a client taking dcz.

    The response's own metadata is fixed now and goes into its id, so that it
    can be rendered again byte for byte.
    """
    result.fixed_moment = result.moment()
    ident = dictionary_id(held_version(result.body), result.fixed_moment)
    if takes_dcz(accept_encoding):  # a client that may keep it
        keep(result.cache_key, result.body)
    return f'match="{_sf_escaped(match)}", id="{ident}"'


def _sf_escaped(value: str) -> str:
    """``value`` inside an sf-string (RFC 8941): backslash and double quote escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


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
