"""A tenant admin, in a real browser: creates an OPC-UA integration with no endpoint (the platform
default is used), tests it and sees success, maps ten tags to one asset with the folder tree, and
sees them listed. Screenshots go to test-output/."""

from __future__ import annotations

import re

import pytest

from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS

pytestmark = pytest.mark.browser

ADMIN = next(u for u in DEMO_USERS if u.role == "tenant_admin")
NAME = "Browser OPC-UA"


def sign_in(page) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', DEMO_TENANT_SLUG)
    page.fill('input[name="username"]', ADMIN.username)
    page.fill('input[name="password"]', ADMIN.password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/$"))


def expand(page, node_id: str) -> None:
    """Open a folder of the tag tree in place (lazy browse through the API) and wait for its children."""
    item = page.locator(f'li[data-node-id="{node_id}"]').first
    item.locator(":scope > button[data-expand]").click()
    item.locator(":scope > ul.ds-children > li.ds-item").first.wait_for()


def test_admin_creates_tests_and_maps_ten_tags(page, live_server) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page)

    page.goto("/integrations")
    page.click('[data-testid="add-integration"]')
    page.click('[data-testid="kind-opcua"]')
    assert page.locator('[data-testid="client-thumbprint"]').inner_text().strip()
    page.fill('input[name="name"]', NAME)
    assert page.input_value('input[name="endpoint_url"]') == ""  # no endpoint: the platform default
    page.select_option('select[name="security_policy"]', "None")
    page.select_option('select[name="auth_type"]', "anonymous")
    page.click('[data-testid="save-integration"]')
    page.wait_for_url(re.compile(r".*/integrations/\d+$"))
    integration_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator(".alert-success").count() == 1

    page.goto("/integrations")
    card = page.locator(f"#integration-{integration_id}")
    assert card.locator('[data-testid="global-default"]').count() == 1
    assert live_server.opcua_endpoint.split("//")[1] in card.locator('[data-testid="endpoint-host"]').inner_text()
    card.locator('[data-testid="test-button"]').click()
    page.wait_for_url(re.compile(rf".*/integrations#integration-{integration_id}$"))
    card = page.locator(f"#integration-{integration_id}")
    assert card.locator('[data-testid="last-test-result"]').get_attribute("data-success") == "true"
    page.screenshot(path=str(live_server.output_dir / "integrations-cards.png"), full_page=True)

    card.locator('[data-testid="map-button"]').click()
    page.wait_for_url(re.compile(rf".*/integrations/{integration_id}/map$"))
    for node in ("ns=2;s=Plant", "ns=2;s=RasTanura", "ns=2;s=RasTanura.CrudeUnit",
                 "ns=2;s=RasTanura.CrudeUnit.P-101", "ns=2;s=RasTanura.CrudeUnit.P-102"):
        expand(page, node)
    p101 = page.locator('li[data-node-id="ns=2;s=RasTanura.CrudeUnit.P-101"] input[name="sel"]')
    p102 = page.locator('li[data-node-id="ns=2;s=RasTanura.CrudeUnit.P-102"] input[name="sel"]')
    assert p101.count() == 6 and p102.count() == 6
    for i in range(6):
        p101.nth(i).check()
    for i in range(4):
        p102.nth(i).check()
    assert page.locator("[data-selected-count]").inner_text() == "10"
    asset = page.locator('select[name="asset_id"] option', has_text="P-101").first.get_attribute("value")
    page.select_option('select[name="asset_id"]', asset)
    page.click('[data-testid="assign-submit"]')
    page.wait_for_url(re.compile(rf".*/integrations/{integration_id}/map.*#mappings$"))

    rows = page.locator('[data-testid="mapping-row"]')
    assert rows.count() == 10
    assert rows.locator('a[href^="/assets/"]').all_inner_texts() == ["P-101"] * 10
    assert "ns=2;s=RasTanura.CrudeUnit.P-102.Temperature" in page.locator('[data-testid="mappings-table"]').inner_text()
    assert page.locator(".alert-success").count() == 1
    page.evaluate("window.scrollTo(0, 0)")  # the sidebar is sticky: capture from the top
    page.screenshot(path=str(live_server.output_dir / "integrations-map.png"), full_page=True)
    assert errors == [], errors
