"""A real browser for the pages people look at: Debian's Chromium driven by Playwright.

Headless, launched from ``/usr/bin/chromium`` (never a downloaded browser), with
every request that leaves 127.0.0.1 blocked, so "works offline" is proven.
When a test fails, its screenshots (one per ``page.step(name)``, and the last
page) are kept under ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/|^(data|blob|about):")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(monkeypatch_module):
    """Chromium for one test module; its event loop is gone when the module ends.

    Playwright's sync API keeps an event loop on the test's thread while it
    runs; the tests' own database calls are synchronous and safe there.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    monkeypatch_module.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def page(browser, request):
    """A fresh page, 1,400 px wide; requests leaving 127.0.0.1 are blocked and recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.external_requests = []
    page.console_errors = []
    page.steps = []  # (name, screenshot) of each step taken, written out on failure

    def step(name: str) -> None:
        page.steps.append((name, page.screenshot(full_page=True)))

    page.step = step

    def route(route):
        if LOCAL.match(route.request.url):
            route.continue_()
        else:
            page.external_requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for number, (name, shot) in enumerate(page.steps, start=1):
            (ARTIFACTS / f"{request.node.name}-{number:02d}-{name}.png").write_bytes(shot)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def staff_page(page, live_server, staff_user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw-staff-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.staff_user_id = staff_user.pk
    return page
