"""Waiting on a condition, with a bound: the one way tests wait for another process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met in time",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    ``message`` says what did not happen; a callable is asked only on failure (for a
    log read at that moment, say).
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(interval)
    return value
