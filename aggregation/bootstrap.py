"""Bootstraps: every section about one subject (a trainer, a student) at once.

A ``Bootstrap`` is declared by a domain app with its subject's kind and its
sections; everything else follows from the kind, in one place:

=====================  ===============================
tag                    ``trainer:7``
bootstrap cache key    ``trainer:bootstrap:7``
section cache keys     ``trainer:overview:7``, ``trainer:payout-claims:7``...
metrics namespaces     ``trainer:bootstrap``, ``trainer:section``
=====================  ===============================

Served from one database snapshot, cached for read-your-writes (every read
checks the subject's tag; no stale or unverified copy is ever served); and
each section alone from its own entry, for the individual endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings

from caching.activity import recently_active
from caching.consistency import register_verifier
from caching.engine import CachePolicy, Computed, get_or_compute
from caching.keys import beside
from caching.warming import register_warmer

from .assembly import BatchBody, batch_view
from .batch import BatchRequest, BatchResult, ReadMode, cached_batch, recompute_batch, serve_batch
from .bounded import within_query_timeout
from .compute import SectionResult, compute_sections
from .plans import Plan, Planned
from .sections import Section, SectionContext, SectionPayload, SectionRegistry

SUBJECT_OPTION = "subject_id"
SUBJECT_ARG = "subject_arg"


def subject_tag(kind: str, subject_id: int) -> str:
    """The cache tag of everything shown about one subject: ``trainer:7``."""
    return f"{kind}:{subject_id}"


def read_your_writes_policy(namespace: str) -> CachePolicy:
    """Never stale, never unverified (TTL ``CACHE_TTL``, 5 minutes).

    Every read checks the tag generations; a copy whose generations cannot be
    checked (Redis down) is not served, and no stale copy is served on errors:
    after a mutation returns, no read shows the state before it.
    """
    return CachePolicy(
        namespace=namespace,
        soft_ttl=settings.CACHE_TTL,
        hard_ttl=settings.CACHE_TTL,
        verified_reads=True,
    )


def subject_id_of(context: SectionContext) -> int:
    """The id of the subject a bootstrap section is fetched for."""
    return context.options[SUBJECT_OPTION]


def subject_section(
    section_id: str,
    title: str,
    read: Callable[..., Any],
    empty: Any,
    *,
    expires: Callable[[Any], datetime | None] | None = None,
    cache_name: str = "",
) -> Section:
    """A bootstrap section whose content is what ``read`` returns for the subject, as is.

    ``read`` is a selector called with the subject's id under its bootstrap's
    ``subject_arg`` (``trainer_id=7``). ``empty`` stands in when it fails.
    ``expires(value)`` is when the content stops being true (the first upcoming
    session starts, say): content that expires depends on the moment, so
    ``read`` then also gets the request's ``now=``.
    """

    def arguments(context: SectionContext) -> dict[str, Any]:
        found: dict[str, Any] = {context.options[SUBJECT_ARG]: subject_id_of(context)}
        if expires is not None:
            found["now"] = context.now
        return found

    def payload(value: Any) -> SectionPayload:
        return SectionPayload(value=value, expires_at=expires(value) if expires else None)

    def fetch(context: SectionContext) -> SectionPayload:
        return payload(read(**arguments(context)))

    def plan(context: SectionContext) -> Plan[SectionPayload]:
        return payload((yield from cast(Planned, read).plan(**arguments(context))))

    fetch.__doc__ = title
    return Section(
        id=section_id,
        title=title,
        type=section_id,
        fetch=fetch,
        plan=plan if isinstance(read, Planned) else None,
        shape="value",
        empty=empty,
        cache_name=cache_name,
    )


@dataclass
class Bootstrap:
    """The bootstrap of one kind of subject: its sections, keys, tags and policy.

    ``owner(subject_id)`` is the id of the user the subject is (a trainer's
    account), or None when there is no such subject; ``subject_arg`` is the
    keyword its selectors take the subject's id by (``trainer_id``).
    """

    kind: str
    sections: Iterable[Section]
    owner: Callable[[int], int | None]
    subject_arg: str
    registry: SectionRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = SectionRegistry(self.sections, cache_key=self.section_cache_key)

    def tag(self, subject_id: int) -> str:
        """``trainer:7``."""
        return subject_tag(self.kind, subject_id)

    def cache_key(self, subject_id: int) -> str:
        """``trainer:bootstrap:7`` (the specification's key)."""
        return f"{self.kind}:bootstrap:{subject_id}"

    def section_cache_key(self, section: Section, context: SectionContext) -> str:
        """``trainer:overview:7``, ``trainer:payout-claims:7``..."""
        return f"{self.kind}:{section.cache_name or section.id}:{subject_id_of(context)}"

    def context(self, subject_id: int) -> SectionContext:
        """A section context about one subject, tagged with its tag."""
        options = {
            SUBJECT_OPTION: subject_id,
            SUBJECT_ARG: self.subject_arg,
            "tags": (self.tag(subject_id),),
        }
        return SectionContext(now=datetime.now(UTC), limit=0, options=options)

    @property
    def policy(self) -> CachePolicy:
        """The whole bootstrap's cache policy (read-your-writes)."""
        return read_your_writes_policy(f"{self.kind}:bootstrap")

    @property
    def section_policy(self) -> CachePolicy:
        """Each section's own entry (read-your-writes, counted apart)."""
        return read_your_writes_policy(f"{self.kind}:section")

    def request(self, subject_id: int, *, owner: int | None = None) -> BatchRequest:
        """The whole bootstrap of one subject: every section on one snapshot.

        Sections are written to their own cache entries too (the individual
        endpoints read them) but never read from them here: a bootstrap is one
        point in time. ``owner`` (the subject's user) is kept with the entry,
        so a later read can check access without the database (``peek``).
        """
        return BatchRequest(
            registry=self.registry,
            sections=list(self.registry),
            context=self.context(subject_id),
            cache_key=self.cache_key(subject_id),
            policy=self.policy,
            section_policy=self.section_policy,
            consistent=True,
            layout="inline",
            extras=lambda _: {"owner": owner},
            verify=(self.policy.namespace, {"subject_id": subject_id}),
        )

    def peek(
        self, subject_id: int, *, extra_keys: tuple[str, ...] = ()
    ) -> tuple[BatchResult | None, dict[str, Any]]:
        """The cached bootstrap if it is fresh, computing nothing (its ``owner`` says whose).

        ``extra_keys`` are read from the shared cache in the same round trip.
        """
        return cached_batch(self.request(subject_id), extra_keys=extra_keys)

    def serve(
        self, subject_id: int, *, fresh: bool = False, owner: int | None = None
    ) -> BatchResult:
        """The bootstrap through the cache (``fresh``: computed now, from the database)."""
        mode = ReadMode.FRESH if fresh else ReadMode.CACHED
        return serve_batch(self.request(subject_id, owner=owner), mode)

    def recompute(self, args: dict[str, Any]) -> BatchBody:
        """A tracked bootstrap, straight from the database (the consistency monitor's)."""
        return recompute_batch(self.request(args["subject_id"]))

    def section(self, subject_id: int, section_id: str) -> SectionResult:
        """One section alone, from its own cache entry (an individual endpoint)."""
        section = self.registry[section_id]
        results, _ = compute_sections(
            self.registry, [section], self.context(subject_id), section_policy=self.section_policy
        )
        return results[section.id]

    def owner_key(self, subject_id: int) -> str:
        """``trainer:owner:7``: whose the subject is, cached (``owner_of``).

        In the bootstrap's own cache shard (on a cluster), so a hit reads the
        bootstrap, its owner and their generations in one ``MGET``.
        """
        return beside(f"{self.kind}:owner:{subject_id}", self.cache_key(subject_id))

    def owner_of(self, subject_id: int) -> int | None:
        """Whose the subject is, through the cache: no database read on a repeat visit.

        Cached under ``{kind}:owner:{id}`` with the subject's tag, so it goes
        when the subject changes; ``QUERY_TIMEOUT`` bounds the lookup itself.
        """

        def compute() -> Computed:
            owner = within_query_timeout(lambda: self.owner(subject_id))
            return Computed(owner, ok=owner is not None)

        result = get_or_compute(
            self.owner_key(subject_id),
            compute,
            tags=[self.tag(subject_id)],
            policy=read_your_writes_policy(f"{self.kind}:owner"),
        )
        return result.value if result.ok else None

    def warm_recent(self) -> None:
        """Make sure the bootstraps of the most recently active subjects are cached."""
        for subject_id in recently_active(self.kind, settings.BOOTSTRAP_WARM_LIMIT):
            owner = self.owner_of(subject_id)
            if owner is not None:  # gone since it was read
                self.serve(subject_id, owner=owner)

    def register_warmer(self) -> None:
        """Register ``warm_recent`` as the ``{kind}s:recent-bootstraps`` warmer."""
        register_warmer(f"{self.kind}s:recent-bootstraps", (), self.warm_recent)

    def register_verifier(self) -> None:
        """Let the consistency monitor recompute this kind's cached bootstraps."""
        register_verifier(self.policy.namespace, self.recompute, batch_view)
