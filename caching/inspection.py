"""What ops look at: hit rates, tag generations, last warm times (dashboard, command)."""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import cluster_stats
from .shared import SharedCacheUnavailable
from .tags import read_generations
from .warming import last_warm_times, warmers


@dataclass
class NamespaceStats:
    namespace: str
    hits: int
    misses: int
    stale: int
    errors: int
    coalesced: int
    l1_hits: int
    l2_hits: int

    @property
    def lookups(self) -> int:
        """Every counted lookup."""
        return self.hits + self.misses + self.stale + self.coalesced

    @property
    def hit_rate(self) -> float | None:
        """Share of lookups answered from the cache (stale copies included)."""
        return (self.hits + self.stale) / self.lookups if self.lookups else None


def namespace_stats() -> list[NamespaceStats]:
    """Cluster-wide counts per key namespace."""
    return [
        NamespaceStats(
            namespace=namespace,
            hits=row.get("hit", 0),
            misses=row.get("miss", 0),
            stale=row.get("stale", 0),
            errors=row.get("error", 0),
            coalesced=row.get("coalesced", 0),
            l1_hits=row.get("l1_hit", 0),
            l2_hits=row.get("l2_hit", 0),
        )
        for namespace, row in sorted(cluster_stats().items())
    ]


def known_tags() -> list[str]:
    """The tags the registered warmers depend on (per-user tags are looked up by name)."""
    return sorted({t for w in warmers() for t in w.tags})


def tag_generations(tags: list[str]) -> dict[str, int] | None:
    """Current generations, or None when Redis cannot be reached."""
    try:
        generations, _ = read_generations(tags)
    except SharedCacheUnavailable:
        return None
    return generations


def warm_times() -> dict[str, float | None]:
    """When each warmer last ran."""
    return last_warm_times()
