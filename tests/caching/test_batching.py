"""One request's batching of the shared cache (``shared_cache.batched()``), on real Redis."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from caching.shared import shared_cache


@pytest.fixture
def stored():
    """What Redis holds, read past the shared layer's batching."""
    cache = caches["default"]
    cache.delete_many(["batched:a", "batched:b"])
    yield cache.get
    cache.delete_many(["batched:a", "batched:b"])


def test_reads_are_remembered_and_writes_wait_for_the_end(stored):
    shared_cache.set("batched:a", 1, 60)
    with shared_cache.batched():
        assert shared_cache.get_many(["batched:a", "batched:b"]) == {"batched:a": 1}
        shared_cache.set("batched:a", 2, 60)
        shared_cache.set("batched:b", 3, 60)
        assert stored("batched:a") == 1 and stored("batched:b") is None  # queued
        # Read again inside: as Redis was when the block began (missing stays missing).
        assert shared_cache.get_many(["batched:a", "batched:b"]) == {"batched:a": 1}
    assert (stored("batched:a"), stored("batched:b")) == (2, 3)
    # Closed: a write goes at once, and a read reads Redis.
    shared_cache.set("batched:b", 4, 60)
    assert stored("batched:b") == 4
    assert shared_cache.get_many(["batched:a"]) == {"batched:a": 2}


def test_writes_are_sent_even_when_the_block_raises(stored):
    with pytest.raises(RuntimeError), shared_cache.batched():
        shared_cache.set("batched:a", 1, 60)
        raise RuntimeError
    assert stored("batched:a") == 1
    shared_cache.set("batched:a", 5, 60)  # and the batching closed
    assert stored("batched:a") == 5


def test_nested_inside_an_open_batch_leaves_it_open(stored):
    with shared_cache.batched():
        shared_cache.get_many(["batched:a"])
        with shared_cache.batched():
            shared_cache.set("batched:a", 1, 60)
        assert stored("batched:a") is None  # the outer block sends it
        caches["default"].set("batched:a", 9, 60)
        assert shared_cache.get_many(["batched:a"]) == {}  # still remembered as missing
    assert stored("batched:a") == 1
