"""The engine's own Redis keys, in one place.

Domain apps name the keys of their datasets in their own ``keys.py``; these are
the keys the engine keeps beside them (generations, locks, bookkeeping). All
sit under django-redis's ``KEY_PREFIX``. None is ever found by scanning.
"""

from __future__ import annotations

STATS_KEY = "cache:stats"  # hash: "namespace|layer|outcome" -> count, all processes
WARM_RUNS_KEY = "warm:runs"  # hash: task name -> runs
REWARM_TAGS_KEY = "rewarm:tags"  # set: tags invalidated since the pending re-warm was scheduled
REWARM_SCHEDULED_KEY = "rewarm:scheduled"  # flag: a re-warm is scheduled and has not started
CONSISTENCY_SAMPLES_KEY = "consistency:samples"  # sorted set: tracked entries, by store time
CONSISTENCY_KEY = "consistency:stats"  # hash: "namespace|sampled" / "namespace|inconsistent"
CONSISTENCY_PASSES_KEY = "consistency:passes"  # sorted set: each pass's counts, by time
TAG_LSN_KEY = "tag:lsn"  # sorted set: tag -> WAL position of its latest write (replicas)
EDGE_STATUS_KEY = "edge:status"  # hash: last_ok / last_failed / last_abandoned / last_error
LISTENER_STATUS_KEY = "listener:status"  # hash: the change listener's state (listener.status)


def tag_key(tag: str) -> str:
    """The counter holding a tag's generation: ``tag:products``."""
    return f"tag:{tag}"


def lock_key(key: str) -> str:
    """The single-flight lock of one cache entry, held by the process computing it."""
    return f"lock:{key}"


def recent_key(kind: str) -> str:
    """The sorted set of recently active ids of ``kind`` (what warmers keep warm)."""
    return f"recent:{kind}"


def last_warm_key(name: str) -> str:
    """When the warmer ``name`` last ran (epoch seconds)."""
    return f"warm:last:{name}"
