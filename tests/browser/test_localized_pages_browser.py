"""Issue 13 in a real browser: pages that tell the truth, in Arabic and in English.

Real processes throughout — ``optria serve``, ``optria simulate``, ``optria ingest`` (started here) — on
the seeded demo tenant, with two hours of history written first through the ingest writer (the values
the simulators' plant model gives for those minutes; P-101's "running" state reported once, as a source
that reports only changes does). Then a bearing fault on P-101 through the PI simulator's control, and
a new user's walk through the pages, in Arabic (the default) and after the English switch:

- the dashboard shows the open critical incident the fault opened (alerts alone said "0 active");
- every visible text of the Arabic pages is Arabic, except the names listed in tests/browser/text_checks.py;
- mixed-direction runs are isolated and read in order (a tag, its value and its limit, right to left;
  a percentage the same everywhere; the ingestion rates and lags);
- the failure probability says what it means and over which horizon; twin cards carry sparklines;
  the change-only "running" signal draws steps, is not called stale, and the optimization run does
  not list it as missing data;
- the asset twin page takes a chosen time range and overlays two signals;
- every time on the pages is in the site's time zone (Asia/Riyadh), not UTC.

Screenshots of the dashboard, twin, asset twin, an incident and the ingestion page in both languages
go to test-output/ (``i13-<page>-<lang>.png``).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from ingest.samples import Sample
from optria.demo.plant import TAGS, Plant
from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS
from tests.browser.text_checks import boxes, fragments, latin_sentences, reads_right_to_left
from tests.fix_browser import BROWSER_SECRET, CHROMIUM_ARGS, OWNER_PASSWORD
from tests.twin_arrange import write_samples

pytestmark = pytest.mark.browser

ADMIN = next(u for u in DEMO_USERS if u.role == "tenant_admin")
VIEWER = next(u for u in DEMO_USERS if u.role == "viewer")
HISTORY_MIN = 120
ARABIC = re.compile(r"[\u0600-\u06FF]")


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
    t.join(120)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def prefill_history(dsn: str) -> dict:
    """Two hours of minute values for every mapped demo signal, as the plant model gives them, written
    through the ingest writer; a "running" state once, two hours ago (it reports only changes).
    Returns the demo tenant's ids: tenant, assets by code, signals by (asset code, role)."""
    with psycopg.connect(dsn) as conn:
        tenant = conn.execute("SELECT id FROM tenants WHERE slug = %s", [DEMO_TENANT_SLUG]).fetchone()[0]
        assets = dict(conn.execute("SELECT code::text, id FROM assets WHERE tenant_id = %s", [tenant]).fetchall())
        rows = conn.execute(
            "SELECT a.code::text, m.metric_role, m.signal_id, s.name FROM external_signal_mappings m "
            "JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id "
            "JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id WHERE m.tenant_id = %s", [tenant]).fetchall()
    plant, tags = Plant(), {t.path: t for t in TAGS}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    samples = []
    for code, role, signal_id, name in rows:
        tag = tags[name]
        if role == "running":
            t = now - timedelta(minutes=HISTORY_MIN)
            samples.append(Sample(tenant, signal_id, t, plant.value(tag, t.timestamp()), 0))
            continue
        for i in range(HISTORY_MIN, 0, -1):
            t = now - timedelta(minutes=i, seconds=30)
            samples.append(Sample(tenant, signal_id, t, plant.value(tag, t.timestamp()), 0))
    run(lambda: write_samples(dsn, samples))
    return {"tenant": tenant, "assets": assets, "signals": {(c, r): s for c, r, s, _ in rows}}


def sign_in(page, organization: str, username: str, password: str) -> None:
    page.goto("/login")
    page.fill('input[name="organization"]', organization)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/(platform)?$"))


def switch_language(page, lang: str) -> None:
    """The switch in the sidebar, as a user presses it (it remembers the choice in a cookie)."""
    if page.get_attribute("html", "lang") != lang:
        page.click(f'form.lang-switch button[value="{lang}"]')
        page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == lang


def reload_until(page, path: str, selector: str, timeout_s: float) -> None:
    """Open ``path`` again until ``selector`` is on it (data arrives from real processes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.goto(path)
        if page.locator(selector).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} did not appear on {path} within {timeout_s:g} s:\n"
                                 f"{page.inner_text('main')[:2000]}")
        time.sleep(2)


def no_latin(page, path: str, seen: dict[str, list[str]]) -> None:
    page.goto(path)
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "ar"
    bad = latin_sentences(page)
    if bad:
        seen[path] = bad


def shot(page, live_server, name: str, lang: str) -> None:
    page.screenshot(path=str(live_server.output_dir / f"i13-{name}-{lang}.png"), full_page=True)


def test_pages_tell_the_truth_in_arabic_and_english(page, live_server, db_dsn, tmp_path) -> None:
    ids = prefill_history(db_dsn)
    p101, running = ids["assets"]["P-101"], ids["signals"][("P-101", "running")]
    vibration = ids["signals"][("P-101", "vibration")]
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": BROWSER_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path), "OPCUA_ENDPOINT_URL": live_server.opcua_endpoint,
           "PI_BASE_URL": live_server.pi_base_url}
    ingest = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0", "--lease-ttl", "6"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, DEMO_TENANT_SLUG, ADMIN.username, ADMIN.password)
        assert page.get_attribute("html", "lang") == "ar"
        # the demo streams: P-101's card is live (every signal current, the change-only one too)
        card = f'[data-asset-id="{p101}"][data-data="none"][data-status="normal"]'
        reload_until(page, "/digital-twin", card, 90)
        # GT-401's card shows its four signals, its change-only "running" state among them: drawn as steps
        # (its value holds), and current (its source is live) however old its one sample is
        gt401, gt_running = ids["assets"]["GT-401"], ids["signals"][("GT-401", "running")]
        state_row = page.locator(f'[data-asset-id="{gt401}"] li[data-signal-id="{gt_running}"]')
        assert state_row.get_attribute("data-step") == "true" and state_row.get_attribute("data-state") == "normal"
        held = state_row.locator("svg.sparkline")
        assert held.locator("polyline").count() == 1 and held.locator("circle").count() == 0   # a held line, not a dot
        assert int(held.get_attribute("data-points")) >= 2
        assert page.locator(f'[data-asset-id="{gt401}"]').get_attribute("data-data") == "none"   # nothing stale

        # a bearing fault, through the simulator both servers share
        fault = httpx.post(live_server.pi_base_url.replace("/piwebapi", "/sim/fault"),
                           json={"asset": "P-101", "kind": "bearing", "ramp_s": 15}, timeout=10)
        assert fault.status_code == 200, fault.text

        # 1. the dashboard shows the open critical incident (alerts alone would say "0 active")
        reload_until(page, "/", '[data-testid="dashboard-incident-list"] li', 150)
        incidents = page.locator('[data-testid="dashboard-incidents"]')
        assert int(incidents.locator('[data-testid="incidents-critical"] .stat-value').inner_text()) >= 1
        first = incidents.locator("li").first
        title = first.locator("a")
        assert ARABIC.search(title.inner_text()), title.inner_text()           # the title in Arabic...
        assert title.locator("bdi.tag").count() == 1                            # ...its tag name isolated
        assert page.locator('[data-testid="alerts-vs-incidents"]').count() == 1  # "no alerts, but N incidents"
        incident_href = title.get_attribute("href")
        assert page.locator('[data-testid="zone-note"]').inner_text().strip()  # times are in a named zone
        assert "UTC" not in page.inner_text("main")                             # ...the site's, Asia/Riyadh
        shot(page, live_server, "dashboard", "ar")

        # 2. no Latin-only sentence on any Arabic page (product, tag and given names excepted, explicitly)
        seen: dict[str, list[str]] = {}
        for path in ("/", "/digital-twin", f"/digital-twin/assets/{p101}", "/blackbox", incident_href,
                     "/blackbox/events", "/assets", f"/assets/{p101}", "/assets/sites", "/alerts", "/integrations",
                     "/integrations/1", "/optimization", "/management/users", "/management/audit",
                     "/management/sso/new"):
            no_latin(page, path, seen)
        assert seen == {}, seen

        # 3. the twin: sparklines on the cards, steps for the change-only signal, which is not stale
        page.goto("/digital-twin")
        p_card = page.locator(f'[data-asset-id="{p101}"]')
        expect(p_card).to_have_attribute("data-status", "critical", timeout=30_000)
        sparks = p_card.locator("svg.sparkline")
        assert sparks.count() >= 3
        assert int(p_card.locator(f'[data-testid="spark-{vibration}"]').get_attribute("data-points")) >= 30
        for c in page.locator('[data-testid="twin-card"]').all():
            assert c.locator("li[data-signal-id]").count() == c.locator("svg.sparkline").count()
        assert p_card.locator('[data-field="prob"]').inner_text() == "100"          # past the limit: certain
        number, percent = boxes(p_card.locator('[data-field="prob"], [data-field="prob-sign"]'))
        assert percent[0] >= number[1] - 1          # "100%" with the sign after the number, as on the dashboard
        assert page.locator('[data-testid="probability-meaning"]').count() == 1
        grid = page.locator('[data-testid="twin-grid"]').bounding_box()
        first_row = [b for b in (c.bounding_box() for c in page.locator('[data-testid="twin-card"]').all())
                     if abs(b["y"] - page.locator('[data-testid="twin-card"]').first.bounding_box()["y"]) < 2]
        assert sum(b["width"] for b in first_row) >= 0.8 * grid["width"], (first_row, grid)   # the width is used
        shot(page, live_server, "twin", "ar")

        # 4. the asset twin: the change-only signal draws steps and is current; a chosen range; an overlay
        page.goto(f"/digital-twin/assets/{p101}")
        signal = page.locator(f'article[data-signal-id="{running}"]')
        assert signal.get_attribute("data-state") not in ("stale", "nodata")
        assert signal.locator("[data-step='true']").count() == 1
        assert signal.locator("polyline.step").count() == 1                       # steps, not a lone dot
        assert "تبقى قيمتها" in signal.inner_text()                               # "its value holds until..."
        assert page.locator('[data-testid="twin-asset"]').get_attribute("data-data") in ("none", "some")
        meaning = page.locator('[data-testid="probability-meaning"]').inner_text()
        assert "24" in meaning and "6" in meaning
        overlay = page.locator('[data-testid="overlay-chart"]')
        assert overlay.locator("polyline").count() >= 2 and overlay.locator("text.legend").count() == 2
        page.select_option('[data-testid="overlay-form"] select[name="b"]', str(ids["signals"][("P-101", "temperature")]))
        page.wait_for_url(re.compile(r".*[?&]b=\d+"))
        assert page.locator('[data-testid="overlay-chart"] polyline').count() >= 2
        start = (datetime.now(timezone.utc) + timedelta(hours=3) - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M")
        page.fill('[data-testid="range-form"] input[name="from"]', start)   # Asia/Riyadh is UTC+3
        page.click('[data-testid="range-form"] button[type="submit"]')
        page.wait_for_url(re.compile(r".*range=custom.*"))
        assert page.locator('[data-testid="range-form"] input[name="from"]').input_value() == start
        assert page.locator(f'[data-testid="trend-{vibration}"] polyline').count() >= 1
        shot(page, live_server, "asset-twin", "ar")

        # 5. the incident: title and timeline in Arabic; tag, value and limit read right to left
        page.goto(incident_href)
        heading = page.locator('[data-testid="incident-title"]')
        assert ARABIC.search(heading.inner_text())
        parts = heading.locator("bdi.tag, bdi.qty")
        assert reads_right_to_left(parts), (fragments(parts), heading.inner_html())
        assert page.locator('[data-testid="timeline"] li').count() >= 1
        assert page.locator(f'[data-testid="trend-{running}"] polyline.step').count() == 1   # the state holds: steps
        shot(page, live_server, "incident", "ar")
        page.goto("/blackbox")
        top = page.locator('[data-testid="top-alarms"] li').first
        parts = top.locator("a bdi.tag, a bdi.qty")
        assert reads_right_to_left(parts), (fragments(parts), top.inner_html())
        assert ARABIC.search(top.locator(".bb-times").inner_text())              # "N مرة", not "1×"

        # 6. the asset page: a description reads in its own direction; the Entra hint keeps <directory id>
        page.goto(f"/assets/{p101}")
        description = page.locator('[data-testid="asset-description"]')
        assert description.get_attribute("dir") == "auto"
        assert description.evaluate("e => getComputedStyle(e).direction") == "rtl"   # the Arabic description
        page.goto("/management/sso/new")
        assert "<معرّف الدليل>" in page.locator('[data-testid="entra-url"]').inner_text()
        favicon = page.request.get("/favicon.ico")
        assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg+xml")

        # 7. an optimization run over P-101's data source does not call the change-only signal missing
        page.goto("/integrations")
        page.locator("article", has_text="Ras Tanura OPC-UA").locator('[data-testid="ai-run-button"]').click()
        page.wait_for_url(re.compile(r".*/optimization/runs/\d+$"))
        page.wait_for_selector('[data-run-status="succeeded"], [data-run-status="fallback"]', timeout=60_000)
        scope = page.locator('[data-testid="run-scope"]').inner_text()
        assert ARABIC.search(scope) and "Ras Tanura OPC-UA" in scope
        assert page.locator('[data-testid="recommendations"] [data-asset="P-101"] .opt-rec[data-kind="stale"]').count() == 0
        assert latin_sentences(page) == []

        # 8. a viewer reads the same dashboard in Arabic
        viewer_ctx = page.context.browser.new_context(base_url=live_server.base_url, viewport={"width": 1440, "height": 1000})
        viewer = viewer_ctx.new_page()
        sign_in(viewer, DEMO_TENANT_SLUG, VIEWER.username, VIEWER.password)
        assert viewer.locator('[data-testid="dashboard-incident-list"] li').count() >= 1
        assert latin_sentences(viewer) == []
        viewer_ctx.close()

        # 9. the English switch: the same pages, in English, left to right
        page.goto("/")
        switch_language(page, "en")
        assert page.get_attribute("html", "dir") == "ltr"
        assert page.locator('[data-testid="dashboard-incident-list"] li').count() >= 1
        assert "above its critical limit" in page.locator('[data-testid="dashboard-incident-list"] li').first.inner_text()
        shot(page, live_server, "dashboard", "en")
        page.goto("/digital-twin")
        assert "Failure probability" in page.locator('[data-testid="probability-meaning"]').inner_text()
        shot(page, live_server, "twin", "en")
        page.goto(f"/digital-twin/assets/{p101}")
        assert "Reports changes only" in page.locator(f'article[data-signal-id="{running}"]').inner_text()
        shot(page, live_server, "asset-twin", "en")
        page.goto(incident_href)
        assert "above its critical limit" in page.locator('[data-testid="incident-title"]').inner_text()
        shot(page, live_server, "incident", "en")
        page.goto(f"/assets/{p101}")
        assert page.locator('[data-testid="asset-description"]').evaluate("e => getComputedStyle(e).direction") == "ltr"
        switch_language(page, "ar")

        # 10. the platform owner's ingestion page: rates and lags isolated, in both languages
        page.click('form[action="/logout"] button')
        sign_in(page, "", "owner", OWNER_PASSWORD)
        for path in ("/platform", "/platform/ingestion", "/platform/ingestion/1"):
            no_latin(page, path, seen)
        assert seen == {}, seen
        page.goto("/platform/ingestion")
        streaming = page.locator('tr[data-integration][data-level="normal"]')
        expect(streaming.first).to_be_visible()
        lag = streaming.first.locator('[data-testid="lag"] bdi.num')
        assert lag.count() == 2 and reads_right_to_left(lag)                      # median first, on the right
        assert ARABIC.search(streaming.first.locator('[data-testid="rate"]').inner_text())   # "19.0/ث", not "s/19.0"
        shot(page, live_server, "ingestion", "ar")
        switch_language(page, "en")
        lag = page.locator('tr[data-integration][data-level="normal"]').first.locator('[data-testid="lag"] bdi.num')
        assert lag.count() == 2 and not reads_right_to_left(lag)                  # left to right in English
        assert "/s" in page.locator('tr[data-integration][data-level="normal"]').first.locator('[data-testid="rate"]').inner_text()
        shot(page, live_server, "ingestion", "en")
        assert errors == []
    finally:
        if ingest.poll() is None:
            ingest.terminate()
            try:
                ingest.wait(20)
            except subprocess.TimeoutExpired:
                ingest.kill()
