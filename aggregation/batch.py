"""Serve a batch: one cached response of many sections, computed on a miss.

A ``BatchRequest`` says what to serve (the sections, their context, the key
and policies); a ``ReadMode`` says how far the cache may answer it. The
sections are computed by ``compute.py``, held as a ``BatchBody``
(``assembly.py``) and written out by ``rendering.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
from typing import Any

from django.conf import settings

from caching.consistency import track
from caching.engine import CachePolicy, CacheResult, Computed, get_or_compute, peek_with
from caching.keys import shard_of, tag_key
from caching.shared import shared_cache

from .assembly import BatchBody, Extras, Layout, assemble
from .compute import Reuse, compute_sections, section_cache_key, section_tags
from .formats import iso
from .plans import Started, shared_totals
from .sections import Section, SectionContext, SectionRegistry


class ReadMode(Enum):
    """How much of the cache a request may be answered from."""

    CACHED = "cached"
    """A valid cached response, else compute (reusing valid section entries)."""
    FRESH = "fresh"
    """``fresh=true``: read no cache at all; what is computed is stored."""
    REWARM = "rewarm"
    """Warmers: recompute the response, reusing valid section entries."""


@dataclass(frozen=True)
class BatchRequest:
    """What one batch response is made of, and where it is cached.

    The response depends on the union of its sections' tags plus ``tags``.
    ``section_policy`` caches each section on its own (None: not at all).
    ``consistent`` computes every section from one database snapshot.
    ``verify`` (a verifier's name and arguments) lets the consistency monitor
    sample what was stored.
    """

    registry: SectionRegistry
    sections: list[Section]
    context: SectionContext
    cache_key: str
    policy: CachePolicy
    section_policy: CachePolicy | None = None
    tags: tuple[str, ...] = ()
    consistent: bool = False
    layout: Layout = "sections"
    extras: Extras | None = None
    verify: tuple[str, dict[str, Any]] | None = None
    # Plans started to learn which shared totals to read ahead, to be driven on.
    started: dict[str, Started] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def all_tags(self) -> list[str]:
        """Every tag the response depends on, sorted (worked out once per request)."""
        return batch_tags(self.sections, self.context, self.tags)


def batch_tags(
    sections: list[Section], context: SectionContext, tags: tuple[str, ...] = ()
) -> list[str]:
    """Every tag a batch of ``sections`` depends on, plus ``tags``, sorted."""
    return sorted({t for s in sections for t in section_tags(s, context)} | set(tags))


@dataclass
class BatchResult:
    """A body (fresh or cached) and how it was served."""

    body: BatchBody
    cache: CacheResult
    cache_key: str
    user_id: int | None
    started: float
    tags: list[str] = field(default_factory=list)
    fresh: bool = False  # asked for with fresh=true: the cache was skipped on purpose
    # The metadata this response has of its own, once fixed (``moment``); a
    # response is rendered again from it when a client holds it as a dictionary.
    fixed_moment: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, request: BatchRequest, cached: CacheResult, *, started: float, fresh: bool = False
    ) -> BatchResult:
        """What serving ``request`` gave: ``cached`` (fresh or from the cache)."""
        return cls(
            body=cached.value,
            cache=cached,
            cache_key=request.cache_key,
            user_id=request.context.user_id,
            started=started,
            tags=request.all_tags,
            fresh=fresh,
        )

    @property
    def status_code(self) -> int:
        """200; 503 when nothing could be computed for want of the database; 500 otherwise."""
        if not self.body.all_failed:
            return 200
        return 503 if self.body.unavailable else 500

    def moment(self) -> dict[str, Any]:
        """The metadata that is this response's own: when, for whom, and how it was served."""
        moment: dict[str, Any] = {"timestamp": iso(datetime.now(UTC))}
        if self.user_id is not None:  # declared optional: absent for anonymous callers
            moment["userId"] = str(self.user_id)
        moment |= {
            "ttl": self.cache.ttl,
            "fromCache": self.cache.from_cache,
            "stale": self.cache.stale,
            "executionTime": round((time.perf_counter() - self.started) * 1000, 2),
        }
        return moment

    def metadata(self) -> dict[str, Any]:
        """``data.metadata`` of seed 004 §1.3, plus ``stale`` (and ``snapshot``, versions)."""
        own = self.fixed_moment if self.fixed_moment is not None else self.moment()
        metadata: dict[str, Any] = {"timestamp": own["timestamp"]}
        if "userId" in own:
            metadata["userId"] = own["userId"]
        metadata |= {
            "cacheKey": self.cache_key,
            "ttl": own["ttl"],
            "fromCache": own["fromCache"],
            "stale": own["stale"],
            "executionTime": own["executionTime"],
            "partialFailure": self.body.partial_failure,
        }
        if self.body.snapshot is not None:
            metadata["snapshot"] = self.body.snapshot
        if self.body.section_versions is not None:  # stored with the body (``delivery.py``)
            metadata["sectionVersions"] = self.body.section_versions
            metadata["bodyVersion"] = self.body.body_version
        return metadata


def cached_batch(
    request: BatchRequest, *, extra_keys: Sequence[str] = ()
) -> tuple[BatchResult | None, dict[str, Any]]:
    """The batch ``serve_batch`` would serve if a fresh copy is cached (else None).

    Computes nothing and starts no refresh: the caller goes the whole way
    (``serve_batch``) when this finds nothing. ``extra_keys`` are read from
    the shared cache in the same round trip (what deciding to serve needs).
    """
    started = time.perf_counter()
    cached, extra = peek_with(
        request.cache_key, tags=request.all_tags, policy=request.policy, extra_keys=extra_keys
    )
    if cached is None:
        return None, extra
    return BatchResult.of(request, cached, started=started), extra


def recompute_batch(request: BatchRequest) -> BatchBody:
    """The body ``serve_batch`` would compute, straight from the database (no cache read)."""
    results, snapshot = compute_sections(
        request.registry,
        request.sections,
        request.context,
        section_policy=None,
        consistent=request.consistent,
    )
    return assemble(
        results,
        extras=request.extras,
        layout=request.layout,
        snapshot=snapshot,
        subject=request.cache_key,
    )


def serve_batch(request: BatchRequest, mode: ReadMode = ReadMode.CACHED) -> BatchResult:
    """Answer from the cache as ``mode`` allows, or compute the sections and cache the response."""
    started = time.perf_counter()

    def compute() -> Computed:
        results, snapshot = compute_sections(
            request.registry,
            request.sections,
            request.context,
            section_policy=request.section_policy,
            consistent=request.consistent,
            reuse=Reuse(sections=mode is not ReadMode.FRESH, started=request.started),
        )
        body = assemble(
            results,
            extras=request.extras,
            layout=request.layout,
            snapshot=snapshot,
            subject=request.cache_key,
        )
        return Computed(
            body,
            ok=not body.all_failed,
            max_age=settings.CACHE_PARTIAL_TTL_S if body.partial_failure else None,
            expires_at=body.expires_at,
        )

    # Round trips to Redis on a miss: the entry and its generations; the lock and
    # everything the computation reads (read ahead); every write, in one pipeline.
    with shared_cache.batched():
        cached = get_or_compute(
            request.cache_key,
            compute,
            tags=request.all_tags,
            policy=request.policy,
            bypass=mode is not ReadMode.CACHED,
            read_ahead=lambda: read_ahead_keys(request, mode),
        )
        if request.verify is not None and not cached.from_cache and cached.ok and cached.ttl > 0:
            track(request.cache_key, request.policy.namespace, *request.verify)
    return BatchResult.of(request, cached, started=started, fresh=mode is ReadMode.FRESH)


def read_ahead_keys(request: BatchRequest, mode: ReadMode = ReadMode.CACHED) -> list[str]:
    """What computing ``request`` reads from the shared cache: section entries, shared totals.

    Section entries only when they may be reused (not ``fresh``, not one snapshot).
    """
    keys = []
    reusable = mode is not ReadMode.FRESH and not request.consistent
    if request.section_policy is not None and reusable:
        keys += [section_cache_key(request.registry, s, request.context) for s in request.sections]
    for total in shared_totals(request.sections, request.context, request.started):
        # (On a cluster the generations a total is checked with are its shard's copies.)
        keys += [total.key, *(tag_key(tag, shard_of(total.key)) for tag in total.tags)]
    return keys
