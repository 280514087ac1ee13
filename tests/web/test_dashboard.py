"""The dashboard: empty state with next steps, figures that match the lists they link to, at-risk ordering,
Arabic first, and platform owners sent to their console."""

from __future__ import annotations

import re

from optria.assets import lifecycle
from optria.assets.lifecycle import Actor
from tests.web.assets_setup import make_plant, set_health


def _figure(html: str, testid: str) -> int:
    m = re.search(rf'data-testid="{testid}"[^>]*>\s*<span class="stat-value">(\d+)</span>', html)
    assert m, f"no figure {testid}"
    return int(m.group(1))


async def _sign_in(web, accounts, role: str = "engineer", lang: str | None = "en"):
    tenant = await accounts.tenant()
    account = await accounts.user(role, tenant)
    await web.login(account)
    if lang:
        web.client.cookies.set("lang", lang)
    return account


async def test_new_tenant_dashboard_says_what_to_do_next(web, accounts) -> None:
    await _sign_in(web, accounts, role="tenant_admin")
    r = await web.get("/")
    assert r.status_code == 200
    html = r.text
    assert 'data-testid="dashboard-empty"' in html
    for step in ("Add your sites and assets", "Add an integration", "Map tags to assets"):
        assert step in html
    assert 'href="/assets/sites"' in html and 'href="/integrations"' in html
    for status in ("normal", "warning", "critical", "nodata"):
        assert _figure(html, f"status-{status}") == 0
        assert f'href="/assets?status={status}"' in html
    assert 'data-testid="dashboard-integrations"' in html


async def test_viewer_empty_dashboard_has_no_edit_buttons(web, accounts) -> None:
    await _sign_in(web, accounts, role="viewer")
    html = (await web.get("/")).text
    assert 'data-testid="dashboard-empty"' in html and 'href="/assets/sites"' not in html
    assert "Ask an administrator or engineer" in html


async def test_figures_match_the_lists_behind_them(web, accounts, db) -> None:
    account = await _sign_in(web, accounts)
    tenant_id = account.tenant_id
    ids = await make_plant(db, tenant_id, assets=6, with_activity=True)
    p = list(ids.assets.values())
    await set_health(db, tenant_id, p[0], "critical", 18.0, 0.86)
    await set_health(db, tenant_id, p[1], "warning", 55.0, 0.35)
    await set_health(db, tenant_id, p[2], "warning", 70.0, 0.35)
    await set_health(db, tenant_id, p[3], "normal", 97.0, 0.01)
    await set_health(db, tenant_id, p[4], "critical", 10.0, 0.99, age_s=7200)   # stale → no data
    async with db.tenant(tenant_id) as conn:
        actor = Actor.system("rules")
        extra = await lifecycle.raise_alert(conn, tenant_id, p[1], {"severity": "critical", "title": "Overheat",
                                                                    "description": "", "source": "rule",
                                                                    "source_ref": "t-hi"}, actor)
        await lifecycle.acknowledge_alert(conn, tenant_id, extra, actor)

    html = (await web.get("/")).text
    assert 'data-testid="dashboard-empty"' not in html
    expected = {"normal": 1, "warning": 2, "critical": 1, "nodata": 2}
    for status, count in expected.items():
        assert _figure(html, f"status-{status}") == count
        listed = await web.get(f"/assets?status={status}")
        assert len(re.findall(r'data-asset-id="\d+"', listed.text)) == count, status
    assert _figure(html, "status-all") == 6

    assert _figure(html, "alerts-active") == 2 and _figure(html, "alerts-open") == 1
    active = (await web.get("/alerts?status=active")).text
    assert len(re.findall(r'data-alert-id="\d+"', active)) == 2
    assert len(re.findall(r'data-alert-id="\d+"', (await web.get("/alerts?status=open")).text)) == 1
    assert _figure(html, "wo-active") == 1
    assert "A inspect bearing" in html and "Overheat" in html

    # at-risk: highest failure probability first, ties by lower health; stale and missing scores left out
    section = html.split('data-testid="at-risk"', 1)[1].split("</section>", 1)[0]
    order = [int(x) for x in re.findall(r'href="/assets/(\d+)"', section)]
    assert order == [p[0], p[1], p[2], p[3]]


async def test_dashboard_is_arabic_first(web, accounts, db) -> None:
    account = await _sign_in(web, accounts, lang=None)
    await make_plant(db, account.tenant_id, assets=1)
    html = (await web.get("/")).text
    assert 'dir="rtl"' in html and "لوحة التحكم" in html
    assert "Assets by status" not in html and "No data" not in html


async def test_platform_owner_goes_to_the_platform_console(web, accounts) -> None:
    owner = await accounts.user("platform_owner")
    await web.login(owner)
    r = await web.get("/")
    assert r.status_code in (302, 303) and r.headers["location"] == "/platform"
    assert (await web.get("/assets")).status_code == 403
    assert (await web.api("GET", "/api/assets")).status_code == 403


async def test_the_dashboard_leads_with_open_incidents_in_the_readers_language(web, accounts, db, owner_conn) -> None:
    """A limit breach opens an incident without anyone raising an alert: the dashboard must not say only
    "0 active alerts" while it is open (issue 13)."""
    from datetime import datetime, timezone

    from psycopg.types.json import Jsonb

    from optria.blackbox.messages import limit_message

    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag="INC", assets=1)
    asset = next(iter(plant.assets.values()))
    title = limit_message("breach", "crit_high", "Site.Unit.INC-P-1.Vibration", 11.0097, 11.0, "mm/s")
    owner_conn.execute(
        "INSERT INTO incidents (tenant_id, asset_id, title, incident_type, severity, started_at, last_event_at, "
        "title_key, title_params) VALUES (%s, %s, %s, 'limit_breach', 'critical', %s, %s, %s, %s)",
        [tenant[0], asset, "Site.Unit.INC-P-1.Vibration: 11.0097 mm/s > 11", datetime.now(timezone.utc),
         datetime.now(timezone.utc), title["key"], Jsonb(title["params"])])
    await web.login(await accounts.user("viewer", tenant))
    page = (await web.get("/")).text
    card = page[page.index('data-testid="dashboard-incidents"'):page.index('data-testid="at-risk"')]
    assert 'data-testid="incidents-critical"><span class="stat-value">1<' in card
    assert '<bdi dir="ltr" class="tag">Site.Unit.INC-P-1.Vibration</bdi> عند' in card        # Arabic, tag isolated
    assert "فوق حدّه الحرج" in card and "مم/ث" in card and "mm/s" not in card
    assert 'data-testid="alerts-vs-incidents"' in page                   # no alerts, but an open incident
    english = (await web.get("/?lang=en")).text
    assert "above its critical limit of" in english and "No alerts raised by people" in english
