"""The pages people use, in a real browser: the admin's actions, the cache page, the API docs.

Every request leaving 127.0.0.1 is blocked (and recorded), so the pages are
shown to work offline; console errors fail the tests.
"""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.homepage.factories import OfferFactory, ProductFactory
from tests.trainers.factories import SessionFactory, TrainerFactory
from trainers import services
from trainers.models import PayoutClaim

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _run_action(page, url: str, action: str, pks: list[int]) -> str:
    """Select ``pks`` in a changelist, run ``action``; the messages shown after."""
    page.goto(url)
    for pk in pks:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    return page.inner_text("ul.messagelist")


def _homepage(page, base: str) -> dict:
    response = page.request.get(f"{base}/api/v1/homepage")
    assert response.status == 200
    return response.json()


def _names(body: dict, section: str, key: str = "name") -> list[str]:
    return [item[key] for item in body["data"]["sections"][section]["items"]]


def test_staff_feature_a_product_and_start_a_flash_sale_seen_on_the_next_request(
    staff_page, live_server
):
    page, base = staff_page, live_server.url
    product = ProductFactory(name="Quiet kettle", featured=False)
    offer = OfferFactory(title="Weekend deal")
    before = _homepage(page, base)
    assert "Quiet kettle" not in _names(before, "justForYou")
    assert "Weekend deal" not in _names(before, "flashSales", "title")

    page.step("before")
    shown = _run_action(page, f"{base}/admin/homepage/product/", "make_featured", [product.pk])
    assert "1" in shown
    page.step("featured")
    shown = _run_action(page, f"{base}/admin/homepage/offer/", "start_flash_sale", [offer.pk])
    assert "Started 1 flash sale" in shown
    page.step("flash-sale")

    after = _homepage(page, base)  # the next request after the admin's commits
    assert "Quiet kettle" in _names(after, "justForYou")
    assert "Weekend deal" in _names(after, "flashSales", "title")
    assert page.external_requests == [] and page.console_errors == []


def test_a_forbidden_transition_is_refused_in_the_admin_as_in_the_api(staff_page, live_server):
    page, base = staff_page, live_server.url
    trainer = TrainerFactory()
    done = services.session_complete(session=SessionFactory(allocation__trainer=trainer))
    claim = services.payout_claim_create(trainer=trainer, session_ids=[done.pk])
    services.payout_claim_set_status(claim=claim, new_status="approved")
    services.payout_claim_set_status(claim=claim, new_status="paid")

    page.goto(f"{base}/admin/trainers/payoutclaim/{claim.pk}/change/")
    assert page.locator("select[name=status], input[name=status]").count() == 0  # read-only
    page.step("paid-claim")
    shown = _run_action(page, f"{base}/admin/trainers/payoutclaim/", "claim_approved", [claim.pk])
    assert "A paid claim cannot become approved" in shown
    page.step("refused")

    staff_token = Token.objects.create(user_id=page.staff_user_id).key
    response = page.request.post(
        f"{base}/api/v1/payout-claims/{claim.pk}/status",
        data={"status": "pending"},
        headers={"Authorization": f"Token {staff_token}"},
    )
    assert response.status == 409
    assert response.json()["errors"][0]["code"] == "CONFLICT"
    assert PayoutClaim.objects.get(pk=claim.pk).status == "paid"
    assert page.external_requests == [] and page.console_errors == []


def test_the_cache_page_shows_hit_rates_and_its_invalidate_button_works(staff_page, live_server):
    page, base = staff_page, live_server.url
    ProductFactory()
    for _ in range(3):
        page.request.get(f"{base}/api/v1/homepage")
    assert page.request.get(f"{base}/api/v1/homepage").headers["x-cache"] == "HIT"

    page.goto(f"{base}/admin/cache/")
    stats = page.inner_text("#cache-stats")
    assert "homepage" in stats and "%" in stats
    page.step("cache-page")
    page.click("input[type=submit][value='Invalidate products']")
    page.wait_for_selector("ul.messagelist")
    assert "Invalidated tag products" in page.inner_text("ul.messagelist")
    page.step("invalidated")

    again = page.request.get(f"{base}/api/v1/homepage")
    assert again.headers["x-cache"] == "MISS"
    assert page.external_requests == [] and page.console_errors == []


def _operations(page, base: str) -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation in the schema."""
    schema = page.request.get(f"{base}/api/schema/?format=json").json()
    return [
        (method, path, operation["operationId"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]


def test_swagger_ui_lists_every_operation_and_tries_the_homepage_offline(page, live_server):
    base = live_server.url
    ProductFactory()
    operations = _operations(page, base)
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == len(operations)
    page.step("swagger")

    block = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/homepage']"))
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    page.step("tried")
    assert page.external_requests == []
    assert page.console_errors == []


def test_redoc_renders_every_operation_offline(page, live_server):
    base = live_server.url
    operations = _operations(page, base)
    page.goto(f"{base}/api/redoc/")
    page.wait_for_selector("[data-section-id^='operation/']")
    rendered = page.eval_on_selector_all(
        "[data-section-id^='operation/']",
        "nodes => nodes.map(n => n.getAttribute('data-section-id').slice('operation/'.length))",
    )
    assert set(rendered) == {operation_id for _, _, operation_id in operations}
    page.step("redoc")
    assert page.external_requests == []
    assert page.console_errors == []
