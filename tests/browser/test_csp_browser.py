"""The Content-Security-Policy in a real browser: the main pages of a tenant admin and of the platform
owner load, run their scripts and show their styles with no CSP violation and no script error in
the console (a violation is reported there as "Refused to ... because it violates ... Content
Security Policy"), and the pages cannot be framed."""

from __future__ import annotations

import pytest

from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS
from tests.fix_browser import OWNER_PASSWORD

pytestmark = pytest.mark.browser

ADMIN = next(u for u in DEMO_USERS if u.role == "tenant_admin")
ADMIN_PAGES = ("/", "/digital-twin", "/assets", "/assets/sites", "/alerts", "/work-orders", "/blackbox",
               "/blackbox/events", "/integrations", "/optimization", "/management/users", "/management/audit",
               "/management/sso", "/account/password")
OWNER_PAGES = ("/platform", "/platform/tenants", "/platform/users", "/platform/ingestion", "/platform/poc",
               "/platform/demo-tenants")


def _sign_in(page, organization: str, username: str, password: str) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', organization)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('form[action="/login"] button[type="submit"]')
    page.wait_for_load_state("networkidle")


def test_main_pages_have_no_csp_violation(page, live_server) -> None:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"{page.url}: {msg.text}")
            if ("Content Security Policy" in msg.text
                or (msg.type == "error" and not msg.text.startswith("Failed to load resource"))) else None)
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    # a missing script or stylesheet would be a broken page too (the browser's own favicon probe is not)
    page.on("response", lambda r: problems.append(f"{page.url}: {r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    visited = 0
    _sign_in(page, DEMO_TENANT_SLUG, ADMIN.username, ADMIN.password)
    # a page with a detail view and a gauge (asset detail, twin view) too
    page.goto("/assets")
    first_asset = page.locator('a[href^="/assets/"]').filter(has_text="P-101").first.get_attribute("href")
    for path in (*ADMIN_PAGES, first_asset, f"/digital-twin{first_asset}"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        visited += 1
        assert page.evaluate("getComputedStyle(document.body).fontFamily")  # the stylesheet applied
    assert page.evaluate("typeof document.querySelector('[data-autosubmit]')") in ("object",)
    page.context.clear_cookies()
    _sign_in(page, "", "owner", OWNER_PASSWORD)
    for path in OWNER_PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        visited += 1
    assert visited == len(ADMIN_PAGES) + 2 + len(OWNER_PAGES)
    assert not problems, "\n".join(problems[:20])


def test_pages_cannot_be_framed(page, live_server) -> None:
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "frame-ancestors" in msg.text else None)
    page.set_content(f'<iframe id="f" src="{live_server.base_url}/login"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator('input[name="password"]').count() == 0  # nothing rendered inside the frame
