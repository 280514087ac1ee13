"""Tenant isolation, from outside: a user of tenant A tries every assets route with tenant B's ids — in the
path, in form and JSON fields, in query strings — and gets 403/404/422 or an ignored filter, never B's
data; B's rows are the same afterwards."""

from __future__ import annotations

import pytest

from tests.web.assets_setup import make_plant, set_health
from tests.web.routes_walk import walk

SECRET = "Bravo"  # every name, code and title of tenant B contains it


def _snapshot(owner_conn, tenant_id) -> dict[str, list]:
    out = {}
    for table in ("sites", "units", "assets", "alerts", "work_orders", "alert_history", "work_order_history",
                  "asset_health_latest", "asset_metrics_snapshot"):
        out[table] = owner_conn.execute(f"SELECT * FROM {table} WHERE tenant_id = %s ORDER BY 1, 2", [tenant_id]).fetchall()
    return out


@pytest.fixture
async def two_tenants(db, accounts, owner_conn):
    a = await accounts.tenant()
    b = await accounts.tenant()
    admin_a = await accounts.user("tenant_admin", a)
    plant_a = await make_plant(db, a[0], tag="Alpha", assets=2, with_activity=True)
    plant_b = await make_plant(db, b[0], tag=SECRET, assets=2, with_activity=True)
    await set_health(db, b[0], plant_b.assets[f"{SECRET}-P-1"], "critical", 5.0, 0.99)
    return admin_a, plant_a, plant_b


async def test_paths_with_other_tenant_ids_are_not_found(web, two_tenants, owner_conn) -> None:
    admin_a, plant_a, b = two_tenants
    before = _snapshot(owner_conn, b.tenant_id)
    await web.login(admin_a)
    b_asset = b.assets[f"{SECRET}-P-1"]
    gets = [f"/assets/{b_asset}", f"/assets/{b_asset}/edit", f"/api/assets/{b_asset}",
            f"/api/assets/{b_asset}/alerts", f"/api/assets/{b_asset}/work-orders"]
    for path in gets:
        r = await web.get(path, headers={"accept": "application/json"} if path.startswith("/api/") else {})
        assert r.status_code == 404, path
        assert SECRET not in r.text, path

    asset_form = {"site_id": str(b.site_id), "code": "Z-1", "name": "Z"}
    forms = [
        (f"/assets/{b_asset}/edit", asset_form),
        (f"/assets/{b_asset}/alerts", {"severity": "high", "title": "intrusion"}),
        (f"/assets/{b_asset}/work-orders", {"title": "intrusion"}),
        (f"/alerts/{b.alert_id}/acknowledge", {}),
        (f"/alerts/{b.alert_id}/clear", {"note": "x"}),
        (f"/work-orders/{b.work_order_id}/status", {"status": "closed"}),
        (f"/work-orders/{b.work_order_id}/status", {"status": "bogus"}),
        (f"/assets/sites/{b.site_id}/edit", {"code": "X", "name": "X"}),
        (f"/assets/units/{b.unit_id}/edit", {"site_id": str(plant_a.site_id), "code": "X", "name": "X"}),
    ]
    for path, data in forms:
        r = await web.post_form(path, data)
        assert r.status_code == 404, (path, r.status_code)
        assert SECRET not in r.text, path

    api_calls = [
        ("PATCH", f"/api/assets/{b_asset}", {"name": "x"}),
        ("POST", f"/api/assets/{b_asset}/alerts", {"severity": "high", "title": "x"}),
        ("POST", f"/api/assets/{b_asset}/work-orders", {"title": "x"}),
        ("POST", f"/api/alerts/{b.alert_id}/acknowledge", {}),
        ("POST", f"/api/alerts/{b.alert_id}/clear", {}),
        ("PATCH", f"/api/work-orders/{b.work_order_id}", {"status": "closed"}),
    ]
    for method, path, body in api_calls:
        r = await web.api(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert r.json()["error"]["code"].endswith("_not_found")
        assert SECRET not in r.text
    assert _snapshot(owner_conn, b.tenant_id) == before


async def test_fields_pointing_into_another_tenant_are_refused(web, two_tenants, owner_conn) -> None:
    admin_a, a, b = two_tenants
    before_b = _snapshot(owner_conn, b.tenant_id)
    before_a = _snapshot(owner_conn, a.tenant_id)
    await web.login(admin_a)
    a_asset = a.assets["Alpha-P-1"]
    a_asset_2 = a.assets["Alpha-P-2"]
    base = {"code": "N-1", "name": "New", "asset_type": "pump", "criticality": "low", "expected_interval_s": "60"}
    forms = [
        ("/assets", {**base, "site_id": str(b.site_id)}, "site_id"),
        ("/assets", {**base, "site_id": str(a.site_id), "unit_id": str(b.unit_id)}, "unit_id"),
        (f"/assets/{a_asset}/edit", {**base, "site_id": str(b.site_id)}, "site_id"),
        (f"/assets/{a_asset}/edit", {**base, "site_id": str(a.site_id), "unit_id": str(b.unit_id)}, "unit_id"),
        ("/assets/units", {"site_id": str(b.site_id), "code": "U9", "name": "U9"}, "site_id"),
        (f"/assets/units/{a.unit_id}/edit", {"site_id": str(b.site_id), "code": "U9", "name": "U9"}, None),
        (f"/assets/{a_asset_2}/work-orders", {"title": "x", "alert_id": str(b.alert_id)}, "alert_id"),
    ]
    for path, data, field in forms:
        r = await web.post_form(path, data)
        assert r.status_code == 422, (path, data, r.status_code)
        if field:
            assert f'id="{field}-error"' in r.text, (path, field)
        assert SECRET not in r.text, path

    api_calls = [
        ("POST", "/api/assets", {"site_id": b.site_id, "code": "N-2", "name": "x"}, "site_id"),
        ("POST", "/api/assets", {"site_id": a.site_id, "unit_id": b.unit_id, "code": "N-2", "name": "x"}, "unit_id"),
        ("PATCH", f"/api/assets/{a_asset}", {"site_id": b.site_id}, "site_id"),
        ("PATCH", f"/api/assets/{a_asset}", {"unit_id": b.unit_id}, "unit_id"),
        ("POST", "/api/units", {"site_id": b.site_id, "code": "U9", "name": "x"}, "site_id"),
        ("POST", f"/api/assets/{a_asset_2}/work-orders", {"title": "x", "alert_id": b.alert_id}, "alert_id"),
    ]
    for method, path, body, field in api_calls:
        r = await web.api(method, path, json=body)
        assert r.status_code == 422, (method, path, r.status_code)
        assert list(r.json()["error"]["details"]["fields"]) == [field]
        assert SECRET not in r.text
    assert _snapshot(owner_conn, b.tenant_id) == before_b
    assert _snapshot(owner_conn, a.tenant_id) == before_a


async def test_query_strings_with_other_tenant_ids_show_only_own_data(web, two_tenants, owner_conn) -> None:
    admin_a, a, b = two_tenants
    await web.login(admin_a)
    b_asset = b.assets[f"{SECRET}-P-1"]
    pages = [f"/assets?site_id={b.site_id}", f"/assets?unit_id={b.unit_id}", f"/alerts?asset_id={b_asset}",
             f"/alerts?site_id={b.site_id}", f"/work-orders?asset_id={b_asset}", f"/work-orders?site_id={b.site_id}",
             f"/assets/new?site_id={b.site_id}"]
    for path in pages:
        r = await web.get(path)
        assert r.status_code == 200, path
        assert SECRET not in r.text, path
        if not path.startswith("/assets/new"):
            assert 'data-testid="filter-notices"' in r.text, path
    # the lists still show A's own rows (the foreign filter was dropped, not applied)
    assert "Alpha bearing hot" in (await web.get(f"/alerts?asset_id={b_asset}")).text
    for path in (f"/api/assets?site_id={b.site_id}", f"/api/assets?unit_id={b.unit_id}",
                 f"/api/units?site_id={b.site_id}", f"/api/assets/{a.assets['Alpha-P-1']}/alerts?asset_id={b_asset}"):
        r = await web.api("GET", path)
        assert r.status_code == 400, path
        assert SECRET not in r.text
    # lists and the dashboard never count B
    for path in ("/", "/assets", "/alerts", "/work-orders", "/assets/sites", "/api/assets", "/api/sites", "/api/units"):
        r = await web.get(path, headers={"accept": "application/json"} if path.startswith("/api/") else {})
        assert r.status_code == 200 and SECRET not in r.text, path
    dashboard = (await web.get("/")).text
    assert 'data-testid="status-critical"' in dashboard
    assert '<span class="stat-value">0</span>' in dashboard.split('data-testid="status-critical"')[1][:80]


async def test_every_assets_route_is_covered(app) -> None:
    """A new route with an id in its path must be added to the tests above."""
    covered = {
        "/assets/{asset_id}", "/assets/{asset_id}/edit", "/assets/{asset_id}/alerts", "/assets/{asset_id}/work-orders",
        "/alerts/{alert_id}/acknowledge", "/alerts/{alert_id}/clear", "/work-orders/{work_order_id}/status",
        "/assets/sites/{site_id}/edit", "/assets/units/{unit_id}/edit", "/api/assets/{asset_id}",
        "/api/assets/{asset_id}/alerts", "/api/assets/{asset_id}/work-orders", "/api/alerts/{alert_id}/acknowledge",
        "/api/alerts/{alert_id}/clear", "/api/work-orders/{work_order_id}",
    }
    mine = {r.path for r in walk(app) if r.handler.fn.__module__.startswith("optria.assets") and "{" in r.path}
    assert mine == covered
