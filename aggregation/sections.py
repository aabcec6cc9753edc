"""Section declarations: what a section is, and a registry that resolves names.

A section is declared once by a domain app and serves both the batch endpoint and
its legacy single endpoint. The engine knows nothing of what a section fetches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .plans import Plan, Planned


@dataclass(frozen=True)
class SectionContext:
    """Everything a section may depend on for one request.

    ``now`` is fixed once per request so every section filters by the same moment.
    ``options`` carries domain parameters (a location, say) the engine passes through.
    """

    now: datetime
    limit: int
    user_id: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SectionPayload:
    """What a section's fetch returns: serialized items, the total, and expiry.

    ``expires_at`` is the earliest moment at which an item stops being valid
    (an offer's end, an event's start); a cached copy must not outlive it.
    ``stats`` are figures about the items for optional analytics.
    ``value`` is the whole content of a section of shape ``"value"``.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    has_more: bool | None = None  # None: more exist when the total exceeds the items
    expires_at: datetime | None = None
    stats: dict[str, float] = field(default_factory=dict)
    value: Any = None


@dataclass
class Section:
    """A named, independently fetched part of an aggregated response.

    ``fetch`` runs in a worker thread with its own database connection, or on
    the request thread. ``plan`` is the same reads as a query plan (``plans.py``),
    which a driver can batch with other sections' (PostgreSQL's pipeline); a
    ``@planned`` fetch brings its own.
    ``timeout_ms`` overrides ``QUERY_TIMEOUT`` for this section.
    ``item_fields`` lists the item keys a sparse fieldset may name.
    ``tags`` name the data the section depends on, for cache invalidation.
    ``vary`` names what of the context changes its content besides ``limit``:
    ``"user"`` (personalised: keyed and tagged per user), ``"location"``.
    ``type`` is the section object's ``type`` field (``"recommendations"``).
    ``shape``: ``"list"`` sections are wrapped in the section object (id,
    title, type, items, total...); ``"value"`` sections are their payload's
    ``value`` as is, with ``empty`` standing in when they fail.
    ``cache_name`` names its own cache entries where the registry's key
    function uses one (``trainer:{cache_name}:{id}``).
    """

    id: str
    title: str
    type: str
    fetch: Callable[[SectionContext], SectionPayload]
    aliases: tuple[str, ...] = ()
    timeout_ms: int | None = None
    item_fields: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vary: tuple[str, ...] = ()
    shape: str = "list"
    empty: Any = None
    cache_name: str = ""
    plan: Callable[[SectionContext], Plan[SectionPayload]] | None = None

    def __post_init__(self) -> None:
        if self.plan is None and isinstance(self.fetch, Planned):
            self.plan = self.fetch.plan

    def envelope(self, payload: SectionPayload, *, last_updated: str) -> Any:
        """The section object of seed 004 §1.3, or the value of a value section."""
        if self.shape == "value":
            return payload.value
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "items": payload.items,
            "total": payload.total,
            "hasMore": payload.has_more
            if payload.has_more is not None
            else payload.total > len(payload.items),
            "lastUpdated": last_updated,
        }

    def fallback(self, *, last_updated: str) -> Any:
        """The empty stand-in of seed 004 §5.2 for a failed section."""
        if self.shape == "value":
            return self.empty
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "items": [],
            "total": 0,
            "hasMore": False,
            "lastUpdated": last_updated,
            "error": True,
        }


class UnknownSection(ValueError):
    """A requested section name matches no declared section."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class SectionRegistry:
    """An ordered set of sections, found by id or alias (``trending_stores``).

    ``cache_key`` names each section's own cache entry for a context; a
    registry without one never caches sections on their own. ``database``
    names the database alias its sections read when it is not the default
    one (called each time: routers decide it from settings).
    """

    def __init__(
        self,
        sections: Iterable[Section],
        *,
        cache_key: Callable[[Section, SectionContext], str] | None = None,
        database: Callable[[], str | None] | None = None,
    ) -> None:
        self.cache_key = cache_key
        self.database = database
        self._sections: dict[str, Section] = {}
        self._names: dict[str, str] = {}
        for section in sections:
            self._sections[section.id] = section
            for name in (section.id, *section.aliases):
                self._names[name.lower()] = section.id

    def __iter__(self) -> Iterator[Section]:
        return iter(self._sections.values())

    def __getitem__(self, section_id: str) -> Section:
        return self._sections[section_id]

    @property
    def ids(self) -> list[str]:
        """Canonical ids in declaration order."""
        return list(self._sections)

    def canonical(self, name: str) -> str | None:
        """The canonical id for a name or alias, or None."""
        return self._names.get(name.strip().lower())

    def resolve(self, names: Iterable[str] | None) -> list[Section]:
        """Sections for the given names in declaration order; all when names is None.

        Raises ``UnknownSection`` listing every name that matched nothing.
        """
        if names is None:
            return list(self._sections.values())
        wanted, unknown = set(), []
        for name in names:
            canonical = self.canonical(name)
            if canonical is None:
                unknown.append(name)
            else:
                wanted.add(canonical)
        if unknown:
            raise UnknownSection(unknown)
        return [s for s in self._sections.values() if s.id in wanted]
