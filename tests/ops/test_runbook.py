"""The runbook matches the code: every switch and alert it names exists, and none is missing."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
ALERTS = yaml.safe_load((ROOT / "config" / "prometheus" / "alerts.yml").read_text())


def _table_after(heading: str) -> list[str]:
    """The first cell of every row of the first table under ``heading``."""
    section = RUNBOOK.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]


def test_every_switch_named_is_a_setting_and_every_enable_switch_is_named():
    switches = _table_after("Switches")
    assert switches, "no switches table"
    for name in switches:
        assert hasattr(settings, name), name
    enable = {name for name in dir(settings) if name.startswith("ENABLE_")}
    assert enable <= set(switches)


def test_every_alert_is_explained_and_every_explained_alert_exists():
    shipped = {rule["alert"] for group in ALERTS["groups"] for rule in group["rules"]}
    assert shipped, "no alert rules shipped"
    assert set(_table_after("Alerts")) == shipped


def test_the_commands_it_names_exist():
    from caching.management.commands.cache import Command

    parser = Command().create_parser("manage.py", "cache")
    actions = next(a for a in parser._actions if a.dest == "action").choices
    named = set(re.findall(r"manage\.py cache (\w+)", RUNBOOK))
    assert named, "the runbook names no cache command"
    assert named <= set(actions), named - set(actions)
