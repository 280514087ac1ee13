"""A reliability engineer, in a real browser: follows the twin's link to the Black Box, opens the critical
incident a bearing fault produced (limit breach collected from stored samples, grouped by the job), reads its
timeline and trends, acknowledges and resolves it; a viewer then sees it read-only. Screenshots go to
test-output/."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from ingest.samples import GOOD, Sample
from optria.blackbox.collectors import AlertCollector, LimitCollector
from optria.blackbox.grouping import Grouper
from optria.db import Database
from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS
from tests.fix_ingest import write_through_writer

pytestmark = pytest.mark.browser

RELIABILITY = next(u for u in DEMO_USERS if u.role == "reliability_engineer")
VIEWER = next(u for u in DEMO_USERS if u.role == "viewer")


def sign_in(page, login) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', DEMO_TENANT_SLUG)
    page.fill('input[name="username"]', login.username)
    page.fill('input[name="password"]', login.password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/$"))


def bearing_fault(dsn: str) -> int:
    """P-101's vibration ramps past its critical limit (written by the ingest writer, as ingest stores it),
    an operator raises an alert; the collectors and the grouping job then run once. Returns the asset id."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        tenant, asset = conn.execute("SELECT a.tenant_id, a.id FROM assets a JOIN tenants t ON t.id = a.tenant_id "
                                     "WHERE t.slug = %s AND a.code = 'P-101'", [DEMO_TENANT_SLUG]).fetchone()
        signal = conn.execute("SELECT m.signal_id FROM external_signal_mappings m WHERE m.tenant_id = %s AND "
                              "m.asset_id = %s AND m.metric_role = 'vibration' AND m.crit_high IS NOT NULL LIMIT 1",
                              [tenant, asset]).fetchone()[0]
        samples = []
        for i in range(40):
            t = now - timedelta(minutes=40 - i)
            value = 2.2 + max(0, i - 20) * 0.8      # from normal to 14.2 mm/s
            samples.append(Sample(tenant, signal, t, value, GOOD))
        write_through_writer(conn, samples)
        alert = conn.execute("INSERT INTO alerts (tenant_id, asset_id, severity, title, raised_at) VALUES "
                             "(%s, %s, 'high', 'Bearing noise reported by operator', %s) RETURNING id",
                             [tenant, asset, now - timedelta(minutes=12)]).fetchone()[0]
        conn.execute("INSERT INTO alert_history (tenant_id, alert_id, asset_id, action, to_status, actor_name, at) "
                     "VALUES (%s, %s, %s, 'raised', 'open', 'operator', %s)", [tenant, alert, asset,
                                                                           now - timedelta(minutes=12)])

    async def collect() -> None:
        db = Database(dsn, name="browser-blackbox")
        await db.open()
        try:
            for job in (LimitCollector(db), AlertCollector(db), Grouper(db)):
                await job.run_once()
        finally:
            await db.close()

    with ThreadPoolExecutor(1) as pool:   # Playwright's sync API owns this thread's event loop
        pool.submit(asyncio.run, collect()).result()
    return asset


def test_reliability_engineer_handles_an_incident(page, live_server, db_dsn) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    asset_id = bearing_fault(db_dsn)
    sign_in(page, RELIABILITY)

    page.goto(f"/digital-twin/assets/{asset_id}")
    page.click('[data-testid="blackbox-link"]')
    page.wait_for_url(re.compile(rf".*/blackbox\?asset_id={asset_id}$"))
    assert page.locator('[data-testid="asset-focus"]').count() == 1
    assert page.locator('[data-counter="critical_open"] .stat-value').inner_text().strip() in ("1", "١")
    page.screenshot(path=str(live_server.output_dir / "blackbox-overview.png"), full_page=True)

    row = page.locator('[data-testid="incidents-table"] tbody tr').first
    assert "P-101" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_url(re.compile(r".*/blackbox/incidents/\d+$"))
    timeline = page.locator('[data-testid="timeline"] > li')
    relations = [timeline.nth(i).get_attribute("data-relation") for i in range(timeline.count())]
    assert "trigger" in relations and relations.index("trigger") > 0   # the warning breach led up to it
    assert page.locator('[data-testid="trends"] svg').count() >= 1
    page.screenshot(path=str(live_server.output_dir / "blackbox-incident.png"), full_page=True)

    page.fill('[data-testid="acknowledge-form"] input[name="note"]', "الفريق في الموقع")
    with page.expect_navigation(url=re.compile(r".*/blackbox/incidents/\d+$")):
        page.click('[data-testid="acknowledge-form"] button[type="submit"]')
    assert page.locator('.alert-success[role="status"]').count() == 1    # "Incident acknowledged.", once
    assert page.locator('[data-incident-status="acknowledged"]').count() >= 1
    page.click('[data-testid="incident-actions"] details.confirm summary')
    page.fill('[data-testid="resolve-form"] textarea[name="note"]', "تم تغيير المحمل وعاد الاهتزاز طبيعيًا.")
    with page.expect_navigation(url=re.compile(r".*/blackbox/incidents/\d+$")):
        page.click('[data-testid="resolve-form"] button[type="submit"]')
    assert page.locator('.alert-success[role="status"]').count() == 1
    assert "تم تغيير المحمل" in page.locator('[data-testid="resolution"]').inner_text()
    assert page.locator('[data-testid="incident-actions"]').count() == 0
    incident_url = page.url.split("?")[0]
    page.screenshot(path=str(live_server.output_dir / "blackbox-resolved.png"), full_page=True)

    page.goto("/blackbox/events")
    assert page.locator('[data-testid="events-table"] tbody tr').count() >= 5
    page.screenshot(path=str(live_server.output_dir / "blackbox-events.png"), full_page=True)

    page.context.clear_cookies()
    sign_in(page, VIEWER)
    page.goto(incident_url)
    assert page.locator('[data-testid="incident-actions"]').count() == 0
    assert page.locator('[data-testid="payload"]').count() == 0
    assert errors == []
