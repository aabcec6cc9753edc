"""OpenTelemetry tracing, off unless ``OTEL_TRACES_EXPORTER`` names an exporter.

On, each process (gunicorn's workers, Celery's worker and beat) gets a tracer
provider and instruments Django (a span per request), psycopg (a span per
statement), Celery (a span to publish a task and one to run it, carried in
the message's headers, so a task's spans belong to the trace of the request
that scheduled it) and the engine's sections (``aggregation.tracing``). Off,
nothing of OpenTelemetry is imported.

The trap: Django's instrumentation inserts its middleware into
``settings.MIDDLEWARE``, so ``setup_tracing`` must run after settings are
loaded and before the WSGI handler loads its middleware (``config/wsgi.py``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from aggregation import tracing as section_tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXPORTERS = ("otlp", "console")

_lock = threading.Lock()
_provider: TracerProvider | None = None


def _exporter(name: str) -> SpanExporter:
    if name == "otlp":  # OTLP over HTTP; the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/")
        return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise ImproperlyConfigured(
        f"OTEL_TRACES_EXPORTER={name!r}: this service ships {', '.join(EXPORTERS)} (or none)."
    )


def exporter_names() -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names; empty (or ``none``) is off."""
    names = [n.strip() for n in settings.OTEL_TRACES_EXPORTER.split(",") if n.strip()]
    return [] if names == ["none"] else names


def setup_tracing(exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on in this process if configured (or with ``exporter``); once.

    Returns whether tracing is on. ``exporter`` (tests): spans go there,
    synchronously, whatever ``OTEL_TRACES_EXPORTER`` says.
    """
    global _provider
    names = exporter_names()
    if exporter is None and not names:
        return _provider is not None
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry import trace
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(
            resource=Resource.create(
                {SERVICE_NAME: settings.OTEL_SERVICE_NAME, SERVICE_VERSION: settings.API_VERSION}
            ),
            # A request that arrives with a sampled trace is traced; others by ratio.
            sampler=ParentBased(TraceIdRatioBased(settings.OTEL_TRACES_SAMPLER_ARG)),
        )
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        for name in names if exporter is None else []:
            # The console is for a person watching: each span as it ends.
            processor = SimpleSpanProcessor if name == "console" else BatchSpanProcessor
            provider.add_span_processor(processor(_exporter(name)))
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(provider)  # once per process: the SDK allows no second
        DjangoInstrumentor().instrument(tracer_provider=provider)
        PsycopgInstrumentor().instrument(tracer_provider=provider)
        CeleryInstrumentor().instrument(tracer_provider=provider)
        section_tracing.enable(provider.get_tracer("aggregation"))
        _provider = provider
        return True


def shutdown_tracing() -> None:
    """Export what is buffered and stop (tests; at exit the SDK does it itself)."""
    global _provider
    with _lock:
        if _provider is None:
            return
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        for instrumentor in (DjangoInstrumentor(), PsycopgInstrumentor(), CeleryInstrumentor()):
            instrumentor.uninstrument()
        section_tracing.disable()
        _provider.shutdown()
        _provider = None
