"""Assemble, cache and render aggregated responses.

A computed aggregate (``BatchBody``) holds its sections already serialized, and
deflated, once: every response wraps those bytes with fresh metadata
(``orjson.Fragment``, or a stitched gzip stream), so a cache hit runs no
serializer and compresses only a few hundred bytes of envelope.

Sections are cached on their own too (``<prefix>:<section>:<params>:v1``); a
full-response miss reuses the sections still valid and runs only the others.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError

from caching.consistency import track
from caching.engine import (
    CachePolicy,
    CacheResult,
    Computed,
    get_or_compute,
    lookup_many,
    peek,
    store_many,
)

from . import replicas
from .encoding import deflate_segment, gzip_stitched
from .errors import ErrorCode, error_item
from .formats import iso
from .runner import SectionOutcome, run_sections_here_or_in_pool
from .sections import Section, SectionContext, SectionPayload, SectionRegistry
from .snapshot import Snapshot, shared_snapshot
from .sparse import SectionFields, apply_fieldset

_SECTIONS_PLACEHOLDER = b'"\\u0000sections\\u0000"'
_INLINE_KEY = "\x00"  # stands where a bootstrap's sections go, then is cut out
_INLINE_MARK = b'"\\u0000":0,'
_UNAVAILABLE_CODES = {ErrorCode.DB_CONNECTION_ERROR, ErrorCode.TIMEOUT_ERROR}


@dataclass
class BatchBody:
    """A computed aggregate as cached: serialized sections plus what the envelope needs."""

    sections_json: bytes
    sections_deflate: bytes
    etag: str
    errors: list[dict[str, str]]
    section_status: dict[str, str]
    extras: dict[str, Any] = field(default_factory=dict)
    computed_at: float = 0.0
    expires_at: float | None = None
    layout: str = "sections"
    snapshot: dict[str, str | None] | None = None

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

    @property
    def unavailable(self) -> bool:
        """Every section failed for want of the database (down or too slow)."""
        return self.all_failed and all(e["code"] in _UNAVAILABLE_CODES for e in self.errors)


@dataclass
class SectionResult:
    """One section's part of an aggregate, as cached per section."""

    body: dict[str, Any]
    status: str
    stats: dict[str, float]
    expires_at: float | None
    error: dict[str, str] | None = None


def section_cache_key(registry: SectionRegistry, section: Section, context: SectionContext) -> str:
    """The key of a section's own cache entry, as its registry names it."""
    if registry.cache_key is None:
        raise ValueError("This registry does not cache sections on their own.")
    return registry.cache_key(section, context)


def section_tags(section: Section, context: SectionContext) -> tuple[str, ...]:
    """The tags a section's content depends on for this request.

    Its own, the user's for personalised sections, and any the request adds
    (``options["tags"]``: the trainer or student a bootstrap is about).
    """
    tags = (*section.tags, *context.options.get("tags", ()))
    if "user" in section.vary and context.user_id is not None:
        return (*tags, f"user:{context.user_id}")
    return tags


def _from_outcome(outcome: SectionOutcome, stamp: str) -> SectionResult:
    section = outcome.section
    if outcome.payload is not None:
        payload: SectionPayload = outcome.payload
        return SectionResult(
            body=section.envelope(payload, last_updated=stamp),
            status="success",
            stats=payload.stats,
            expires_at=payload.expires_at.timestamp() if payload.expires_at else None,
        )
    return SectionResult(
        body=section.fallback(last_updated=stamp),
        status="timeout" if outcome.error_code == ErrorCode.TIMEOUT_ERROR else "failed",
        stats={},
        expires_at=None,
        error=error_item(
            outcome.error_code or ErrorCode.SECTION_FETCH_ERROR,
            outcome.error_message or "",
            section=section.id,
        ),
    )


def compute_sections(
    registry: SectionRegistry,
    sections: list[Section],
    context: SectionContext,
    *,
    section_policy: CachePolicy | None,
    reuse_sections: bool = True,
    consistent: bool = False,
) -> tuple[dict[str, SectionResult], Snapshot | None]:
    """Each section's result: from the section cache when valid, else run concurrently.

    Newly computed successful sections are cached with the tag generations read
    before they ran. ``section_policy=None`` reads and writes no section cache;
    ``reuse_sections=False`` writes but does not read it. ``consistent`` runs
    the sections on one database snapshot (and so never mixes in cached ones).
    """
    results: dict[str, SectionResult] = {}
    keys: dict[str, str] = {}
    generations: dict[str, int] = {}
    if section_policy is not None:
        keys = {s.id: section_cache_key(registry, s, context) for s in sections}
        cached, generations = lookup_many(
            {keys[s.id]: section_tags(s, context) for s in sections},
            namespace=section_policy.namespace,
        )
        if reuse_sections and not consistent:
            results = {s.id: cached[keys[s.id]] for s in sections if keys[s.id] in cached}
    to_run = [s for s in sections if s.id not in results]
    snapshot: Snapshot | None = None
    # A replica that has replayed every write these sections' tags saw (their
    # generations are already read), when sections run on this thread; or the
    # registry's own database (the storefront's MongoDB), which has none.
    own = registry.database() if registry.database else None
    if own and own != DEFAULT_DB_ALIAS:
        using = own
    elif not to_run or settings.SECTIONS_IN_PARALLEL:
        using = DEFAULT_DB_ALIAS
    else:
        using = replicas.choose(t for s in to_run for t in section_tags(s, context))
    on_replica = using not in (DEFAULT_DB_ALIAS, own)
    replicas.section_reads.labels(using).inc(len(to_run))
    outcomes: list[SectionOutcome] = []
    try:
        outcomes, snapshot = _run_sections(to_run, context, consistent=consistent, using=using)
        replica_failed = on_replica and any(
            o.error_code == ErrorCode.DB_CONNECTION_ERROR for o in outcomes
        )
    except (OperationalError, InterfaceError):
        if not on_replica:
            raise
        replica_failed = True  # the replica went away around the snapshot
    if replica_failed:
        # The replica went away mid-read: set it aside, and read the primary.
        replicas.set_aside(using, "failed while reading sections")
        return compute_sections(
            registry,
            sections,
            context,
            section_policy=section_policy,
            reuse_sections=reuse_sections,
            consistent=consistent,
        )
    stamp = iso(context.now)
    to_store = []
    for outcome in outcomes:
        result = _from_outcome(outcome, stamp)
        results[outcome.section.id] = result
        if section_policy is not None and result.status == "success":
            tags = section_tags(outcome.section, context)
            computed = Computed(result, expires_at=result.expires_at)
            to_store.append((keys[outcome.section.id], computed, {t: generations[t] for t in tags}))
    if section_policy is not None:
        store_many(to_store, policy=section_policy)
    return {s.id: results[s.id] for s in sections}, snapshot


def _run_sections(
    to_run: list[Section], context: SectionContext, *, consistent: bool, using: str
) -> tuple[list[SectionOutcome], Snapshot | None]:
    if not to_run:
        return [], None
    if consistent:
        with (
            replicas.reading(using),
            shared_snapshot(export=settings.SECTIONS_IN_PARALLEL, using=using) as snapshot,
        ):
            outcomes = run_sections_here_or_in_pool(
                to_run, context, snapshot_id=snapshot.id, using=using
            )
        return outcomes, snapshot
    with replicas.reading(using):
        return run_sections_here_or_in_pool(to_run, context, using=using), None


def assemble(
    results: dict[str, SectionResult],
    *,
    now: datetime,
    extras: Callable[[dict[str, SectionResult]], dict[str, Any]] | None = None,
    layout: str = "sections",
    snapshot: Snapshot | None = None,
) -> BatchBody:
    """Serialize (and deflate) the sections once; gather errors and expiry.

    ``layout="sections"``: the response has ``data.sections = {...}`` (homepage).
    ``layout="inline"``: each section is a member of ``data`` (bootstraps), so
    the cached bytes are the members without the enclosing braces.
    """
    sections = {section_id: r.body for section_id, r in results.items()}
    errors = [r.error for r in results.values() if r.error is not None]
    sections_json = orjson.dumps(sections)
    if layout == "inline":
        sections_json = sections_json[1:-1]
    digest = hashlib.blake2b(sections_json, digest_size=16)
    digest.update(orjson.dumps(errors))
    expiries = [r.expires_at for r in results.values() if r.expires_at is not None]
    return BatchBody(
        sections_json=sections_json,
        sections_deflate=deflate_segment(sections_json),
        etag=f'W/"{digest.hexdigest()}"',
        errors=errors,
        section_status={section_id: r.status for section_id, r in results.items()},
        extras=extras(results) if extras else {},
        computed_at=now.timestamp(),
        expires_at=min(expiries) if expiries else None,
        layout=layout,
        snapshot=snapshot.as_metadata() if snapshot else None,
    )


@dataclass
class BatchResult:
    """A body (fresh or cached) and how it was served."""

    body: BatchBody
    cache: CacheResult
    cache_key: str
    user_id: int | None
    started: float
    tags: list[str] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """200; 503 when nothing could be computed for want of the database; 500 otherwise."""
        if not self.body.all_failed:
            return 200
        return 503 if self.body.unavailable else 500

    def metadata(self) -> dict[str, Any]:
        """``data.metadata`` of seed 004 §1.3, plus ``stale`` (and ``snapshot``)."""
        metadata: dict[str, Any] = {"timestamp": iso(datetime.now(UTC))}
        if self.user_id is not None:  # declared optional: absent for anonymous callers
            metadata["userId"] = str(self.user_id)
        metadata |= {
            "cacheKey": self.cache_key,
            "ttl": self.cache.ttl,
            "fromCache": self.cache.from_cache,
            "stale": self.cache.stale,
            "executionTime": round((time.perf_counter() - self.started) * 1000, 2),
            "partialFailure": self.body.partial_failure,
        }
        if self.body.snapshot is not None:
            metadata["snapshot"] = self.body.snapshot
        return metadata


def batch_tags(
    sections: list[Section], context: SectionContext, tags: tuple[str, ...] = ()
) -> list[str]:
    """Every tag a batch of ``sections`` depends on, plus ``tags``, sorted."""
    return sorted({t for s in sections for t in section_tags(s, context)} | set(tags))


def cached_batch(
    *,
    sections: list[Section],
    context: SectionContext,
    cache_key: str,
    policy: CachePolicy,
    tags: tuple[str, ...] = (),
) -> BatchResult | None:
    """The batch ``serve_batch`` would serve if a fresh copy is cached; else None.

    Computes nothing and starts no refresh: the caller goes the whole way
    (``serve_batch``) when this finds nothing.
    """
    started = time.perf_counter()
    all_tags = batch_tags(sections, context, tags)
    cached = peek(cache_key, tags=all_tags, policy=policy)
    if cached is None:
        return None
    return BatchResult(
        body=cached.value,
        cache=cached,
        cache_key=cache_key,
        user_id=context.user_id,
        started=started,
        tags=all_tags,
    )


def serve_batch(
    *,
    registry: SectionRegistry,
    sections: list[Section],
    context: SectionContext,
    cache_key: str,
    policy: CachePolicy,
    section_policy: CachePolicy | None = None,
    tags: tuple[str, ...] = (),
    fresh: bool = False,
    refresh: bool = False,
    consistent: bool = False,
    layout: str = "sections",
    extras: Callable[[dict[str, SectionResult]], dict[str, Any]] | None = None,
    verify: tuple[str, dict[str, Any]] | None = None,
) -> BatchResult:
    """Answer from the cache, or compute the sections (reusing cached ones) and cache it.

    The response depends on the union of its sections' tags plus ``tags``.
    ``fresh`` bypasses every cache read but still stores what it computed;
    ``refresh`` (warmers) recomputes the response but reuses valid sections.
    ``consistent`` computes every section from one database snapshot.
    ``verify`` (a verifier's name and arguments) lets the consistency monitor
    sample what was stored.
    """
    started = time.perf_counter()
    all_tags = batch_tags(sections, context, tags)

    def compute() -> Computed:
        results, snapshot = compute_sections(
            registry,
            sections,
            context,
            section_policy=section_policy,
            reuse_sections=not fresh,
            consistent=consistent,
        )
        body = assemble(
            results,
            now=context.now,
            extras=extras,
            layout=layout,
            snapshot=snapshot,
        )
        return Computed(
            body,
            ok=not body.all_failed,
            max_age=settings.CACHE_PARTIAL_TTL_S if body.partial_failure else None,
            expires_at=body.expires_at,
        )

    cached = get_or_compute(
        cache_key, compute, tags=all_tags, policy=policy, bypass=fresh or refresh
    )
    if verify is not None and not cached.from_cache and cached.ok and cached.ttl > 0:
        track(cache_key, policy.namespace, *verify)
    return BatchResult(
        body=cached.value,
        cache=cached,
        cache_key=cache_key,
        user_id=context.user_id,
        started=started,
        tags=all_tags,
    )


def recompute_batch(
    registry: SectionRegistry,
    sections: list[Section],
    context: SectionContext,
    *,
    consistent: bool = False,
    layout: str = "sections",
    extras: Callable[[dict[str, SectionResult]], dict[str, Any]] | None = None,
) -> BatchBody:
    """The body ``serve_batch`` would compute, straight from the database (no cache read)."""
    results, snapshot = compute_sections(
        registry, sections, context, section_policy=None, consistent=consistent
    )
    return assemble(results, now=context.now, extras=extras, layout=layout, snapshot=snapshot)


def batch_view(body: BatchBody) -> dict[str, Any]:
    """What a client sees of a body, minus the moment it was computed (``lastUpdated``)."""
    raw = body.sections_json if body.layout == "sections" else b"{" + body.sections_json + b"}"
    sections = {
        section_id: {k: v for k, v in section.items() if k != "lastUpdated"}
        if isinstance(section, dict)
        else section
        for section_id, section in orjson.loads(raw).items()
    }
    return {"sections": sections, "errors": body.errors}


def sparse_etag(etag: str, paths: list[str]) -> str:
    """The ETag of a sparse fieldset of a body whose ETag is ``etag``."""
    digest = hashlib.blake2b(etag.encode(), digest_size=16)
    digest.update("\x00".join(paths).encode())
    return f'W/"{digest.hexdigest()}"'


def render_batch(
    result: BatchResult,
    *,
    extra: dict[str, Any] | None = None,
    gzip: bool = False,
    fieldset: dict[str, SectionFields] | None = None,
) -> bytes:
    """The response bytes around the cached sections (homepage or bootstrap layout).

    With a ``fieldset`` the cached sections are reduced to it here, per
    response: one cached body serves every sparse variant.
    """
    body = result.body
    sections_json, sections_deflate = body.sections_json, body.sections_deflate
    if fieldset:
        sections_json = orjson.dumps(apply_fieldset(orjson.loads(sections_json), fieldset))
        sections_deflate = deflate_segment(sections_json)
    data: dict[str, Any] = {}
    if body.layout == "inline":
        data[_INLINE_KEY] = 0
    else:
        data["sections"] = orjson.Fragment(_SECTIONS_PLACEHOLDER)
    data["metadata"] = result.metadata()
    if extra:
        data.update(extra)
    envelope: dict[str, Any] = {"success": not body.all_failed, "data": data}
    if body.errors:
        envelope["errors"] = body.errors
        if body.all_failed:
            envelope["message"] = "Every section failed."
    envelope["version"] = settings.API_VERSION
    if body.layout == "inline":
        prefix, suffix = orjson.dumps(envelope).split(_INLINE_MARK, 1)
        suffix = b"," + suffix
    else:
        prefix, suffix = orjson.dumps(envelope).split(_SECTIONS_PLACEHOLDER, 1)
    if gzip:
        return gzip_stitched(prefix, sections_json, sections_deflate, suffix)
    return prefix + sections_json + suffix
