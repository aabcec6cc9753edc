"""Helpers for the tests of what Prometheus and Grafana read: PromQL's metric names, a scrape.

``metric_names`` finds the metrics a PromQL expression selects without a
PromQL library: strings, label matchers, ranges and grouping clauses are cut
out, and what remains that is a name not followed by ``(`` (a function or
aggregation) and not a keyword is a metric. ``promtool check rules`` (on every
expression as a recording rule) is what proves an expression parses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}  # fmt: skip
# Grafana's interval variables, as Prometheus would see them after substitution.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _STRINGS.sub('""', expr)
    previous = None
    while previous != text:  # nested braces cannot occur, but grouping may follow a cut
        previous = text
        text = _MATCHERS.sub(" ", text)
        text = _RANGES.sub(" ", text)
        text = _GROUPING.sub(" ", text)
    return {name for name in _NAME.findall(text) if name.lower() not in KEYWORDS}


def as_prometheus_sees_it(expr: str) -> str:
    """``expr`` with Grafana's interval variables replaced by durations."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
    return expr


def exported_names(scrape: str) -> set[str]:
    """Every series name a ``/metrics`` text can carry, from its families and their types.

    A family with no sample yet (a labelled metric never incremented) still
    declares its type, so it counts: histograms as ``_bucket``/``_sum``/``_count``,
    counters as ``_total``.
    """
    names: set[str] = set()
    for family in text_string_to_metric_families(scrape):
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def promtool() -> str:
    """The promtool binary, or the test is skipped saying how to get it."""
    found = shutil.which("promtool")
    if found is None:  # CI installs it (scripts/services)
        pytest.skip(
            "promtool is not installed (Debian's prometheus package: apt-get install prometheus)"
        )
    return found


def check_expressions_parse(expressions: dict[str, str], workdir: Path) -> None:
    """Fail unless promtool parses every expression (each becomes a recording rule)."""
    rules = [
        {"record": f"check:expression_{number}", "expr": expr}
        for number, expr in enumerate(expressions.values())
    ]
    path = workdir / "expressions.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True
    )
    where = "\n".join(f"expression_{n}: {name}" for n, name in enumerate(expressions))
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + where
