"""The platform owner's proof of concept as a new user meets it, in a real browser: sign in, read the
configuration checklist, create a demo tenant in one action (passwords shown once), run the proof of
concept and watch every step pass live; then that tenant's admin signs in with the printed password,
presses AI Run on a Data Sources card and reads the run's recommendations. Screenshots go to test-output/.

Real processes throughout: ``optria serve``, ``optria simulate``, ``optria ingest`` (started here,
with the same settings as the server) and Debian chromium.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.fix_browser import BROWSER_SECRET, OWNER_PASSWORD

pytestmark = pytest.mark.browser

DEMO_NAME = "Demo Browser Refining"
DEMO_SLUG = "demo-browser-refining"


def sign_in(page, organization: str, username: str, password: str) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', organization)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/(platform)?$"))


def test_owner_proves_the_chain_and_the_new_tenant_admin_runs_ai(page, live_server, db_dsn, tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": BROWSER_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path), "OPCUA_ENDPOINT_URL": live_server.opcua_endpoint,
           "PI_BASE_URL": live_server.pi_base_url}
    ingest = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0", "--lease-ttl", "6"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, "", "owner", OWNER_PASSWORD)
        page.goto("/platform")
        checklist = page.locator('[data-testid="config-checklist"]')
        assert checklist.locator('[data-check="opcua"]').get_attribute("data-state") == "ok"
        assert checklist.locator('[data-check="pi"]').get_attribute("data-state") == "ok"
        assert page.locator('[data-testid="storage-tier"]').inner_text() in ("postgres", "timescale", "timescale-apache")
        page.screenshot(path=str(live_server.output_dir / "platform-overview.png"), full_page=True)

        page.click('a[href="/platform/demo-tenants"] >> nth=0')
        page.fill('input[name="name"]', DEMO_NAME)
        page.click('[data-testid="create-demo-tenant"]')
        credentials = page.locator('[data-testid="demo-credentials"]')
        credentials.wait_for()
        assert DEMO_SLUG in credentials.inner_text()
        admin_row = credentials.locator("tbody tr").filter(has_text="admin").first
        admin_password = admin_row.locator("code").inner_text().strip()
        assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", admin_password)
        page.screenshot(path=str(live_server.output_dir / "demo-tenant.png"), full_page=True)
        page.reload()
        assert page.locator('[data-testid="demo-credentials"]').count() == 0     # shown once

        page.goto("/platform/poc")
        page.select_option('select[name="tenant_slug"]', DEMO_SLUG)
        page.click('[data-testid="run-poc"]')
        page.wait_for_url(re.compile(r".*/platform/poc/\d+$"))
        page.wait_for_selector('tr[data-step="config"][data-status="passed"]', timeout=30_000)
        page.wait_for_selector('#poc-status[data-poc-status="passed"], #poc-status[data-poc-status="failed"]',
                               timeout=240_000)
        page.wait_for_load_state()
        steps = page.locator("tr[data-step]")
        statuses = {steps.nth(i).get_attribute("data-step"): steps.nth(i).get_attribute("data-status")
                    for i in range(steps.count())}
        page.screenshot(path=str(live_server.output_dir / "poc-report.png"), full_page=True)
        assert statuses and set(statuses.values()) == {"passed"}, (statuses, page.inner_text("main")[:3000])
        assert page.locator("#poc-status").get_attribute("data-poc-status") == "passed"

        page.click('form[action="/logout"] button')
        sign_in(page, DEMO_SLUG, "admin", admin_password)
        page.goto("/integrations")
        # the OPC-UA source carries P-101, whose bearing fault the proof of concept injected
        page.locator("article", has_text="Ras Tanura OPC-UA").locator('[data-testid="ai-run-button"]').click()
        page.wait_for_url(re.compile(r".*/optimization/runs/\d+$"))
        page.wait_for_selector('[data-run-status="succeeded"], [data-run-status="fallback"]', timeout=60_000)
        recommendations = page.locator('[data-testid="recommendations"] .opt-rec')
        assert recommendations.count() >= 1
        assert page.locator('[data-testid="recommendations"] [data-asset="P-101"] .opt-rec[data-kind="limit"]').count() == 1
        assert page.locator('[data-testid="run-inputs"]').inner_text().strip()
        page.screenshot(path=str(live_server.output_dir / "ai-run.png"), full_page=True)
        page.goto("/optimization")
        assert page.locator('[data-testid="opportunities"] .twin-card').count() >= 1
        assert errors == []
    finally:
        if ingest.poll() is None:
            ingest.terminate()
            try:
                ingest.wait(20)
            except subprocess.TimeoutExpired:
                ingest.kill()
