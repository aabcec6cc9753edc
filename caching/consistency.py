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
  key, tags and age;
- each pass's counts are also kept in Redis (the last ``MAX_PASSES``), so the
  inconsistency rate over a window (``CACHE_CONSISTENCY_WINDOW_S``) can be read
  by any process: ``/metrics`` exposes it at scrape time (the pass itself runs
  on a Celery worker, whose counters nobody scrapes) and the cache page shows
  it as nines.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily

from .keys import CONSISTENCY_KEY, CONSISTENCY_PASSES_KEY, CONSISTENCY_SAMPLES_KEY
from .shared import SharedCacheUnavailable, shared_cache
from .tags import read_generations

logger = logging.getLogger(__name__)

MAX_TRACKED = 2_000  # entries remembered for sampling, newest kept
# Passes kept for the window: 3.5 days at the default interval of 300 s. A
# window longer than the passes kept cover is cut to what they cover.
MAX_PASSES = 1_000

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
            _keep_pass(report)
        shared_cache.hset_many(f"{CONSISTENCY_KEY}:last", {"run": time.time()})
    return report


def _keep_pass(report: Report) -> None:
    """One member per pass, scored by its time (the id keeps equal passes apart)."""
    now = time.time()
    member = orjson.dumps(
        {
            "at": now,
            "id": uuid.uuid4().hex,
            "counts": {ns: [n, report.inconsistent.get(ns, 0)] for ns, n in report.sampled.items()},
        }
    ).decode()
    shared_cache.zadd_trim(CONSISTENCY_PASSES_KEY, member, now, MAX_PASSES)


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


@dataclass(frozen=True)
class WindowRate:
    """Entries sampled and found inconsistent in one namespace over the last window."""

    namespace: str
    sampled: int
    inconsistent: int

    @property
    def inconsistent_ratio(self) -> float:
        """Share of sampled entries that differed from the database (0 with no samples)."""
        return self.inconsistent / self.sampled if self.sampled else 0.0

    @property
    def nines(self) -> float:
        """``-log10`` of the inconsistency rate: 3.0 is 99.9 % consistent.

        With no inconsistency the rate is only known to be below one in
        ``sampled``, so this is ``log10(sampled)``: a lower bound (``at_least``).
        """
        if self.inconsistent == 0:
            return math.log10(self.sampled) if self.sampled else 0.0
        return -math.log10(self.inconsistent_ratio)

    @property
    def at_least(self) -> bool:
        """True when ``nines`` is a lower bound (nothing inconsistent was found)."""
        return self.inconsistent == 0


def window_rates(window_s: float | None = None) -> dict[str, WindowRate]:
    """Per namespace, what the passes of the last ``window_s`` seconds found.

    ``window_s`` defaults to ``CACHE_CONSISTENCY_WINDOW_S``. Empty without Redis.
    """
    window = settings.CACHE_CONSISTENCY_WINDOW_S if window_s is None else window_s
    try:
        members = shared_cache.ztop(CONSISTENCY_PASSES_KEY, MAX_PASSES)
    except SharedCacheUnavailable:
        return {}
    since = time.time() - window
    sums: dict[str, list[int]] = {}
    for member in members:
        one = orjson.loads(member)
        if one["at"] < since:
            break  # newest first: the rest are older still
        for namespace, (sampled, inconsistent) in one["counts"].items():
            row = sums.setdefault(namespace, [0, 0])
            row[0] += sampled
            row[1] += inconsistent
    return {ns: WindowRate(ns, sampled, bad) for ns, (sampled, bad) in sorted(sums.items())}


class ConsistencyWindowCollector:
    """The window's counts and inconsistency rate per namespace, read from Redis at scrape time.

    Every web process exposes the same cluster-wide values (aggregate them
    with ``max``, not ``sum``).
    """

    def describe(self) -> list:
        """Nothing up front: registering must not read Redis."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the window's length, and per namespace its samples and rate."""
        rates = window_rates()
        yield GaugeMetricFamily(
            "aggregation_consistency_window_seconds",
            "The window the consistency gauges cover (CACHE_CONSISTENCY_WINDOW_S).",
            value=settings.CACHE_CONSISTENCY_WINDOW_S,
        )
        families = {
            "sampled": GaugeMetricFamily(
                "aggregation_consistency_window_sampled",
                "Entries the consistency monitor compared over the window, cluster-wide.",
                labels=["namespace"],
            ),
            "inconsistent": GaugeMetricFamily(
                "aggregation_consistency_window_inconsistent",
                "Entries found served as fresh but differing from the database over the window.",
                labels=["namespace"],
            ),
            "ratio": GaugeMetricFamily(
                "aggregation_consistency_inconsistent_ratio",
                "Share of sampled entries found inconsistent over the window (-log10: nines).",
                labels=["namespace"],
            ),
        }
        for rate in rates.values():
            families["sampled"].add_metric([rate.namespace], rate.sampled)
            families["inconsistent"].add_metric([rate.namespace], rate.inconsistent)
            families["ratio"].add_metric([rate.namespace], rate.inconsistent_ratio)
        yield from families.values()


_registered = False


def register_collector() -> None:
    """Register the window collector once per process (the app's ``ready``)."""
    global _registered
    if not _registered:
        REGISTRY.register(ConsistencyWindowCollector())
        _registered = True
