"""Tracing (config/tracing.py, aggregation/tracing.py): off by default; on, one trace per request.

A request's span, its sections', its statements' and its Celery tasks' share one
trace, whose id the log lines carry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import orjson
import pytest
from django.db import connection
from django.test import Client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_trace_id
from rest_framework.authtoken.models import Token

from aggregation.runner import close_worker_connections
from config.tracing import setup_tracing, shutdown_tracing
from homepage.sections import homepage_sections
from tests.homepage.factories import ProductFactory
from tests.servers import ROOT, RedisServer, free_port, gunicorn
from tests.trainers.factories import TrainerFactory
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
HOME = "/api/v1/homepage"
SECTION_IDS = {section.id for section in homepage_sections}


@pytest.fixture
def spans():
    """Tracing on in this process, every span in memory; off again afterwards.

    The pool's connections are replaced on both sides: psycopg's
    instrumentation traces the connections made after it.
    """
    exporter = InMemorySpanExporter()
    _new_connections()
    setup_tracing(exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()
        _new_connections()


def _new_connections() -> None:
    close_worker_connections()  # the section pool's threads keep theirs
    connection.close()
    connection.close_pool()


def _trace_id(span: ReadableSpan) -> str:
    return format_trace_id(span.context.trace_id)


def _children(all_spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s for s in all_spans if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def _request_span(all_spans: list[ReadableSpan]) -> ReadableSpan:
    (server,) = [s for s in all_spans if s.kind is SpanKind.SERVER]
    return server


def test_a_cold_homepage_is_one_trace_of_sections_and_statements(spans, log_lines):
    ProductFactory.create_batch(2)
    spans.clear()  # the factories' statements
    response = Client().get(HOME)
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    request = _request_span(finished)
    assert request.attributes["http.route"] == "api/v1/homepage"
    assert request.attributes["aggregation.cache_key"] == "homepage:anonymous:v1"
    assert request.attributes["aggregation.cache_status"] == response["Cache-Status"]
    assert request.attributes["aggregation.partial_failure"] is False

    sections = [s for s in finished if "aggregation.section" in s.attributes]
    assert {s.attributes["aggregation.section"] for s in sections} == SECTION_IDS
    assert {s.parent.span_id for s in sections} == {request.context.span_id}
    assert {s.attributes["aggregation.section.outcome"] for s in sections} == {"success"}
    products = next(s for s in sections if s.attributes["aggregation.section"] == "newArrivals")
    assert products.attributes["aggregation.section.tags"] == ("products",)
    # The sections share one pipeline on the request's connection: its statements
    # are in the request's trace, beside the sections' spans, not under one of them.
    # (Spans of other traces may come from threads earlier tests left running.)
    statements = [s for s in finished
                  if "db.system" in s.attributes and _trace_id(s) == _trace_id(request)]  # fmt: skip
    assert statements and {s.attributes["db.system"] for s in statements} == {"postgresql"}
    assert any('FROM "products"' in s.attributes["db.statement"] for s in statements)
    assert {_trace_id(s) for s in sections} == {_trace_id(request)}

    # The id made up for the request is the trace's; the log lines carry both.
    trace_id = _trace_id(request)
    assert response["X-Request-ID"] == trace_id == request.attributes["app.request_id"]
    line = next(x for x in log_lines() if x["message"] == "request_finished")
    assert line["requestId"] == line["traceId"] == trace_id

    # A hit: one span, no section, no statement for the page.
    spans.clear()
    hit = Client().get(HOME)
    request = _request_span(spans.get_finished_spans())
    assert request.attributes["aggregation.cache_status"].startswith("app-l1; hit")
    assert not [s for s in spans.get_finished_spans() if "aggregation.section" in s.attributes]
    assert hit["X-Request-ID"] == _trace_id(request)


def test_a_client_request_id_is_kept_and_put_on_the_trace(spans, log_lines):
    response = Client().get("/health/live", HTTP_X_REQUEST_ID="req_abc-1")
    assert response["X-Request-ID"] == "req_abc-1"
    request = _request_span(spans.get_finished_spans())
    assert request.attributes["app.request_id"] == "req_abc-1"
    line = next(x for x in log_lines() if x["message"] == "request_finished")
    assert line["requestId"] == "req_abc-1" and line["traceId"] == _trace_id(request)


def test_sections_in_the_pool_stay_in_the_request_s_trace(spans, settings):
    settings.SECTIONS_IN_PARALLEL = True
    ProductFactory()
    Client().get(HOME)
    finished = spans.get_finished_spans()
    request = _request_span(finished)
    sections = [s for s in finished if "aggregation.section" in s.attributes]
    assert len(sections) == len(SECTION_IDS)
    assert {s.parent.span_id for s in sections} == {request.context.span_id}
    for section in sections:  # each pool thread's statements under its own section
        assert _children(finished, section)


def test_a_failed_section_is_an_error_span(spans, patch_section):
    ProductFactory()
    patch_section(homepage_sections["events"], lambda ctx: 1 / 0)
    Client().get(HOME)
    (failed,) = [
        s for s in spans.get_finished_spans() if s.attributes.get("aggregation.section") == "events"
    ]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["aggregation.section.outcome"] == "ZeroDivisionError"
    assert failed.events[0].name == "exception"


OFF_OR_ON = textwrap.dedent(
    """
    import json, sys
    import config.wsgi  # what gunicorn loads: tracing set up if configured
    from django.conf import settings
    from django.test import Client
    from aggregation import tracing
    response = Client().get("/api/v1/homepage")
    assert response.status_code == 200, response.content
    assert Client().get("/api/v1/homepage")["X-Cache"] == "HIT"
    ours = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter")
    print(json.dumps({
        "imported": sorted({m for m in sys.modules if m.startswith(ours)}),
        "enabled": tracing.enabled(),
        "middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
    }))
    """
)


@pytest.mark.parametrize("exporter", ["", "none", "console"])
def test_off_by_default_nothing_of_tracing_is_imported(exporter):
    """Off: no trace SDK, instrumentation or exporter is imported, no middleware added.

    (redis-py imports OpenTelemetry's API and metrics SDK by itself when they are
    installed, for metrics of its own that stay off unless initialised.)
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "LOG_LEVEL": "WARNING",
        "OTEL_TRACES_EXPORTER": exporter,
    }
    result = subprocess.run(
        [sys.executable, "-c", OFF_OR_ON], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if exporter == "console":  # the check can fail: on, they are all there
        assert found["enabled"] and found["middleware"]
        assert {"opentelemetry.instrumentation.django", "opentelemetry.sdk.trace"} <= set(
            found["imported"]
        )
    else:
        assert found == {"imported": [], "enabled": False, "middleware": []}


def _console_spans(path: Path) -> list[dict]:
    """The spans the console exporter printed (indented JSON objects, one after another)."""
    text, decoder, found, at = path.read_text(), json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        span, at = decoder.raw_decode(text, start)
        found.append(span)
    return found


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]


@pytest.mark.slow
def test_on_the_real_stack_a_task_belongs_to_the_trace_of_the_request_that_scheduled_it(tmp_path):
    """Gunicorn and a Celery worker with the console exporter.

    An edge purge that fails is retried by the worker, from the request that caused it.
    """
    trainer = TrainerFactory()
    token = Token.objects.create(user=trainer.user).key
    broker = RedisServer()
    broker.start()
    database = connection.settings_dict["NAME"]
    traced = {
        "OTEL_TRACES_EXPORTER": "console",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "CELERY_BROKER_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        # An edge nobody answers for: the purge fails and is retried by the worker.
        "EDGE_PURGE_URLS": f"http://127.0.0.1:{free_port()}/",
        "EDGE_PURGE_SECRET": "secret",
        "EDGE_PURGE_RETRY_FOR_S": "1",
    }
    (tmp_path / "web").mkdir()
    (tmp_path / "worker").mkdir()
    worker_out, worker_err = (tmp_path / "worker" / "stdout"), (tmp_path / "worker" / "stderr")
    with worker_out.open("wb") as out, worker_err.open("wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=ROOT, stdout=out, stderr=err, start_new_session=True,
            env={**os.environ, **traced, "DJANGO_SETTINGS_MODULE": "config.settings.test",
                 "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}"},
        )  # fmt: skip
    try:
        with gunicorn(database, workers=1, output=tmp_path / "web", **traced) as base:
            request = urllib.request.Request(
                f"{base}/api/v1/trainers/{trainer.pk}/profile", method="PATCH",
                data=orjson.dumps({"bio": "Traced"}),
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
                request_id = response.headers["X-Request-ID"]

            def ran() -> bool:
                return any(
                    s["name"] == "run/caching.edge_purge" for s in _console_spans(worker_out)
                )

            wait_until(ran, timeout=60, message="the worker ran no edge purge")
            web_spans = _console_spans(tmp_path / "web" / "stdout")
            web_lines = _json_lines(tmp_path / "web" / "stderr")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        broker.stop()

    (server,) = [s for s in web_spans if s["name"].startswith("PATCH ")]
    assert server["kind"] == "SpanKind.SERVER"
    trace_id = server["context"]["trace_id"]  # "0x..." in the console's form
    assert request_id == trace_id.removeprefix("0x")
    in_trace = [s for s in web_spans if s["context"]["trace_id"] == trace_id]
    published = next(s for s in in_trace if s["name"] == "apply_async/caching.edge_purge")
    statements = [s for s in in_trace if s["attributes"].get("db.system") == "postgresql"]
    assert any("UPDATE" in s["attributes"]["db.statement"] for s in statements)

    run = next(s for s in _console_spans(worker_out) if s["name"] == "run/caching.edge_purge")
    assert run["context"]["trace_id"] == trace_id
    assert run["parent_id"] == published["context"]["span_id"]
    assert run["attributes"]["celery.task_name"] == "caching.edge_purge"

    (finished,) = [
        x for x in web_lines if x["message"] == "request_finished" and "PATCH" in x["request"]
    ]
    assert finished["requestId"] == finished["traceId"] == request_id
    started = next(
        x
        for x in _json_lines(worker_err)
        if x["message"] == "task_started" and x.get("task") == "caching.edge_purge"
    )
    # The task's log line names the request that caused it and the trace it runs in: one id.
    assert started["requestId"] == started["traceId"] == request_id
