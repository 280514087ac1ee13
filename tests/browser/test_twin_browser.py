"""The live Digital Twin in a real browser: the demo tenant's admin opens /digital-twin (Arabic, RTL,
sidebar on the right), sees pump P-101's card turn from green to red without a reload when the
simulator's scripted bearing fault drives its vibration past the critical limit (samples committed
through the ingest writer, scored by the scoring job), then follows the drill-down chain
Dashboard → Assets → asset detail → twin view → Black Box. Screenshots go to test-output/."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import datetime, timezone

import psycopg
import pytest
from playwright.sync_api import expect

from ingest.samples import Sample
from optria.db import Database
from optria.demo.plant import TAGS, Plant
from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS
from optria.twin.jobs import ScoringJob
from tests.twin_arrange import write_samples

pytestmark = pytest.mark.browser

ADMIN = next(u for u in DEMO_USERS if u.role == "tenant_admin")
ASSET = "P-101"


def run(coro_fn):
    """Run async database work on its own thread and loop (Playwright's sync API owns this thread)."""
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro_fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join(60)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def arranged(dsn: str) -> tuple:
    """(tenant id, asset id, {role: signal id}) of the demo pump, as the demo seed mapped it."""
    with psycopg.connect(dsn) as conn:
        tenant, asset = conn.execute(
            "SELECT a.tenant_id, a.id FROM assets a JOIN tenants t ON t.id = a.tenant_id "
            "WHERE t.slug = %s AND a.code = %s", [DEMO_TENANT_SLUG, ASSET]).fetchone()
        roles = dict(conn.execute("SELECT metric_role, signal_id FROM external_signal_mappings "
                                  "WHERE tenant_id = %s AND asset_id = %s AND enabled", [tenant, asset]).fetchall())
    return tenant, asset, roles


def feed_and_score(dsn: str, tenant, roles: dict[str, int], plant: Plant) -> None:
    """One sample per mapped signal of the pump, valued by the simulator's plant model now, then a scoring run."""
    now = datetime.now(timezone.utc)
    tags = {t.role: t for t in TAGS if t.asset == ASSET}
    samples = [Sample(tenant, sid, now, plant.value(tags[role], now.timestamp()), 0) for role, sid in roles.items()]

    async def go() -> None:
        await write_samples(dsn, samples)
        db = Database(dsn, min_size=1, max_size=2, name="browser-scoring")
        await db.open()
        try:
            await ScoringJob(db).run_once()
        finally:
            await db.close()

    run(go)


def sign_in(page) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', DEMO_TENANT_SLUG)
    page.fill('input[name="username"]', ADMIN.username)
    page.fill('input[name="password"]', ADMIN.password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/$"))


def test_twin_goes_red_live_and_drills_down(page, live_server, db_dsn) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    tenant, asset, roles = arranged(db_dsn)
    assert {"vibration", "temperature"} <= set(roles)
    plant = Plant()
    feed_and_score(db_dsn, tenant, roles, plant)           # healthy pump: every signal fresh and in limits

    sign_in(page)
    page.goto("/digital-twin")
    assert page.get_attribute("html", "dir") == "rtl" and page.get_attribute("html", "lang") == "ar"
    sidebar = page.locator("aside.sidebar").bounding_box()
    main = page.locator("main.main").bounding_box()
    assert sidebar["x"] >= main["x"] + main["width"] - 1, (sidebar, main)   # the sidebar is on the right
    page.wait_for_selector('[data-live-state="live"]')

    card = page.locator(f'[data-asset-id="{asset}"]')
    assert card.get_attribute("data-status") == "normal" and card.get_attribute("data-risk") == "low"
    colour = "el => getComputedStyle(el).getPropertyValue('border-inline-start-color')"
    green = card.evaluate(colour)
    page.evaluate("window.__notReloaded = true")

    plant.start_fault(ASSET, "bearing", at=datetime.now(timezone.utc).timestamp() - 120, ramp_s=1)
    feed_and_score(db_dsn, tenant, roles, plant)           # vibration ≈ 14 mm/s, past the 11 mm/s critical limit

    # expect() polls without evaluating strings in the page (the CSP allows no eval, so no wait_for_function)
    expect(card).to_have_attribute("data-status", "critical", timeout=15_000)
    assert card.get_attribute("data-risk") == "high"
    expect(card).to_have_css("border-inline-start-color", "rgb(214, 69, 69)")  # the colour eases over 0.4 s
    red = card.evaluate(colour)
    assert (green, red) == ("rgb(31, 157, 85)", "rgb(214, 69, 69)")    # --ok to --crit
    assert page.evaluate("window.__notReloaded") is True     # it changed in place, no reload
    strip = page.locator('[data-testid="twin-status-strip"] [data-count-status="critical"]')
    expect(strip).to_have_text("1")
    assert strip.inner_text() == "1"                           # the status counts follow
    vibration = card.locator(f'[data-signal-id="{roles["vibration"]}"]')
    assert vibration.get_attribute("data-state") == "critical"
    assert float(vibration.locator('[data-field="value"]').inner_text()) > 11
    page.screenshot(path=str(live_server.output_dir / "twin.png"), full_page=True)

    # the drill-down chain, one click at a time
    page.click('a.brand')
    page.wait_for_url(re.compile(r".*/$"))
    page.click('[data-testid="status-critical"]')                               # dashboard → assets (critical)
    page.wait_for_url(re.compile(r".*/assets\?status=critical$"))
    page.click(f'a[href="/assets/{asset}"] >> nth=0')                           # assets → asset detail
    page.wait_for_url(re.compile(rf".*/assets/{asset}$"))
    page.click('[data-testid="twin-link"]')                                     # asset → its twin view
    page.wait_for_url(re.compile(rf".*/digital-twin/assets/{asset}$"))
    crumbs = page.locator("nav.breadcrumbs a")
    assert [crumbs.nth(i).get_attribute("href") for i in range(crumbs.count())] == ["/", "/assets", f"/assets/{asset}"]
    assert page.locator('[data-testid="twin-asset"]').get_attribute("data-status") == "critical"
    assert page.locator(f'[data-testid="trend-{roles["vibration"]}"]').count() == 1
    page.wait_for_selector('[data-live-state="live"]')
    page.screenshot(path=str(live_server.output_dir / "twin-asset.png"), full_page=True)
    with page.expect_navigation() as nav:
        page.click('[data-testid="blackbox-link"]')                             # twin view → Black Box
    assert nav.value is not None and nav.value.ok
    assert re.search(rf"/blackbox\?asset_id={asset}$", page.url)
    assert errors == []
