"""Every admin list and form of the project's models fits a 1,400 px screen."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PROJECT_APPS = {"homepage", "trainers", "students"}


def _registered():
    return [model for model in admin.site._registry if model._meta.app_label in PROJECT_APPS]


def _overflow(page) -> int:
    """How many pixels the widest element sticks out of the page (0 = none)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, "
        "(document.querySelector('#result_list') || document.body).scrollWidth) - window.innerWidth"
    )


def test_every_changelist_and_form_fits_1400_pixels(staff_page, live_server):
    call_command(  # the demo data: realistic lengths of names, titles and figures
        "seed_demo", products=50, stores=10, events=10, offers=30, users=2, trainers=2,
        students=4, sessions_per_trainer=50, no_progress=True, stdout=io.StringIO(),
    )  # fmt: skip
    registered = _registered()
    assert registered  # the project's models are in the admin
    too_wide = {}
    for model in registered:
        meta = model._meta
        base = f"{live_server.url}/admin/{meta.app_label}/{meta.model_name}/"
        obj = apps.get_model(meta.app_label, meta.model_name).objects.first()
        assert obj is not None, f"the demo data has no {meta.model_name}: its form is unchecked"
        for kind, url in (("list", base), ("form", f"{base}{obj.pk}/change/")):
            staff_page.goto(url)
            if (width := _overflow(staff_page)) > 0:
                too_wide[f"{meta.model_name} {kind}"] = width
    assert too_wide == {}
    assert staff_page.external_requests == []
