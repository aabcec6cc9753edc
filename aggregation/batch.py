"""Assemble section outcomes into the cached body, and wrap it into a response.

The body (sections and errors) is serialized once, when computed, and cached as
bytes. Each response wraps those bytes with fresh metadata through
``orjson.Fragment``, so a cache hit does no serializer work at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings

from caching.store import get_or_compute

from .errors import error_item
from .runner import SectionOutcome, run_sections
from .sections import Section, SectionContext
from .sparse import SectionFields, apply_fieldset


@dataclass
class BatchBody:
    """A computed aggregate, as cached: serialized sections plus what the envelope needs."""

    sections_json: bytes
    errors: list[dict[str, str]]
    section_status: dict[str, str]
    extras: dict[str, Any] = field(default_factory=dict)
    computed_at: float = 0.0
    expires_at: float | None = None

    @property
    def partial_failure(self) -> bool:
        """True when at least one section failed."""
        return bool(self.errors)

    @property
    def all_failed(self) -> bool:
        """True when every section failed: nothing worth sending or caching."""
        return bool(self.section_status) and all(
            s != "success" for s in self.section_status.values()
        )


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as the seed's examples write timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def assemble(
    outcomes: list[SectionOutcome],
    *,
    now: datetime,
    fieldset: dict[str, SectionFields] | None = None,
    extras: Callable[[list[SectionOutcome]], dict[str, Any]] | None = None,
) -> BatchBody:
    """Build the cacheable body from outcomes; failed sections get their fallback."""
    stamp = iso(now)
    sections: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    status: dict[str, str] = {}
    expiries = []
    for outcome in outcomes:
        section = outcome.section
        if outcome.ok:
            sections[section.id] = section.envelope(outcome.payload, last_updated=stamp)
            status[section.id] = "success"
            if outcome.payload.expires_at is not None:
                expiries.append(outcome.payload.expires_at.timestamp())
        else:
            sections[section.id] = section.fallback(last_updated=stamp)
            status[section.id] = "timeout" if outcome.error_code == "TIMEOUT_ERROR" else "failed"
            errors.append(error_item(outcome.error_code, outcome.error_message, section=section.id))
    if fieldset:
        sections = apply_fieldset(sections, fieldset)
    return BatchBody(
        sections_json=orjson.dumps(sections),
        errors=errors,
        section_status=status,
        extras=extras(outcomes) if extras else {},
        computed_at=now.timestamp(),
        expires_at=min(expiries) if expiries else None,
    )


def batch_envelope(
    body: BatchBody, *, metadata: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The response object of seed 004 §1.3 around an (often cached) body."""
    data: dict[str, Any] = {"sections": orjson.Fragment(body.sections_json), "metadata": metadata}
    if extra:
        data.update(extra)
    response: dict[str, Any] = {"success": not body.all_failed, "data": data}
    if body.errors:
        response["errors"] = body.errors
        if body.all_failed:
            response["message"] = "Every section failed."
    response["version"] = settings.API_VERSION
    return response


def compute_batch(
    sections: list[Section],
    context: SectionContext,
    *,
    fieldset: dict[str, SectionFields] | None = None,
    extras: Callable[[list[SectionOutcome]], dict[str, Any]] | None = None,
) -> BatchBody:
    """Run the sections concurrently and assemble their body."""
    outcomes = run_sections(sections, context)
    return assemble(outcomes, now=context.now, fieldset=fieldset, extras=extras)


def batch_ttl(body: BatchBody, *, ttl: int, partial_ttl: int, now: float) -> int:
    """Seconds a body may be cached: never past its content's expiry; 0 = do not cache.

    A body with failed sections is kept only briefly, so one transient failure
    is not served for the full TTL; a body where every section failed is not kept.
    """
    if body.all_failed:
        return 0
    seconds = partial_ttl if body.partial_failure else ttl
    if body.expires_at is not None:
        seconds = min(seconds, int(body.expires_at - now))
    return max(seconds, 0)


@dataclass
class BatchResult:
    """A body (fresh or cached) plus the per-response metadata of seed 004 §1.3."""

    body: BatchBody
    metadata: dict[str, Any]

    @property
    def status_code(self) -> int:
        """200, or 500 when every section failed."""
        return 500 if self.body.all_failed else 200


def serve_batch(
    *,
    sections: list[Section],
    context: SectionContext,
    cache_key: str,
    fresh: bool = False,
    fieldset: dict[str, SectionFields] | None = None,
    extras: Callable[[list[SectionOutcome]], dict[str, Any]] | None = None,
) -> BatchResult:
    """Answer from the cache, or run the sections and cache what they produced."""
    started = time.perf_counter()

    def compute() -> tuple[BatchBody, int]:
        body = compute_batch(sections, context, fieldset=fieldset, extras=extras)
        ttl = batch_ttl(
            body, ttl=settings.CACHE_TTL, partial_ttl=settings.CACHE_PARTIAL_TTL, now=time.time()
        )
        return body, ttl

    cached = get_or_compute(cache_key, compute, bypass=fresh)
    body: BatchBody = cached.value
    metadata = {
        "timestamp": iso(datetime.now(UTC)),
        "userId": str(context.user_id) if context.user_id is not None else None,
        "cacheKey": cache_key,
        "ttl": cached.ttl,
        "fromCache": cached.from_cache,
        "executionTime": round((time.perf_counter() - started) * 1000, 2),
        "partialFailure": body.partial_failure,
    }
    return BatchResult(body=body, metadata=metadata)
