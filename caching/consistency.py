"""A consistency monitor: whether what the cache serves as fresh still matches the database.

Invalidation is only as good as the writes it hears about: a SQL script, a
restore or a bug in a receiver changes rows without bumping a tag, and the
cache goes on serving the old content as fresh. This measures it, the way the
large caches do, by sampling:

- as an entry is stored, the caller may ``track`` it: its key, namespace and
  how to recompute it (a registered verifier and its arguments). Tracked
  entries sit in one bounded sorted set; nothing is found by scanning keys;
- ``verify`` takes a bounded random sample of them. An entry no longer cached,
  no longer fresh, or whose tags' generations moved since it was stored (it
  changed legitimately, and is not served) is skipped. The others are
  recomputed from the database the way a request would, and compared as a
  client would see them; generations that move during the recomputation skip
  the sample too;
- sampled and inconsistent entries are counted per namespace (Prometheus, and
  Redis for the admin's cache page), and each inconsistency is logged with its
  key, tags and age.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter

from .keys import CONSISTENCY_KEY, CONSISTENCY_SAMPLES_KEY
from .shared import SharedCacheUnavailable, shared_cache
from .tags import read_generations

logger = logging.getLogger(__name__)

MAX_TRACKED = 2_000  # entries remembered for sampling, newest kept

sampled_total = Counter(
    "aggregation_consistency_sampled_total",
    "Cached entries the consistency monitor compared with the database.",
    ["namespace"],
)
inconsistent_total = Counter(
    "aggregation_consistency_inconsistent_total",
    "Sampled entries served as fresh whose content no longer matches the database.",
    ["namespace"],
)


@dataclass(frozen=True)
class Verifier:
    """How to recompute a tracked entry, and what of it a client sees."""

    name: str
    recompute: Callable[[dict[str, Any]], Any]
    view: Callable[[Any], Any]


@dataclass
class Report:
    """One pass: per namespace, entries compared and entries found inconsistent."""

    sampled: dict[str, int] = field(default_factory=dict)
    inconsistent: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def add(self, namespace: str, consistent: bool) -> None:
        self.sampled[namespace] = self.sampled.get(namespace, 0) + 1
        self.inconsistent.setdefault(namespace, 0)
        if not consistent:
            self.inconsistent[namespace] += 1

    @property
    def any_inconsistent(self) -> bool:
        """True when any sampled entry differed from the database."""
        return any(self.inconsistent.values())


_verifiers: dict[str, Verifier] = {}


def register_verifier(
    name: str, recompute: Callable[[dict[str, Any]], Any], view: Callable[[Any], Any]
) -> None:
    """Register (or replace) how entries tracked under ``name`` are recomputed and seen."""
    _verifiers[name] = Verifier(name, recompute, view)


def track(key: str, namespace: str, verifier: str, args: dict[str, Any]) -> None:
    """Remember a stored entry as a candidate for sampling; silently skipped without Redis."""
    member = orjson.dumps(
        {"key": key, "namespace": namespace, "verifier": verifier, "args": args},
        option=orjson.OPT_SORT_KEYS,
    ).decode()
    with contextlib.suppress(SharedCacheUnavailable):
        shared_cache.zadd_trim(CONSISTENCY_SAMPLES_KEY, member, time.time(), MAX_TRACKED)


def _check(sample: dict[str, Any], report: Report) -> None:
    from .engine import Entry  # the engine stores Entry objects under the key

    verifier = _verifiers.get(sample["verifier"])
    entry = shared_cache.get_many([sample["key"]]).get(sample["key"])
    if verifier is None or not isinstance(entry, Entry) or time.time() >= entry.fresh_until:
        report.skipped += 1
        return
    tags = [tag for tag, _ in entry.generations]
    if not entry.matches(read_generations(tags, shard_key=sample["key"])[0]):
        report.skipped += 1  # changed since it was stored: not served, not an inconsistency
        return
    fresh = verifier.recompute(sample["args"])
    if not entry.matches(read_generations(tags, shard_key=sample["key"])[0]):
        report.skipped += 1  # a write landed while recomputing
        return
    consistent = verifier.view(entry.value) == verifier.view(fresh)
    report.add(sample["namespace"], consistent)
    sampled_total.labels(sample["namespace"]).inc()
    if not consistent:
        inconsistent_total.labels(sample["namespace"]).inc()
        logger.warning(
            "Cached entry %s (tags %s, stored %.1f s ago) differs from the database "
            "while served as fresh",
            sample["key"],
            ",".join(tags),
            time.time() - entry.stored_at,
        )


def verify(limit: int) -> Report:
    """Compare up to ``limit`` tracked entries, chosen at random, with the database."""
    report = Report()
    if limit <= 0:  # (a negative count would make Redis sample with repeats)
        return report
    try:
        members = shared_cache.zsample(CONSISTENCY_SAMPLES_KEY, limit)
    except SharedCacheUnavailable:
        return report
    for member in members:
        try:
            _check(orjson.loads(member), report)
        except SharedCacheUnavailable:
            report.skipped += 1
        except Exception:  # one broken sample must not stop the pass
            logger.exception("Consistency check of %s failed", member)
            report.skipped += 1
    counts: dict[str, int] = {}
    for namespace, n in report.sampled.items():
        counts[f"{namespace}|sampled"] = n
        counts[f"{namespace}|inconsistent"] = report.inconsistent.get(namespace, 0)
    with contextlib.suppress(SharedCacheUnavailable):
        if counts:
            shared_cache.hincrby_many(CONSISTENCY_KEY, counts)
        shared_cache.hset_many(f"{CONSISTENCY_KEY}:last", {"run": time.time()})
    return report


def totals() -> dict[str, dict[str, int]]:
    """Counts since Redis last lost them, per namespace: sampled, inconsistent."""
    try:
        raw = shared_cache.hgetall(CONSISTENCY_KEY)
    except SharedCacheUnavailable:
        return {}
    rows: dict[str, dict[str, int]] = {}
    for name, n in raw.items():
        namespace, _, kind = name.rpartition("|")
        rows.setdefault(namespace, {"sampled": 0, "inconsistent": 0})[kind] = n
    return rows
