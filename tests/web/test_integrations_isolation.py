"""Tenant isolation, from outside: an admin of tenant A uses every integrations route with tenant B's
ids (in the path, in form and JSON fields, in query strings) and gets 404/422 and none of B's data;
B's rows are the same afterwards."""

from __future__ import annotations

import pytest_asyncio

from optria.shell.app import create_app
from tests.web.integrations_setup import create, integ_settings, same_loop_web, tenant_with_plant
from tests.web.routes_walk import walk

SECRET = "Bravo"  # every name and code of tenant B contains it
TABLES = ("integrations", "integration_action_log", "signals", "external_signal_mappings", "audit_log")


@pytest_asyncio.fixture
async def app(db, opcua_sim, pi_sim, tmp_path):
    return create_app(integ_settings(tmp_path, opcua=opcua_sim, pi=pi_sim), db)


def snapshot(owner_conn, tenant_id) -> dict[str, list]:
    return {t: owner_conn.execute(f"SELECT * FROM {t} WHERE tenant_id = %s ORDER BY 1, 2", [tenant_id]).fetchall()
            for t in TABLES}


@pytest_asyncio.fixture
async def world(app, db, accounts):
    a = await tenant_with_plant(db, accounts, tag="Alpha")
    b = await tenant_with_plant(db, accounts, tag=SECRET)
    async with same_loop_web(app) as wb:
        await wb.login(b.admin)
        b_int = await create(wb, "opcua", f"{SECRET} OPC-UA", {"auth_type": "anonymous"})
        r = await wb.api("POST", f"/api/integrations/{b_int['id']}/mappings", json={
            "asset_id": b.asset(1), "external_id": "ns=2;s=RasTanura.CrudeUnit.P-101.Flow", "name": f"{SECRET} flow"})
        b_map = r.json()
    async with same_loop_web(app) as wa:
        await wa.login(a.admin)
        a_int = await create(wa, "opcua", "Alpha OPC-UA", {"auth_type": "anonymous"})
        r = await wa.api("POST", f"/api/integrations/{a_int['id']}/mappings", json={
            "asset_id": a.asset(1), "external_id": "ns=2;s=RasTanura.CrudeUnit.P-101.Power"})
        yield wa, a, a_int["id"], r.json()["id"], b, b_int["id"], b_map


async def test_every_route_with_other_tenant_ids_is_not_found(world, owner_conn, app) -> None:
    web, a, a_iid, a_mid, b, b_iid, b_map = world
    b_mid, b_sid = b_map["id"], b_map["signal"]["id"]
    before = snapshot(owner_conn, b.tenant_id)
    pages = [f"/integrations/{b_iid}", f"/integrations/{b_iid}/edit", f"/integrations/{b_iid}/map",
             f"/mappings/{b_mid}/edit"]
    for path in pages:
        r = await web.get(path)
        assert r.status_code == 404 and SECRET not in r.text, path
    forms = [(f"/integrations/{b_iid}/edit", {"name": "stolen", "kind": "opcua"}),
             (f"/integrations/{b_iid}/test", {}), (f"/integrations/{b_iid}/demo-stream", {"on": "1"}),
             (f"/integrations/{b_iid}/map", {"sel": '{"id": "ns=2;s=X"}', "asset_id": str(a.asset(1))}),
             (f"/integrations/{b_iid}/import", {"mode": "apply", "csv_text": "external_id,asset_code\nns=2;s=X,A\n"}),
             (f"/mappings/{b_mid}/edit", {"asset_id": str(a.asset(1)), "metric_role": "flow"}),
             (f"/mappings/{b_mid}/delete", {})]
    for path, data in forms:
        r = await web.post_form(path, data)
        assert r.status_code == 404 and SECRET not in r.text, (path, r.status_code)
    api = [("GET", f"/api/integrations/{b_iid}", None), ("PATCH", f"/api/integrations/{b_iid}", {"name": "x"}),
           ("POST", f"/api/integrations/{b_iid}/test", None), ("GET", f"/api/integrations/{b_iid}/browse", None),
           ("GET", f"/api/integrations/{b_iid}/log", None), ("GET", f"/api/integrations/{b_iid}/mappings", None),
           ("POST", f"/api/integrations/{b_iid}/mappings", {"asset_id": a.asset(1), "external_id": "ns=2;s=X"}),
           ("POST", f"/api/integrations/{b_iid}/mappings/bulk", {"asset_id": a.asset(1), "external_ids": ["ns=2;s=X"]}),
           ("POST", f"/api/integrations/{b_iid}/mappings/bulk", {"asset_id": a.asset(1), "folder": "i=85"}),
           ("GET", f"/api/integrations/{b_iid}/mappings.csv", None),
           ("POST", f"/api/integrations/{b_iid}/mappings/import?mode=apply", None),
           ("PATCH", f"/api/mappings/{b_mid}", {"metric_role": "power"}), ("DELETE", f"/api/mappings/{b_mid}", None)]
    for method, path, body in api:
        r = await web.api(method, path, json=body)
        assert r.status_code == 404 and SECRET not in r.text, (method, path, r.status_code, r.text)
    # B's ids as referenced fields of A's own integration and mapping
    refs = [("POST", f"/api/integrations/{a_iid}/mappings", {"asset_id": b.asset(1), "external_id": "ns=2;s=Y"}),
            ("POST", f"/api/integrations/{a_iid}/mappings", {"asset_id": a.asset(1), "signal_id": b_sid}),
            ("POST", f"/api/integrations/{a_iid}/mappings/bulk", {"asset_id": b.asset(1), "external_ids": ["ns=2;s=Y"]}),
            ("PATCH", f"/api/mappings/{a_mid}", {"asset_id": b.asset(1)})]
    for method, path, body in refs:
        r = await web.api(method, path, json=body)
        assert r.status_code == 422 and SECRET not in r.text, (path, body, r.text)
    r = await web.post_form(f"/integrations/{a_iid}/map", {"sel": '{"id": "ns=2;s=Z"}', "asset_id": str(b.asset(1))})
    assert r.status_code == 422 and SECRET not in r.text
    r = await web.post_form(f"/mappings/{a_mid}/edit", {"asset_id": str(b.asset(1)), "metric_role": "power",
                                                        "scale": "1", "offset": "0", "expected_interval_s": "60"})
    assert r.status_code == 422
    b_code = owner_conn.execute("SELECT code FROM assets WHERE id = %s", [b.asset(1)]).fetchone()[0]
    r = await web.api("POST", f"/api/integrations/{a_iid}/mappings/import?mode=apply",
                      json=None, content=f"external_id,asset_code\nns=2;s=Q,{b_code}\n".encode(),
                      headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "asset_code" in r.text
    # query strings and lists
    r = await web.api("GET", f"/api/integrations/{a_iid}/mappings?asset_id={b.asset(1)}")
    assert r.status_code == 200 and r.json()["total"] == 0
    listed = await web.api("GET", "/api/integrations/")
    assert [i["id"] for i in listed.json()["items"]] == [a_iid] and SECRET not in listed.text
    for path in ("/integrations", "/", f"/integrations/{a_iid}/map", f"/assets/{a.asset(1)}"):
        r = await web.get(path)
        assert r.status_code == 200 and SECRET not in r.text, path
    assert snapshot(owner_conn, b.tenant_id) == before
    # every integrations route of the app was tried above (so a new one cannot slip past this test)
    ours = {f"{r.method} {r.path}" for r in walk(app) if "/integrations" in r.path or "/mappings" in r.path}
    tried = {"GET /integrations", "GET /integrations/new", "POST /integrations", "GET /api/integrations",
             "POST /api/integrations", "POST /integrations/{integration_id:int}/ai-run"}
    tried |= {f"GET {p}" for p in ("/integrations/{integration_id:int}", "/integrations/{integration_id:int}/edit",
                                   "/integrations/{integration_id:int}/map", "/mappings/{mapping_id:int}/edit")}
    tried |= {f"POST /integrations/{{integration_id:int}}/{p}" for p in ("edit", "test", "demo-stream", "map", "import")}
    tried |= {"POST /mappings/{mapping_id:int}/edit", "POST /mappings/{mapping_id:int}/delete"}
    tried |= {f"{m} /api/integrations/{{integration_id:int}}{p}" for m, p in (
        ("GET", ""), ("PATCH", ""), ("POST", "/test"), ("GET", "/browse"), ("GET", "/log"), ("GET", "/mappings"),
        ("POST", "/mappings"), ("POST", "/mappings/bulk"), ("GET", "/mappings.csv"), ("POST", "/mappings/import"))}
    tried |= {"PATCH /api/mappings/{mapping_id:int}", "DELETE /api/mappings/{mapping_id:int}"}
    tried = {t.replace(":int", "") for t in tried}
    assert ours <= tried, ours - tried
