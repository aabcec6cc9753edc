"""The cluster-wide single-flight lock on the real Redis."""

from caching import flight
from caching.keys import lock_key
from caching.shared import shared_cache


def test_unlock_releases_the_holders_lock():
    token = flight.try_lock("page")
    assert token is not None
    assert flight.try_lock("page") is None  # held: a second process waits
    flight.unlock("page", token)
    assert flight.try_lock("page") is not None


def test_unlock_leaves_a_lock_taken_again_after_expiry():
    stale = flight.try_lock("page")
    # The lock expired and another process took it: its key now holds their token.
    shared_cache.delete(lock_key("page"))
    theirs = flight.try_lock("page")
    assert theirs is not None and theirs != stale
    flight.unlock("page", stale)
    assert flight.try_lock("page") is None  # theirs still holds
    flight.unlock("page", theirs)
    assert flight.try_lock("page") is not None
