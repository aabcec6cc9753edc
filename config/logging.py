"""Logging: structlog through the standard library, one JSON object per line.

Keys follow seed 004 §10.2: ``timestamp``, ``level``, ``message``, ``requestId``,
``userId``, plus whatever the event carries (``duration``, ``cacheHit``,
``sections``...). ``LOG_FORMAT=console`` renders the same events for humans.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from aggregation.tracing import current_ids

# ``LOG_FORMAT``: one JSON object per line, or structlog's console lines for humans.
LogFormat = Literal["json", "console"]

_RENAMES = {"event": "message", "request_id": "requestId", "user_id": "userId"}


def seed_log_shape(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Rename structlog's keys to the seed's and upper-case the level."""
    shaped = {"timestamp": event.pop("timestamp", None), "level": event.pop("level", "").upper()}
    for old, new in _RENAMES.items():
        if old in event:
            shaped[new] = event.pop(old)
    shaped.update(event)
    return shaped


def add_trace_ids(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``traceId`` and ``spanId`` of the current span, when tracing is on and there is one."""
    ids = current_ids()
    if ids is not None:
        event.setdefault("traceId", ids[0])
        event.setdefault("spanId", ids[1])
    return event


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
]


def logging_config(level: str, fmt: LogFormat) -> dict[str, Any]:
    """The ``LOGGING`` setting; also configures structlog itself."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    seed_log_shape,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # django-structlog's request_finished carries the request; Django's own is noise.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            # django-structlog logs each task's start, success and failure (with the
            # request id); Celery's own "received"/"succeeded" lines would repeat them.
            "celery.app.trace": {"level": "WARNING"},
            "celery.worker.strategy": {"level": "WARNING"},
        },
    }
