"""Assets pages and API: list with filters and pagination, detail, create/edit with validation, sites and
units, read-only viewers, the JSON API, and the demo seed."""

from __future__ import annotations

import re

from optria.assets import store
from optria.demo.plant import ASSETS, SITES
from optria.demo.seed_assets import seed_demo_assets
from tests.web.assets_setup import asset_values, make_plant, rows, set_health


def _asset_ids_in(html: str) -> set[int]:
    return {int(x) for x in re.findall(r'data-asset-id="(\d+)"', html)}


async def _admin(web, accounts, role: str = "tenant_admin"):
    tenant = await accounts.tenant()
    account = await accounts.user(role, tenant)
    await web.login(account)
    web.client.cookies.set("lang", "en")  # messages compared in English; Arabic is checked in test_arabic_pages
    return tenant[0], account


# ----------------------------------------------------------------------------- list


async def test_new_tenant_list_says_what_to_do(web, accounts) -> None:
    await _admin(web, accounts)
    r = await web.get("/assets")
    assert r.status_code == 200
    assert 'data-testid="assets-empty"' in r.text
    assert 'href="/assets/sites"' in r.text  # "add a site" is the first step


async def test_list_shows_status_and_no_data_is_never_normal(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=4)
    p1, p2, p3, p4 = ids.assets.values()
    await set_health(db, tenant_id, p1, "warning", 61.4, 0.42)
    await set_health(db, tenant_id, p2, "normal", 93.0, 0.02, age_s=3600)     # stale: 1 h > 2 × 60 s
    await set_health(db, tenant_id, p3, "critical", 12.0, 0.91)
    # p4 has no health row at all

    r = await web.get("/assets")
    assert r.status_code == 200
    assert _asset_ids_in(r.text) == {p1, p2, p3, p4}
    statuses = dict(re.findall(r'data-asset-id="(\d+)".*?data-status="(\w+)"', r.text, re.S))
    assert statuses == {str(p1): "warning", str(p2): "nodata", str(p3): "critical", str(p4): "nodata"}

    only = lambda status: web.get(f"/assets?status={status}")  # noqa: E731
    assert _asset_ids_in((await only("nodata")).text) == {p2, p4}
    assert _asset_ids_in((await only("normal")).text) == set()
    assert _asset_ids_in((await only("critical")).text) == {p3}

    api = (await web.api("GET", "/api/assets?status=nodata")).json()
    assert {a["id"] for a in api["items"]} == {p2, p4}
    stale = next(a for a in api["items"] if a["id"] == p2)["health"]
    assert stale["status"] == "nodata" and stale["stale"] is True and stale["reported_status"] == "normal"
    missing = next(a for a in api["items"] if a["id"] == p4)["health"]
    assert missing == {"status": "nodata", "stale": False, "time": None, "health_score": None,
                       "failure_probability": None, "reported_status": None, "source": None}


async def test_list_filters_by_site_unit_and_search(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=2)
    async with db.tenant(tenant_id) as conn:
        south = await store.insert_asset(conn, tenant_id, asset_values(ids.other_site_id, ids.other_unit_id,
                                                                       "K-900", "Export Compressor"), None)
        loose = await store.insert_asset(conn, tenant_id, asset_values(ids.other_site_id, None, "T-5", "Tank Five"), None)
    north = set(ids.assets.values())

    assert _asset_ids_in((await web.get(f"/assets?site_id={ids.site_id}")).text) == north
    assert _asset_ids_in((await web.get(f"/assets?site_id={ids.other_site_id}")).text) == {south, loose}
    assert _asset_ids_in((await web.get(f"/assets?unit_id={ids.other_unit_id}")).text) == {south}
    assert _asset_ids_in((await web.get("/assets?q=compress")).text) == {south}
    assert _asset_ids_in((await web.get("/assets?q=k-9")).text) == {south}          # code, case-insensitive
    assert _asset_ids_in((await web.get("/assets?q=100%25")).text) == set()         # LIKE wildcards are literal
    r = await web.get("/assets?q=nothing-like-this")
    assert "No asset matches these filters" in r.text


async def test_invalid_filters_are_ignored_with_a_notice(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=2)
    everything = set(ids.assets.values())
    for query in ("status=bogus", "site_id=abc", "site_id=987654321", "unit_id=-3", "page=zero", "page=99999999999",
                  "q=" + "x" * 150):
        r = await web.get(f"/assets?{query}")
        assert r.status_code == 200, query
        assert 'data-testid="filter-notices"' in r.text, query
        if not query.startswith("q="):
            assert _asset_ids_in(r.text) == everything, query
    # a unit outside the chosen site: the site filter stays, the unit filter goes
    r = await web.get(f"/assets?site_id={ids.site_id}&unit_id={ids.other_unit_id}")
    assert "The selected unit is not in the selected site; the unit filter was ignored." in r.text
    assert _asset_ids_in(r.text) == everything
    # the API refuses the same filters with a clear message
    r = await web.api("GET", "/api/assets?status=bogus")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_filter"
    assert "status" in r.json()["error"]["message"]
    assert (await web.api("GET", "/api/assets?page_size=1000")).status_code == 400


async def test_pagination(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=30)
    first = await web.get("/assets")
    second = await web.get("/assets?page=2")
    assert len(_asset_ids_in(first.text)) == 25
    assert len(_asset_ids_in(second.text)) == 5
    assert _asset_ids_in(first.text) | _asset_ids_in(second.text) == set(ids.assets.values())
    assert 'href="/assets?page=2"' in first.text and 'rel="next"' in first.text
    beyond = await web.get("/assets?page=7")
    assert beyond.status_code == 200 and _asset_ids_in(beyond.text) == set()
    api = (await web.api("GET", "/api/assets?page=2&page_size=10")).json()
    assert api["total"] == 30 and api["page"] == 2 and len(api["items"]) == 10


# ----------------------------------------------------------------------------- detail


async def test_detail_page(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=1, with_activity=True)
    asset_id = ids.assets["A-P-1"]
    r = await web.get(f"/assets/{asset_id}")
    assert r.status_code == 200
    html = r.text
    assert 'class="breadcrumbs"' in html and 'href="/assets"' in html
    assert f'href="/digital-twin/assets/{asset_id}"' in html
    assert f'href="/blackbox?asset_id={asset_id}"' in html
    assert 'data-testid="signals"' in html and 'href="/integrations"' in html      # empty signals state
    assert "A bearing hot" in html and "A inspect bearing" in html
    assert f'action="/alerts/{ids.alert_id}/acknowledge"' in html
    assert f'action="/work-orders/{ids.work_order_id}/status"' in html
    assert 'data-status="nodata"' in html and 'data-status="normal"' not in html

    await set_health(db, tenant_id, asset_id, "warning", 64.0, 0.3)
    html = (await web.get(f"/assets/{asset_id}")).text
    assert 'data-status="warning"' in html and ">64<" in html and "30%" in html

    assert (await web.get("/assets/987654321")).status_code == 404
    assert (await web.get("/assets/0")).status_code == 404
    assert (await web.get("/assets/99999999999999999999")).status_code == 404


# ----------------------------------------------------------------------------- create and edit


async def test_create_site_unit_and_asset_through_the_forms(web, accounts, db, owner_conn) -> None:
    tenant_id, _ = await _admin(web, accounts, role="engineer")
    r = await web.post_form("/assets/sites", {"code": "RT", "name": "Ras Tanura", "name_ar": "رأس تنورة",
                                              "timezone": "Asia/Riyadh", "description": "Refinery"})
    assert r.status_code in (302, 303) and r.headers["location"] == "/assets/sites"
    page = await web.get(r.headers["location"])
    assert 'class="alert alert-success"' in page.text and "Site added." in page.text and "Ras Tanura" in page.text
    site_id = rows(owner_conn, "SELECT id FROM sites WHERE tenant_id = %s", tenant_id)[0][0]

    r = await web.post_form("/assets/units", {"site_id": str(site_id), "code": "CDU", "name": "Crude Unit"})
    assert r.status_code in (302, 303)
    unit_id = rows(owner_conn, "SELECT id FROM units WHERE tenant_id = %s", tenant_id)[0][0]

    form = {"site_id": str(site_id), "unit_id": str(unit_id), "code": "P-101", "name": "Charge Pump",
            "name_ar": "مضخة الشحن", "asset_type": "pump", "criticality": "high", "expected_interval_s": "30",
            "description": "Main charge pump"}
    r = await web.post_form("/assets", form)
    assert r.status_code in (302, 303), r.text[-2000:]
    asset_id = int(re.fullmatch(r"/assets/(\d+)", r.headers["location"]).group(1))
    detail = await web.get(r.headers["location"])
    assert "مضخة الشحن" in detail.text and 'class="alert alert-success"' in detail.text and "Asset created." in detail.text
    row = rows(owner_conn, "SELECT site_id, unit_id, code, criticality, expected_interval_s, created_by FROM assets "
                           "WHERE tenant_id = %s AND id = %s", tenant_id, asset_id)[0]
    assert row[:5] == (site_id, unit_id, "P-101", "high", 30) and row[5] is not None

    # the same code, in another case, is taken
    r = await web.post_form("/assets", {**form, "code": "p-101"})
    assert r.status_code == 409 and "Another asset already uses this code." in _field_error(r.text, "code")

    audit = rows(owner_conn, "SELECT action FROM audit_log WHERE tenant_id = %s ORDER BY id", tenant_id)
    assert [a[0] for a in audit] == ["site.create", "unit.create", "asset.create"]

    # edit: move out of the unit, change the name
    r = await web.post_form(f"/assets/{asset_id}/edit", {**form, "unit_id": "", "name": "Charge Pump A"})
    assert r.status_code in (302, 303) and r.headers["location"] == f"/assets/{asset_id}"
    assert "Asset saved." in (await web.get(r.headers["location"])).text
    assert rows(owner_conn, "SELECT name, unit_id FROM assets WHERE id = %s", asset_id)[0] == ("Charge Pump A", None)
    assert rows(owner_conn, "SELECT details->'changed' FROM audit_log WHERE action = 'asset.update'")[0][0] == ["name", "unit_id"]
    edit_page = await web.get(f"/assets/{asset_id}/edit")
    assert edit_page.status_code == 200 and 'value="Charge Pump A"' in edit_page.text


def _field_error(html: str, field: str) -> str:
    m = re.search(rf'id="{field}-error"[^>]*>([^<]+)<', html)
    return m.group(1) if m else ""


async def test_form_validation_messages(web, accounts, db, owner_conn) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=1)
    base = {"site_id": str(ids.site_id), "unit_id": "", "code": "X-1", "name": "Pump X", "asset_type": "pump",
            "criticality": "low", "expected_interval_s": "60"}
    cases = [
        ({"name": "  "}, "name", "Enter a name."),
        ({"code": ""}, "code", "Enter a code."),
        ({"code": "bad code!"}, "code", None),
        ({"site_id": "abc"}, "site_id", "Choose a site from the list."),
        ({"site_id": "987654321"}, "site_id", "Choose a site from the list."),
        ({"unit_id": str(ids.other_unit_id)}, "unit_id", "The unit must belong to the chosen site."),
        ({"unit_id": "x"}, "unit_id", "Choose a unit from the list."),
        ({"criticality": "extreme"}, "criticality", "Choose a criticality: low, medium or high."),
        ({"asset_type": "spaceship"}, "asset_type", "Choose an asset type from the list."),
        ({"expected_interval_s": "0"}, "expected_interval_s", None),
        ({"expected_interval_s": "soon"}, "expected_interval_s", None),
        ({"name": "n" * 201}, "name", None),
    ]
    for change, field, message in cases:
        r = await web.post_form("/assets", {**base, **change})
        assert r.status_code == 422, (change, r.status_code)
        assert f'id="{field}-error"' in r.text, change
        if message:
            assert _field_error(r.text, field) == message, change
    assert rows(owner_conn, "SELECT count(*) FROM assets WHERE tenant_id = %s", tenant_id)[0][0] == 1

    # sites and units
    r = await web.post_form("/assets/sites", {"code": "S", "name": "", "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and 'id="name-error"' in r.text and 'id="timezone-error"' in r.text
    r = await web.post_form("/assets/units", {"site_id": "", "code": "U", "name": "U"})
    assert r.status_code == 422 and 'id="site_id-error"' in r.text
    r = await web.post_form("/assets/sites", {"code": "a-north", "name": "Dup"})  # make_plant's "A-North"
    assert r.status_code == 409


async def test_unit_with_assets_cannot_move_to_another_site(web, accounts, db) -> None:
    tenant_id, _ = await _admin(web, accounts)
    ids = await make_plant(db, tenant_id, assets=1)
    r = await web.post_form(f"/assets/units/{ids.unit_id}/edit",
                            {"site_id": str(ids.other_site_id), "code": "A-U1", "name": "A Unit One"})
    assert r.status_code == 409 and 'data-testid="edit-errors"' in r.text
    r = await web.post_form(f"/assets/units/{ids.other_unit_id}/edit",
                            {"site_id": str(ids.other_site_id), "code": "A-U2", "name": "Renamed unit"})
    assert r.status_code in (302, 303)
    r = await web.post_form(f"/assets/sites/{ids.site_id}/edit", {"code": "A-North", "name": "North, renamed",
                                                                 "timezone": "UTC"})
    assert r.status_code in (302, 303)
    page = (await web.get("/assets/sites")).text
    assert "Renamed unit" in page and "North, renamed" in page


# ----------------------------------------------------------------------------- viewers


async def test_viewer_reads_but_cannot_change(web, accounts, db, owner_conn) -> None:
    tenant_id, _ = await _admin(web, accounts, role="viewer")
    ids = await make_plant(db, tenant_id, assets=1, with_activity=True)
    asset_id = ids.assets["A-P-1"]
    for path in ("/assets", f"/assets/{asset_id}", "/assets/sites", "/alerts", "/work-orders", "/"):
        r = await web.get(path)
        assert r.status_code == 200, path
        for control in ('href="/assets/new"', "/edit\"", 'action="/alerts/', 'action="/work-orders/',
                        'data-testid="raise-alert-form"', 'data-testid="open-wo-form"', 'data-testid="site-form"'):
            assert control not in r.text, (path, control)
    before = rows(owner_conn, "SELECT count(*) FROM assets")[0][0]
    posts = [("/assets", {"site_id": str(ids.site_id), "code": "V-1", "name": "Viewer pump"}),
             (f"/assets/{asset_id}/edit", {"name": "x"}), ("/assets/sites", {"code": "V", "name": "V"}),
             (f"/assets/{asset_id}/alerts", {"severity": "low", "title": "x"}),
             (f"/alerts/{ids.alert_id}/clear", {}), (f"/work-orders/{ids.work_order_id}/status", {"status": "closed"})]
    for path, data in posts:
        assert (await web.post_form(path, data)).status_code == 403, path
    assert (await web.get("/assets/new")).status_code == 403
    assert (await web.api("POST", "/api/assets", json={"site_id": ids.site_id, "code": "V-2", "name": "x"})).status_code == 403
    assert (await web.api("PATCH", f"/api/assets/{asset_id}", json={"name": "x"})).status_code == 403
    assert rows(owner_conn, "SELECT count(*) FROM assets")[0][0] == before
    assert rows(owner_conn, "SELECT status FROM alerts WHERE id = %s", ids.alert_id)[0][0] == "open"


# ----------------------------------------------------------------------------- API


async def test_api_sites_units_assets(web, accounts, owner_conn) -> None:
    tenant_id, _ = await _admin(web, accounts)
    r = await web.api("POST", "/api/sites", json={"code": "AB", "name": "Abqaiq", "name_ar": "بقيق", "timezone": "Asia/Riyadh"})
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["code"] == "AB" and site["unit_count"] == 0 and site["timezone"] == "Asia/Riyadh"
    r = await web.api("POST", "/api/units", json={"site_id": site["id"], "code": "GC", "name": "Gas Compression"})
    assert r.status_code == 201
    unit = r.json()
    r = await web.api("POST", "/api/assets", json={"site_id": site["id"], "unit_id": unit["id"], "code": "K-301",
                                                  "name": "Export Gas Compressor", "asset_type": "compressor",
                                                  "criticality": "high"})
    assert r.status_code == 201, r.text
    asset = r.json()
    assert asset["site"] == {"id": site["id"], "code": "AB", "name": "Abqaiq", "name_ar": "بقيق"}
    assert asset["unit"]["code"] == "GC" and asset["health"]["status"] == "nodata"
    assert asset["expected_interval_s"] == 60 and asset["active_alerts"] == 0

    assert (await web.api("GET", f"/api/assets/{asset['id']}")).json()["code"] == "K-301"
    sites = (await web.api("GET", "/api/sites")).json()["items"]
    assert [(s["code"], s["unit_count"], s["asset_count"]) for s in sites] == [("AB", 1, 1)]
    units = (await web.api("GET", f"/api/units?site_id={site['id']}")).json()["items"]
    assert [(u["code"], u["asset_count"]) for u in units] == [("GC", 1)]

    # PATCH changes only what is sent; moving to another site drops the old site's unit
    r = await web.api("PATCH", f"/api/assets/{asset['id']}", json={"criticality": "medium"})
    assert r.status_code == 200 and r.json()["criticality"] == "medium" and r.json()["unit"]["code"] == "GC"
    other = (await web.api("POST", "/api/sites", json={"code": "RT", "name": "Ras Tanura"})).json()
    r = await web.api("PATCH", f"/api/assets/{asset['id']}", json={"site_id": other["id"]})
    assert r.status_code == 200 and r.json()["site"]["code"] == "RT" and r.json()["unit"] is None
    r = await web.api("PATCH", f"/api/assets/{asset['id']}", json={"unit_id": unit["id"]})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"] == {"unit_id": "The unit must belong to the chosen site."}

    # validation and conflicts
    r = await web.api("POST", "/api/assets", json={"site_id": site["id"], "code": "k-301", "name": "dup"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "code_taken"
    r = await web.api("POST", "/api/assets", json={"site_id": site["id"], "code": "N-1", "name": "",
                                                  "criticality": "extreme"})
    assert r.status_code == 422
    fields = r.json()["error"]["details"]["fields"]
    assert fields == {"name": "Enter a name.", "criticality": "Choose a criticality: low, medium or high."}
    r = await web.api("POST", "/api/assets", json={"site_id": "one", "code": "N-1", "name": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await web.api("POST", "/api/assets", json={"site_id": site["id"], "code": "N-1", "name": "x", "colour": "red"})
    assert r.status_code == 422
    r = await web.api("POST", "/api/sites", json={"code": "", "name": "x"})
    assert r.status_code == 422 and "code" in r.json()["error"]["details"]["fields"]
    assert (await web.api("GET", "/api/assets/987654321")).status_code == 404
    assert (await web.api("GET", "/api/assets/987654321")).json()["error"]["code"] == "asset_not_found"
    assert (await web.api("PATCH", "/api/assets/987654321", json={"name": "x"})).status_code == 404
    assert (await web.api("GET", "/api/units?site_id=987654321")).status_code == 400


# ----------------------------------------------------------------------------- demo seed


async def test_demo_seed_is_idempotent(db, owner_conn, accounts) -> None:
    tenant_id, _ = await accounts.tenant()
    assert await seed_demo_assets(db, tenant_id) == len(ASSETS)
    counts = lambda: rows(owner_conn, "SELECT (SELECT count(*) FROM sites WHERE tenant_id = %s), "  # noqa: E731
                                      "(SELECT count(*) FROM units WHERE tenant_id = %s), "
                                      "(SELECT count(*) FROM assets WHERE tenant_id = %s)", tenant_id, tenant_id, tenant_id)[0]
    first = counts()
    assert first == (len(SITES), sum(len(s.units) for s in SITES), len(ASSETS))
    owner_conn.execute("UPDATE assets SET name = 'Renamed by a user' WHERE code = 'P-101'")
    assert await seed_demo_assets(db, tenant_id) == 0
    assert counts() == first
    assert rows(owner_conn, "SELECT name FROM assets WHERE code = 'P-101'")[0][0] == "Renamed by a user"
    k201 = rows(owner_conn, """SELECT a.name_ar, s.code, u.code, a.asset_type, a.criticality FROM assets a
                               JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
                               JOIN units u ON u.tenant_id = a.tenant_id AND u.id = a.unit_id
                               WHERE a.code = 'K-201'""")[0]
    assert k201 == ("ضاغط أعلى المثبت", "Abqaiq", "Stabilization", "compressor", "high")
