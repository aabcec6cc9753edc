"""Structured request logs, request ids (also into Celery), metrics, health, alert rules."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.urls import reverse
from django_redis import get_redis_connection
from prometheus_client import REGISTRY

from caching import consistency
from caching.keys import LISTENER_STATUS_KEY
from caching.shared import shared_cache
from config.celery_app import app as celery_app
from homepage.sections import homepage_sections
from tests.homepage.factories import ProductFactory
from tests.ops.prometheus import exported_names, metric_names, promtool
from tests.storefront import write_behind_the_orm

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "config" / "prometheus" / "alerts.test.yml"


def _finished(lines: list[dict], path: str) -> dict:
    return next(x for x in lines if x["message"] == "request_finished" and path in x["request"])


def test_every_request_is_logged_in_the_seed_shape(
    client, user_client, user, log_lines, monkeypatch, patch_section
):
    ProductFactory()
    patch_section(homepage_sections["events"], lambda ctx: 1 / 0)
    response = user_client.get("/api/v1/homepage", HTTP_X_REQUEST_ID="req_xyz123")
    assert response["X-Request-ID"] == "req_xyz123"

    line = _finished(log_lines(), "/api/v1/homepage")
    assert {
        "timestamp",
        "level",
        "message",
        "requestId",
        "userId",
        "duration",
        "cacheHit",
        "sections",
    } <= set(line)
    assert line["level"] == "INFO" and line["requestId"] == "req_xyz123"
    assert line["userId"] == user.pk
    assert line["cacheHit"] is False and line["duration"] > 0
    assert line["sections"]["justForYou"] == "success" and line["sections"]["events"] == "failed"
    assert re.match(r"\d{4}-\d\d-\d\dT", line["timestamp"])


def test_a_request_id_is_made_when_missing_or_unsafe(client, log_lines):
    made = client.get("/health/live")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", made)
    unsafe = client.get("/health/live", HTTP_X_REQUEST_ID='x"\n{"level": "forged"}')
    assert re.fullmatch(r"[0-9a-f-]{36}", unsafe["X-Request-ID"])
    lines = log_lines()
    finished = [x for x in lines if x["message"] == "request_finished"]
    assert [x["requestId"] for x in finished] == [made, unsafe["X-Request-ID"]]
    assert all(line["level"] != "forged" for line in lines)


def test_the_request_id_travels_with_the_celery_tasks_it_causes(client, staff_user, settings):
    from caching import warming

    product = ProductFactory(featured=False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    try:
        client.force_login(staff_user)
        client.post(
            reverse("admin:homepage_product_changelist"),
            {"action": "make_featured", "_selected_action": [product.pk]},
            HTTP_X_REQUEST_ID="req_admin_42",
        )
        warming.wait_for_scheduled()
    finally:
        celery_app.conf.task_always_eager = True
    messages = [json.loads(m) for m in get_redis_connection("default").lrange("celery", 0, -1)]
    rewarm = [m for m in messages if m["headers"]["task"] == "caching.rewarm"]
    assert rewarm and rewarm[0]["headers"]["__django_structlog__"]["request_id"] == "req_admin_42"


def _metrics(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_metrics(client, monkeypatch, patch_section):
    def value(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    partial = {"endpoint": "homepage", "partial_failure": "true"}
    failures = {"code": "SECTION_FETCH_ERROR", "section": "offers"}
    before = (
        value("aggregation_batch_responses_total", **partial),
        value("aggregation_section_failures_total", **failures),
    )
    ProductFactory()
    client.get("/api/v1/homepage")
    patch_section(homepage_sections["offers"], lambda ctx: 1 / 0)
    client.get("/api/v1/homepage", {"fresh": "true"})
    assert value("aggregation_batch_responses_total", **partial) == before[0] + 1
    assert value("aggregation_section_failures_total", **failures) == before[1] + 1
    text = _metrics(client)
    for name in [
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_requests_total_by_view_transport_method_total",
        'aggregation_section_duration_seconds_bucket{le="0.5",section="justForYou"}',
        "aggregation_section_failures_total",
        "aggregation_batch_responses_total",
        'aggregation_cache_requests_total{layer="none",namespace="homepage",outcome="miss"}',
        "aggregation_section_pool_queue_depth",
        "aggregation_db_pool_size",
        "aggregation_db_pool_waiting",
    ]:
        assert name in text, name


def test_metrics_are_only_for_the_internal_network(client):
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8").status_code == 404


def test_alert_rules_are_valid_and_name_real_metrics(client, settings):
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "AggregationSlowResponses", "AggregationErrorRate", "AggregationCacheHitRateLow",
        "AggregationPartialFailures", "AggregationEdgePurgesAbandoned",
        "AggregationCacheInconsistent", "AggregationCacheListenerDown",
        "AggregationCacheListenerLagging", "AggregationConsistencyBelowTarget",
    }  # fmt: skip
    settings.ENABLE_CACHE_LISTENER = True  # its state, as a listener process reports it
    shared_cache.hset_many(LISTENER_STATUS_KEY, {"state": "streaming", "heartbeat": time.time()})
    product = ProductFactory()
    client.get("/api/v1/homepage")
    client.get("/api/v1/nothing")  # a 404, so response-by-status series exist
    write_behind_the_orm(product, set={"name": "changed behind the cache"})
    assert consistency.verify(limit=10).any_inconsistent  # so the inconsistency series exist
    exported = exported_names(_metrics(client))
    for rule in rules:
        assert rule.get("for", "0m") in {"0m", "5m", "10m"}, rule["alert"]
        metrics = metric_names(rule["expr"])
        assert metrics, rule["alert"]  # every rule is checked against what is exposed
        assert metrics <= exported, (rule["alert"], sorted(metrics - exported))


def test_alert_rules_pass_promtool(tmp_path):
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_on_a_bad_series_and_stays_quiet_on_a_healthy_one():
    """``promtool test rules`` on alerts.test.yml, which must cover both cases of every alert."""
    shipped = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    fires, quiet = set(), set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == shipped, f"no test where it fires: {sorted(shipped - fires)}"
    assert quiet == shipped, f"no test where it stays quiet: {sorted(shipped - quiet)}"
    result = subprocess.run(
        [promtool(), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_liveness_and_readiness(client):
    assert client.get("/health/live").json()["status"] == "ok"
    ready = client.get("/health/ready", HTTP_ACCEPT="application/json")
    assert ready.status_code == 200
    assert set(ready.json().values()) == {"OK"}
    assert any("CeleryBroker" in name for name in ready.json())


def test_readiness_fails_without_the_broker(client):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        response = client.get("/health/ready", HTTP_ACCEPT="application/json")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["CeleryBroker()"] != "OK"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_each_task_it_enqueues_once(tmp_path):
    from django.db import connection

    from tests.servers import ROOT, RedisServer
    from tests.waiting import wait_until

    broker = RedisServer()
    broker.start()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "CELERY_BROKER_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        # On start the worker runs warm_all, which enqueues one warm_one per warmer.
        wait_until(lambda: log.read_text().count('"task_succeeded"') >= 3, timeout=60)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
        broker.stop()
    enqueued = [
        json.loads(line)["child_task_id"]
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"task_enqueued"' in line
    ]
    assert enqueued and len(enqueued) == len(set(enqueued))
