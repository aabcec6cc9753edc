"""Compute a batch's sections: from their own cache entries when valid, else from the database.

Sections are cached on their own (``<prefix>:<section>:<params>:v1``), so a
whole-response miss reuses the sections still valid and runs only the others.
Where they run: the registry's own database (the storefront's MongoDB), a
read replica that has replayed every write their tags saw (sections on the
request thread), or the primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from caching.engine import CachePolicy, Computed, lookup_many, store_many

from . import replicas
from .errors import ErrorCode, error_item
from .formats import iso
from .pipeline import can_pipeline, run_pipelined
from .plans import Started
from .runner import SectionOutcome, run_sections_here_or_in_pool
from .sections import Section, SectionContext, SectionRegistry
from .snapshot import Snapshot, shared_snapshot


@dataclass
class SectionResult:
    """One section's part of an aggregate, as cached per section."""

    body: dict[str, Any]
    status: str  # "success", "timeout" or "failed"
    stats: dict[str, float]
    expires_at: float | None
    error: dict[str, str] | None = None

    @classmethod
    def of(cls, outcome: SectionOutcome, *, last_updated: str) -> SectionResult:
        """The result of a section that ran: its envelope, or its fallback and error."""
        section = outcome.section
        if outcome.payload is not None:
            payload = outcome.payload
            return cls(
                body=section.envelope(payload, last_updated=last_updated),
                status="success",
                stats=payload.stats,
                expires_at=payload.expires_at.timestamp() if payload.expires_at else None,
            )
        return cls(
            body=section.fallback(last_updated=last_updated),
            status="timeout" if outcome.error_code == ErrorCode.TIMEOUT_ERROR else "failed",
            stats={},
            expires_at=None,
            error=error_item(
                outcome.error_code or ErrorCode.SECTION_FETCH_ERROR,
                outcome.error_message or "",
                section=section.id,
            ),
        )


@dataclass
class Reuse:
    """What a computation may take instead of doing again.

    ``sections``: valid section entries (False: write them, read none, as
    ``fresh=true``). ``started``: plans already advanced to their first step
    (to learn what to read ahead), by section id, taken as they are used.
    """

    sections: bool = True
    started: dict[str, Started] = field(default_factory=dict)


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


def compute_sections(
    registry: SectionRegistry,
    sections: list[Section],
    context: SectionContext,
    *,
    section_policy: CachePolicy | None,
    consistent: bool = False,
    reuse: Reuse | None = None,
) -> tuple[dict[str, SectionResult], Snapshot | None]:
    """Each section's result, in order: from the section cache when valid, else run.

    Newly computed successful sections are cached with the tag generations read
    before they ran. ``section_policy=None`` reads and writes no section cache;
    ``reuse`` says what else may be used (see ``Reuse``). ``consistent`` runs
    the sections on one database snapshot (and so never mixes in cached ones).
    """
    reuse = reuse or Reuse()
    results: dict[str, SectionResult] = {}
    keys: dict[str, str] = {}
    generations: dict[str, dict[str, int]] = {}  # per section key
    if section_policy is not None:
        keys = {s.id: section_cache_key(registry, s, context) for s in sections}
        reusable = reuse.sections and not consistent
        cached, generations = lookup_many(
            {keys[s.id]: section_tags(s, context) for s in sections},
            namespace=section_policy.namespace,
            values_too=reusable,  # otherwise only what to store new entries with
        )
        if reusable:
            results = {s.id: cached[keys[s.id]] for s in sections if keys[s.id] in cached}
    to_run = [s for s in sections if s.id not in results]
    outcomes, snapshot = _run(registry, to_run, context, consistent=consistent,
                              started=reuse.started)  # fmt: skip
    stamp = iso(context.now)
    to_store = []
    for outcome in outcomes:
        result = SectionResult.of(outcome, last_updated=stamp)
        results[outcome.section.id] = result
        if section_policy is not None and result.status == "success":
            key = keys[outcome.section.id]
            computed = Computed(result, expires_at=result.expires_at)
            to_store.append((key, computed, generations[key]))
    if section_policy is not None:
        store_many(to_store, policy=section_policy)
    return {s.id: results[s.id] for s in sections}, snapshot


Outcomes = tuple[list[SectionOutcome], Snapshot | None]


def _run(
    registry: SectionRegistry,
    to_run: list[Section],
    context: SectionContext,
    *,
    consistent: bool,
    started: dict[str, Started],
) -> Outcomes:
    """Run ``to_run`` where they belong (see the module docstring)."""
    if not to_run:
        return [], None

    def read(using: str) -> Outcomes:
        replicas.section_reads.labels(using).inc(len(to_run))
        return _run_on(to_run, context, consistent=consistent, using=using, started=started)

    own = registry.database() if registry.database else None
    if own and own != DEFAULT_DB_ALIAS:
        return read(own)  # the registry's own database (MongoDB) has no replicas
    if settings.SECTIONS_IN_PARALLEL:
        return read(DEFAULT_DB_ALIAS)  # pool threads read the primary
    return replicas.read_with_failover(
        (t for s in to_run for t in section_tags(s, context)), read, failed=_lost_connection
    )


def _lost_connection(outcomes: Outcomes) -> bool:
    return any(o.error_code == ErrorCode.DB_CONNECTION_ERROR for o in outcomes[0])


def _run_on(
    to_run: list[Section],
    context: SectionContext,
    *,
    consistent: bool,
    using: str,
    started: dict[str, Started],
) -> Outcomes:
    with replicas.reading(using):
        if not settings.SECTIONS_IN_PARALLEL and can_pipeline(to_run, using):
            outcomes = run_pipelined(
                to_run, context, using=using, consistent=consistent, started=started
            )
            return outcomes, Snapshot("single-transaction") if consistent else None
        if not consistent:
            return run_sections_here_or_in_pool(to_run, context, using=using), None
        with shared_snapshot(export=settings.SECTIONS_IN_PARALLEL, using=using) as snapshot:
            outcomes = run_sections_here_or_in_pool(
                to_run, context, snapshot_id=snapshot.id, using=using
            )
        return outcomes, snapshot
