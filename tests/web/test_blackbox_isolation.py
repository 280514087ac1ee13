"""Tenant isolation of every Black Box route: tenant A's users try tenant B's ids everywhere and learn nothing."""

from __future__ import annotations

from optria.blackbox.grouping import Grouper
from tests.blackbox.arrange import add_event, critical, make_plant, minutes, now, rows
from tests.fix_web import new_web

SECRET_TITLE = "B-ONLY incident title"
SECRET_EVENT = "B-ONLY event summary"


async def test_tenant_a_cannot_reach_tenant_b(app, accounts, owner_conn, db) -> None:
    tenant_a = await accounts.tenant()
    tenant_b = await accounts.tenant()
    pa = make_plant(owner_conn, tenant_a[0], tag="A")
    pb = make_plant(owner_conn, tenant_b[0], tag="B")
    t = now() - minutes(20)
    critical(owner_conn, pa.tenant_id, pa.assets[0], t, "A incident")
    critical(owner_conn, pb.tenant_id, pb.assets[0], t, SECRET_TITLE, payload={"b": "private"})
    b_event = add_event(owner_conn, pb.tenant_id, asset_id=pb.assets[0], site_id=pb.site_id,
                        integration_id=pb.integration_id, event_time=t + minutes(1), summary=SECRET_EVENT)
    await Grouper(db).run_once()
    b_incident = rows(owner_conn, "SELECT id FROM incidents WHERE tenant_id = %s", pb.tenant_id)[0][0]
    admin_a = await accounts.user("tenant_admin", tenant_a)

    def clean(r) -> None:
        assert SECRET_TITLE not in r.text and SECRET_EVENT not in r.text and "private" not in r.text

    async with new_web(app) as web:
        await web.login(admin_a)
        for path in (f"/blackbox/incidents/{b_incident}", f"/blackbox/incidents/{b_incident}/export.csv",
                     f"/blackbox/incidents/{b_incident}/export.json", f"/blackbox/events/{b_event}",
                     f"/blackbox?asset_id={pb.assets[0]}", f"/blackbox?site_id={pb.site_id}",
                     f"/blackbox/events?asset_id={pb.assets[0]}", f"/blackbox/events?site_id={pb.site_id}",
                     f"/blackbox/events?integration_id={pb.integration_id}",
                     f"/api/blackbox/incidents/{b_incident}", f"/api/blackbox/events/{b_event}",
                     f"/api/blackbox/incidents?asset_id={pb.assets[0]}", f"/api/blackbox/events?site_id={pb.site_id}",
                     f"/api/blackbox/alarm-health?asset_id={pb.assets[0]}"):
            r = await web.get(path)
            assert r.status_code == 404, path
            clean(r)
        for action in ("acknowledge", "resolve"):
            r = await web.post_form(f"/blackbox/incidents/{b_incident}/{action}", {"note": "not mine"})
            assert r.status_code == 404, action
            clean(r)
            r = await web.api("POST", f"/api/blackbox/incidents/{b_incident}/{action}", json={"note": "not mine"})
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        # own lists never show the other tenant's rows
        for path in ("/blackbox", "/blackbox/events", "/api/blackbox/incidents", "/api/blackbox/events",
                     "/api/blackbox/alarm-health", "/blackbox?status=active"):
            r = await web.get(path)
            assert r.status_code == 200, path
            clean(r)
        r = await web.get("/blackbox")
        assert "A incident" in r.text
    assert rows(owner_conn, "SELECT status FROM incidents WHERE id = %s", b_incident) == [("open",)]
    assert rows(owner_conn, "SELECT count(*) FROM audit_log WHERE target_type = 'incident'") == [(0,)]
