"""The Grafana dashboards in deploy/grafana: importable, every query parses, every metric exists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from caching import consistency
from tests.homepage.factories import ProductFactory
from tests.ops.prometheus import (
    as_prometheus_sees_it,
    check_expressions_parse,
    exported_names,
    metric_names,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows may hold panels


def _expressions() -> dict[str, str]:
    """``"<file> / <panel> / <refId>"`` -> the PromQL as Prometheus receives it."""
    found = {}
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                name = f"{path.name} / {panel['title']} / {target['refId']}"
                found[name] = as_prometheus_sees_it(target["expr"])
    return found


def test_the_metric_name_finder_sees_through_promql():
    expr = (
        'histogram_quantile(0.95, sum by (le, view) (rate(a_seconds_bucket{view=~"x|y"}[5m])))'
        " / on (view) group_left sum without (instance) (b_total offset 5m)"
        " > bool 2 or -log10(max by (namespace) (c_ratio > 0)) unless d:recorded"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_ratio", "d:recorded"}


def test_the_dashboards_are_importable_as_they_are():
    assert {p.name for p in DASHBOARDS} == {"aggregation-api.json", "aggregation-cache.json"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert {"uid", "title", "panels", "schemaVersion", "templating"} <= set(dashboard)
        assert "id" not in dashboard or dashboard["id"] is None  # an id would clash on import
        uids.add(dashboard["uid"])
        # The data source is chosen on import (a variable), not a uid from our Grafana.
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        panel_ids = [p["id"] for p in _panels(dashboard["panels"])]
        assert len(panel_ids) == len(set(panel_ids)), path.name
        for panel in _panels(dashboard["panels"]):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert len(uids) == len(DASHBOARDS)


def test_every_query_parses(tmp_path):
    expressions = _expressions()
    assert len(expressions) >= 20
    check_expressions_parse(expressions, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_every_metric_queried_is_one_the_service_exports(client):
    product = ProductFactory()
    client.get("/api/v1/homepage")
    from tests.storefront import write_behind_the_orm

    write_behind_the_orm(product, set={"name": "changed behind the cache"})
    consistency.verify(limit=10)  # so the consistency window has a namespace
    response = client.get("/metrics")
    assert response.status_code == 200
    exported = exported_names(response.content.decode())
    for name, expr in _expressions().items():
        metrics = metric_names(expr)
        assert metrics, name
        missing = metrics - exported
        assert not missing, f"{name}: {sorted(missing)} not on /metrics"
