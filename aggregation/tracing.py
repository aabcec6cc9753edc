"""OpenTelemetry spans of the engine: one per section, and attributes on the request's span.

Off unless ``config.tracing`` turned tracing on (``OTEL_TRACES_EXPORTER``) and
called ``enable``. Off, every function here is a check of one module global:
nothing of OpenTelemetry is imported, no span or context object is made.

The trap: the section pool's threads do not inherit the request's context
(contextvars stay with the thread that set them), so a section run there
would start a trace of its own; ``carried`` hands the submitting thread's
context to the task.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from .sections import Section

T = TypeVar("T")

_tracer: Tracer | None = None


def enable(tracer: Tracer) -> None:
    """Start making spans with ``tracer`` (``config.tracing`` calls it once per process)."""
    global _tracer
    _tracer = tracer


def disable() -> None:
    """Stop making spans (tests)."""
    global _tracer
    _tracer = None


def enabled() -> bool:
    """True when tracing is on in this process."""
    return _tracer is not None


_NO_SPAN = contextlib.nullcontext()


def section_span(section: Section) -> contextlib.AbstractContextManager[Any]:
    """A span around fetching ``section`` (a child of the current span), or nothing.

    An exception leaving it is recorded on the span, which is then an error.
    """
    if _tracer is None:
        return _NO_SPAN
    return _section_span(_tracer, section)


@contextlib.contextmanager
def _section_span(tracer: Tracer, section: Section) -> Iterator[Any]:
    with tracer.start_as_current_span(
        f"section {section.id}",
        attributes={"aggregation.section": section.id, "aggregation.section.tags": section.tags},
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("aggregation.section.outcome", type(exc).__name__)
            raise
        span.set_attribute("aggregation.section.outcome", "success")


class _Unrecorded:
    """A section span when tracing is off: ending it does nothing."""

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """Nothing to end."""


class _Recorded:
    """A section span started by hand (sections in one pipeline overlap): ``end`` it once."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """Record the section's outcome (an error, with its exception) and end its span."""
        self.span.set_attribute("aggregation.section.outcome", outcome)
        if error is not None:
            self.span.record_exception(error)
        if outcome != "success":
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, outcome))
        self.span.end()


_UNRECORDED = _Unrecorded()


def started_section(section: Section) -> _Unrecorded | _Recorded:
    """A span for ``section`` from now until its ``end(outcome)``, or nothing when off.

    For sections that run interleaved (one pipeline), where no span can be current.
    """
    if _tracer is None:
        return _UNRECORDED
    return _Recorded(
        _tracer.start_span(
            f"section {section.id}",
            attributes={
                "aggregation.section": section.id,
                "aggregation.section.tags": section.tags,
            },
        )
    )


def carried(function: Callable[..., T]) -> Callable[..., T]:
    """``function``, to run in another thread inside the calling thread's context.

    Without tracing, ``function`` itself (nothing is copied).
    """
    if _tracer is None:
        return function
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.run(function, *args, **kwargs)


def annotate(attributes: dict[str, Any]) -> None:
    """Set ``attributes`` on the current span (the request's, in a view); nothing when off."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attributes(attributes)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, or None (off, or no span)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
