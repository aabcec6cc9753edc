"""The staff-only cache dashboard in the admin: hit rates, generations, warming, the edge.

Packages above the engine add panels of their own (``add_panel``): a template
and a function giving its context, rendered at the end of the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from . import consistency, edge
from .inspection import known_tags, namespace_stats, tag_generations, warm_times
from .tags import bump

_panels: list[tuple[str, Callable[[], dict[str, Any]]]] = []


def add_panel(template: str, context: Callable[[], dict[str, Any]]) -> None:
    """Show ``template``, rendered with ``context()``, at the end of the cache page."""
    _panels.append((template, context))


TAG_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(:[A-Za-z0-9_-]+)?$")


@require_http_methods(["GET", "POST"])
def cache_dashboard(request: HttpRequest) -> HttpResponse:
    """Show cache health; POST ``tag`` invalidates it."""
    if request.method == "POST":
        tag = request.POST.get("tag", "").strip()
        if TAG_PATTERN.match(tag):
            bump([tag])
            messages.success(request, f"Invalidated tag {tag}.")
        else:
            messages.error(request, "A tag looks like products or user:42.")
        return HttpResponseRedirect(reverse("cache-dashboard"))
    tags = known_tags()
    looked_up = request.GET.get("tag", "").strip()
    if looked_up and TAG_PATTERN.match(looked_up) and looked_up not in tags:
        tags.append(looked_up)
    context = {
        **admin.site.each_context(request),
        "title": "Cache",
        "stats": namespace_stats(),
        "generations": tag_generations(tags),
        "warm_times": {
            name: datetime.fromtimestamp(moment, UTC) if moment else None
            for name, moment in warm_times().items()
        },
        "looked_up": looked_up,
        "edge": _edge_for_display(),
        "consistency": _consistency_for_display(),
        "consistency_window_h": round(settings.CACHE_CONSISTENCY_WINDOW_S / 3600, 1),
        "panels": [(template, context()) for template, context in _panels],
    }
    return TemplateResponse(request, "admin/cache_dashboard.html", context)


def _edge_for_display() -> dict:
    state = edge.status()
    for name in ("last_ok", "last_failed", "last_abandoned"):
        if name in state:
            state[name] = datetime.fromtimestamp(state[name], UTC).strftime("%Y-%m-%d %H:%M:%S")
    return state


def _consistency_for_display() -> list[dict[str, Any]]:
    """Per namespace: counts since Redis last lost them, and the window's rate as nines."""
    totals, window = consistency.totals(), consistency.window_rates()
    rows = []
    for namespace in sorted(totals.keys() | window.keys()):
        row: dict[str, Any] = {"namespace": namespace, "sampled": 0, "inconsistent": 0}
        row.update(totals.get(namespace, {}))
        rate = window.get(namespace)
        if rate is not None and rate.sampled:
            row["window"] = {
                "sampled": rate.sampled,
                "inconsistent": rate.inconsistent,
                "consistent": f"{100 * (1 - rate.inconsistent_ratio):.3f} %",
                "nines": f"{'≥ ' if rate.at_least else ''}{rate.nines:.1f}",
            }
        rows.append(row)
    return rows
