"""Fixtures of the operations tests."""

from __future__ import annotations

import io
import json
import logging

import pytest
from structlog.stdlib import ProcessorFormatter


@pytest.fixture
def log_lines():
    """Every log line the project's structured formatter writes, as parsed JSON."""
    formatter = next(
        h.formatter
        for h in logging.getLogger().handlers
        if isinstance(h.formatter, ProcessorFormatter)
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [
            json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")
        ]
    finally:
        root.removeHandler(handler)
