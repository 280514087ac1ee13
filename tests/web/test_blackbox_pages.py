"""Black Box pages and API through HTTP: overview, alarm health, incident timeline, actions, exports, explorer, RBAC."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from optria.blackbox.grouping import Grouper
from optria.blackbox.collectors import AlertCollector
from tests.blackbox.arrange import add_event, add_signal, critical, make_plant, minutes, now, raise_alert, rows
from tests.fix_web import new_web


async def arrange(accounts, owner_conn, db):
    """A tenant with one incident on its first asset (trigger, lead-up, an operator action) and loose events."""
    tenant = await accounts.tenant()
    p = make_plant(owner_conn, tenant[0])
    a = p.assets[0]
    add_signal(owner_conn, p, a, "Vibration", warn_high=7.1, crit_high=11.0)   # the integration feeds this asset
    t = now() - minutes(40)
    add_event(owner_conn, p.tenant_id, asset_id=a, site_id=p.site_id, event_time=t - minutes(5), summary="Vibration 8 > 7.1",
              severity="medium", category="limit", source_system="limits", source_type="limit_breach",
              alarm_key="limit:1:warn_high", payload={"value": 8.0, "secret_ish": "sensor-raw-42"})
    critical(owner_conn, p.tenant_id, a, t, "Vibration 14.2 > 11", site_id=p.site_id, payload={"value": 14.2})
    add_event(owner_conn, p.tenant_id, asset_id=a, site_id=p.site_id, event_time=t + minutes(2), summary="Alarm seen",
              category="operator_action", source_type="alert_acknowledged", actor="khalid.operator", severity="info")
    add_event(owner_conn, p.tenant_id, asset_id=None, site_id=p.site_id, event_time=t + minutes(3),
              summary="Site power dip", category="process", source_system="sql", source_type="sql_event")
    add_event(owner_conn, p.tenant_id, asset_id=None, integration_id=p.integration_id, event_time=t + minutes(4),
              summary="OPC link lost", category="integration", source_system="ingest",
              source_type="integration_disconnected", severity="high")
    await Grouper(db).run_once()
    incident_id = rows(owner_conn, "SELECT id FROM incidents WHERE tenant_id = %s", p.tenant_id)[0][0]
    return tenant, p, incident_id


async def test_overview_counters_incidents_and_asset_drill_down(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        r = await web.get("/blackbox")
        assert r.status_code == 200
        assert 'data-counter="events_24h"' in r.text and 'data-testid="alarm-health"' in r.text
        assert f'data-incident-id="{incident_id}"' in r.text and "Vibration 14.2 &gt; 11" in r.text
        r = await web.get(f"/blackbox?asset_id={p.assets[0]}")
        assert r.status_code == 200 and 'data-testid="asset-focus"' in r.text and f"/digital-twin/assets/{p.assets[0]}" in r.text
        r = await web.get(f"/blackbox?asset_id={p.assets[1]}")   # the other asset: no incidents
        assert 'data-testid="incidents-empty"' in r.text
        r = await web.get("/blackbox?status=resolved")
        assert f'data-incident-id="{incident_id}"' not in r.text
        r = await web.get("/blackbox?status=bogus&from=yesterday&page=x")
        assert r.status_code == 200 and 'data-testid="filter-notices"' in r.text
        r = await web.get(f"/blackbox?site_id={p.site_id}&severity=critical&from=2000-01-01&to=2999-01-01")
        assert f'data-incident-id="{incident_id}"' in r.text
        r = await web.get("/blackbox?hours=168")
        assert r.status_code == 200


async def test_incident_timeline_details_by_role(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    engineer = await accounts.user("engineer", tenant)
    viewer = await accounts.user("viewer", tenant)
    async with new_web(app) as web:
        await web.login(engineer)
        r = await web.get(f"/blackbox/incidents/{incident_id}")
        assert r.status_code == 200
        timeline = r.text[r.text.index('data-testid="timeline"'):]
        order = [timeline.index(s) for s in ("Vibration 8 &gt; 7.1", "Vibration 14.2 &gt; 11", "Alarm seen", "OPC link lost")]
        assert order == sorted(order)                               # in time order
        assert "sensor-raw-42" in r.text and "khalid.operator" in r.text   # details: payloads and actors
        assert 'data-testid="incident-actions"' not in r.text       # engineers read, but do not act
        assert 'data-testid="trends"' in r.text
    async with new_web(app) as web:
        await web.login(viewer)
        r = await web.get(f"/blackbox/incidents/{incident_id}")
        assert r.status_code == 200 and "Vibration 14.2 &gt; 11" in r.text
        assert "sensor-raw-42" not in r.text and "khalid.operator" not in r.text and 'data-testid="payload"' not in r.text
        assert 'data-testid="incident-actions"' not in r.text
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/acknowledge", {"note": "x"})
        assert r.status_code == 403
        for path in (f"/blackbox/incidents/{incident_id}/export.csv", f"/blackbox/incidents/{incident_id}/export.json"):
            r = await web.get(path)
            assert r.status_code == 200 and "sensor-raw-42" not in r.text and "khalid.operator" not in r.text
        header = next(csv.reader(io.StringIO(r.text if False else (await web.get(
            f"/blackbox/incidents/{incident_id}/export.csv")).text.lstrip("\ufeff"))))
        assert "payload" not in header and "actor" not in header
        r = await web.api("GET", f"/api/blackbox/incidents/{incident_id}")
        assert r.status_code == 200 and all("payload" not in t for t in r.json()["timeline"])
        r = await web.api("GET", "/api/blackbox/events")
        assert r.status_code == 200 and all(e["payload"] is None and e["actor"] is None for e in r.json()["items"])


async def test_exports_for_detail_roles(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        r = await web.get(f"/blackbox/incidents/{incident_id}/export.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert f'filename="incident-{incident_id}.csv"' in r.headers["content-disposition"]
        table = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert [row["summary"] for row in table] == ["Vibration 8 > 7.1", "Vibration 14.2 > 11", "Alarm seen", "OPC link lost"]
        assert table[1]["relation"] == "trigger" and "sensor-raw-42" in table[0]["payload"]
        assert table[2]["actor"] == "khalid.operator"
        r = await web.get(f"/blackbox/incidents/{incident_id}/export.json")
        body = r.json()
        assert body["incident"]["id"] == incident_id and body["incident"]["severity"] == "critical"
        assert [e["relation"] for e in body["events"]] == ["related", "trigger", "action", "related"]


async def test_acknowledge_and_resolve(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    reliability = await accounts.user("reliability_engineer", tenant)
    async with new_web(app) as web:
        await web.login(reliability)
        r = await web.get(f"/blackbox/incidents/{incident_id}")
        assert 'data-testid="acknowledge-form"' in r.text and 'data-testid="resolve-form"' in r.text
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/acknowledge", {"note": "On it"})
        assert r.status_code in (302, 303) and r.headers["location"] == f"/blackbox/incidents/{incident_id}"
        assert 'class="alert alert-success"' in (await web.get(r.headers["location"])).text
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/acknowledge", {"note": ""})
        assert r.status_code == 409
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/resolve", {"note": "   "})
        assert r.status_code == 422 and 'id="resolve-error"' in r.text
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/resolve", {"note": "x" * 2001})
        assert r.status_code == 422
        r = await web.post_form(f"/blackbox/incidents/{incident_id}/resolve", {"note": "Bearing replaced; vibration normal."})
        assert r.status_code in (302, 303)
        r = await web.get(r.headers["location"])
        assert 'data-testid="resolution"' in r.text and "Bearing replaced" in r.text
        assert 'class="alert alert-success"' in r.text
        assert 'data-testid="incident-actions"' not in r.text
        r = await web.api("POST", f"/api/blackbox/incidents/{incident_id}/resolve", json={"note": "again"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    status, ack_by, res_by, summary = rows(owner_conn, "SELECT status, acknowledged_by_name, resolved_by_name, summary "
                                                      "FROM incidents WHERE id = %s", incident_id)[0]
    assert (status, ack_by, res_by) == ("resolved", reliability.username, reliability.username)
    actions = rows(owner_conn, "SELECT e.source_type, e.actor FROM incident_events ie JOIN industrial_events e "
                               "ON e.tenant_id = ie.tenant_id AND e.id = ie.event_id WHERE ie.incident_id = %s "
                               "AND ie.relation = 'action' AND e.source_system = 'blackbox' ORDER BY e.id", incident_id)
    assert actions == [("incident_acknowledged", reliability.username), ("incident_resolved", reliability.username)]
    audit = rows(owner_conn, "SELECT action FROM audit_log WHERE target_type = 'incident' AND target_id = %s ORDER BY id",
                 str(incident_id))
    assert audit == [("incident.acknowledge",), ("incident.resolve",)]
    # the grouping job does not attach the action events a second time
    await Grouper(db).run_once()
    assert rows(owner_conn, "SELECT count(*) FROM incident_events WHERE incident_id = %s AND relation = 'action'",
                incident_id)[0][0] == 3


async def test_api_acknowledge_and_lists(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        r = await web.api("GET", "/api/blackbox/incidents?status=active")
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [incident_id]
        r = await web.api("GET", "/api/blackbox/incidents?severity=purple")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_filter"
        r = await web.api("POST", f"/api/blackbox/incidents/{incident_id}/acknowledge", json={"note": "seen"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert any(t["source_type"] == "incident_acknowledged" for t in r.json()["timeline"])
        r = await web.api("POST", f"/api/blackbox/incidents/{incident_id}/resolve", json={})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_note"
        r = await web.api("POST", f"/api/blackbox/incidents/{incident_id}/resolve", json={"bogus": 1})
        assert r.status_code in (400, 422)
        r = await web.api("GET", "/api/blackbox/events?no_asset=1")
        summaries = {e["summary"] for e in r.json()["items"]}
        assert summaries == {"Site power dip", "OPC link lost"}
        r = await web.api("GET", "/api/blackbox/events?severity=critical")
        assert [e["summary"] for e in r.json()["items"]] == ["Vibration 14.2 > 11"]
        assert r.json()["items"][0]["payload"] == {"value": 14.2}
        event_id = r.json()["items"][0]["id"]
        r = await web.api("GET", f"/api/blackbox/events/{event_id}")
        assert r.status_code == 200 and r.json()["severity"] == "critical"
        r = await web.api("GET", "/api/blackbox/alarm-health?hours=24")
        assert r.status_code == 200 and r.json()["total"] == 2
        r = await web.api("GET", "/api/blackbox/alarm-health?hours=5")
        assert r.status_code == 400


async def test_event_explorer(app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    add_event(owner_conn, p.tenant_id, asset_id=p.assets[1], event_time=now() + timedelta(days=3), summary="Clock ahead",
              time_flag="future")
    viewer = await accounts.user("viewer", tenant)
    async with new_web(app) as web:
        await web.login(viewer)
        r = await web.get("/blackbox/events")
        assert r.status_code == 200 and r.text.count("data-event-id=") == 6
        assert "Site power dip" in r.text and "OPC link lost" in r.text and 'data-time-flag="future"' in r.text
        r = await web.get("/blackbox/events?no_asset=1")
        assert r.text.count("data-event-id=") == 2
        assert f"/blackbox/events?site_id={p.site_id}" in r.text and f"/blackbox/events?integration_id={p.integration_id}" in r.text
        r = await web.get(f"/blackbox/events?integration_id={p.integration_id}")
        assert r.text.count("data-event-id=") == 1
        r = await web.get("/blackbox/events?flagged=1")
        assert r.text.count("data-event-id=") == 1 and "Clock ahead" in r.text
        r = await web.get("/blackbox/events?q=power")
        assert r.text.count("data-event-id=") == 1
        r = await web.get("/blackbox/events?q=%25")   # a literal percent sign matches nothing here
        assert 'data-testid="events-empty"' in r.text
        r = await web.get("/blackbox/events?category=nope&severity=x")
        assert 'data-testid="filter-notices"' in r.text and r.text.count("data-event-id=") == 6
        r = await web.get("/blackbox/events?alarm_key=limit:1:warn_high")
        assert r.text.count("data-event-id=") == 1 and 'data-testid="alarm-filter"' in r.text
        event_id = rows(owner_conn, "SELECT id FROM industrial_events WHERE summary = 'Vibration 8 > 7.1'")[0][0]
        r = await web.get(f"/blackbox/events/{event_id}")
        assert r.status_code == 200 and f"/blackbox/incidents/{incident_id}" in r.text and "sensor-raw-42" not in r.text
        r = await web.get("/blackbox/events/987654321")
        assert r.status_code == 404


async def test_alarm_health_figures(app, accounts, owner_conn, db) -> None:
    tenant = await accounts.tenant()
    p = make_plant(owner_conn, tenant[0])
    a = p.assets[0]
    t = now() - minutes(90)
    t = t.replace(minute=t.minute - t.minute % 10, second=0, microsecond=0) + timedelta(seconds=5)  # one 10-min interval
    for i in range(12):   # a flood: 12 annunciations in one 10-minute interval, 4 of them chattering
        add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + timedelta(seconds=10 * i) if i < 4 else t + minutes(1 + i * 0.5),
                  summary="Seal leak" if i < 4 else f"Alarm {i}", alarm_key="k:seal" if i < 4 else f"k:{i}")
    raise_alert(owner_conn, p.tenant_id, a, "high", "Cooling fan stuck", at=now() - timedelta(hours=30))
    await AlertCollector(db).run_once()
    sid = add_signal(owner_conn, p, a, "Level", crit_high=5.0)
    owner_conn.execute("INSERT INTO blackbox_signal_state (tenant_id, signal_id, limit_state, limit_since) "
                       "VALUES (%s, %s, 'crit_high', now() - interval '26 hours')", [p.tenant_id, sid])
    viewer = await accounts.user("viewer", tenant)
    async with new_web(app) as web:
        await web.login(viewer)
        r = await web.get("/api/blackbox/alarm-health", headers={"accept": "application/json"})
        h = r.json()
        assert h["total"] == 12 and h["peak_per_10_min"] >= 11 and h["flood_intervals"] >= 1
        assert h["status"] in ("warning", "critical")
        assert [c["alarm_key"] for c in h["chattering"]] == ["k:seal"] and h["chattering"][0]["max_per_minute"] == 4
        assert h["top"][0]["alarm_key"] == "k:seal" and h["top"][0]["occurrences"] == 4 and len(h["top"]) == 9
        standing = {s["summary"] for s in h["standing"]}
        assert standing == {"Cooling fan stuck", "Level"}
        r = await web.get(f"/blackbox?asset_id={a}")
        assert 'data-testid="chattering"' in r.text and 'data-testid="standing"' in r.text
        assert "/blackbox/events?alarm_key=k%3Aseal" in r.text


@pytest.mark.parametrize("role", ["tenant_admin", "optimization_engineer", "reliability_engineer", "engineer", "viewer"])
async def test_every_role_reads_the_black_box(role, app, accounts, owner_conn, db) -> None:
    tenant, p, incident_id = await arrange(accounts, owner_conn, db)
    user = await accounts.user(role, tenant)
    details = role != "viewer"
    acts = role in ("tenant_admin", "reliability_engineer")
    async with new_web(app) as web:
        await web.login(user)
        for path in ("/blackbox", "/blackbox/events", f"/blackbox/incidents/{incident_id}"):
            r = await web.get(path)
            assert r.status_code == 200, path
        r = await web.get(f"/blackbox/incidents/{incident_id}")
        assert ("sensor-raw-42" in r.text) is details
        assert ('data-testid="incident-actions"' in r.text) is acts
        r = await web.api("POST", f"/api/blackbox/incidents/{incident_id}/acknowledge", json={})
        assert r.status_code == (200 if acts else 403)
