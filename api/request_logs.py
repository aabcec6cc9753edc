"""Per-request log fields and the ``X-Request-ID`` header (django-structlog signals).

Every request is logged when it finishes with its duration, and for aggregated
responses whether it came from the cache and each section's status. The
request id comes from the client's ``X-Request-ID`` (if sane) or is made up,
is returned in the response's ``X-Request-ID`` and travels with the Celery
tasks the request causes. With tracing on, a made-up id is the request's trace
id, and every log line carries ``traceId`` and ``spanId``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django_structlog import signals

from aggregation import tracing

from .ratelimits import client_ip

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def note_aggregation(request: HttpRequest, **fields: Any) -> None:
    """Attach fields (``cacheHit``, ``sections``) to this request's finishing log line."""
    target = getattr(request, "_request", request)  # a DRF request wraps Django's
    target.aggregation_log = {**getattr(target, "aggregation_log", {}), **fields}  # type: ignore[union-attr]


@receiver(signals.bind_extra_request_metadata, dispatch_uid="aggregation.request_started")
def request_started(
    sender: Any, request: HttpRequest, logger: Any, log_kwargs: dict[str, Any], **kwargs: Any
) -> None:
    """Start the clock, keep only sane client request ids, bind the client IP."""
    request.started_at = time.perf_counter()  # type: ignore[attr-defined]
    # META, not request.headers: that builds a dict of every header first.
    sent = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    bound = {"ip": client_ip(request)}
    if not REQUEST_ID.match(sent):
        # Made up here: with tracing on, the trace's id, so a log line leads to its trace;
        # else the one django-structlog made when none was sent, or a new one.
        ids = tracing.current_ids()
        if ids is not None:
            request_id = ids[0]
        elif sent or not request_id:
            request_id = str(uuid.uuid4())
        bound["request_id"] = request_id
    tracing.annotate({"app.request_id": request_id})  # and a trace to its log lines
    structlog.contextvars.bind_contextvars(**bound)


@receiver(signals.bind_extra_request_finished_metadata, dispatch_uid="aggregation.request_finished")
def request_finished(
    sender: Any,
    request: HttpRequest,
    logger: Any,
    response: HttpResponse,
    log_kwargs: dict[str, Any],
    **kwargs: Any,
) -> None:
    """Add duration and aggregation fields; return the request id to the client."""
    started = getattr(request, "started_at", None)
    if started is not None:
        log_kwargs["duration"] = round((time.perf_counter() - started) * 1000, 2)
    log_kwargs.update(getattr(request, "aggregation_log", {}))
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        response["X-Request-ID"] = request_id
