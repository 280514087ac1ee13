"""Signal mappings through the API: CRUD with validated limits and roles, bulk map (tags, an OPC-UA
folder, a PI name filter), CSV export and import (preview, apply, all or nothing), latest values
on the mapping list, the asset page and the dashboard."""

from __future__ import annotations

import pytest_asyncio

from tests.fix_pi import PI_PASSWORD, PI_USER
from tests.web.integrations_setup import app, web  # noqa: F401  (fixtures: the app on the simulators)
from tests.web.integrations_setup import create, rows, tenant_with_plant

P101 = "ns=2;s=RasTanura.CrudeUnit.P-101"


@pytest_asyncio.fixture
async def ctx(web, db, accounts):
    tenant = await tenant_with_plant(db, accounts)
    await web.login(tenant.admin)
    integration = await create(web, "opcua", "Mapped OPC-UA")
    return tenant, integration["id"]


def count(owner_conn, table: str) -> int:
    return rows(owner_conn, f"SELECT count(*) FROM {table}")[0][0]


async def test_mapping_crud_with_latest_value(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    base = f"/api/integrations/{iid}/mappings"
    r = await web.api("POST", base, json={"asset_id": tenant.asset(1), "external_id": f"{P101}.Vibration",
                                          "name": "P-101 Vibration", "eng_unit": "mm/s", "warn_high": 7.1,
                                          "crit_high": 11})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["metric_role"] == "vibration" and m["unit"] == "mm/s" and m["latest"] is None
    assert m["signal"]["external_id"] == f"{P101}.Vibration" and m["asset"]["id"] == tenant.asset(1)
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "external_id": f"{P101}.Vibration"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_mapped"
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "signal_id": m["signal"]["id"]})
    assert r.status_code == 409
    owner_conn.execute("INSERT INTO signal_latest (tenant_id, signal_id, time, value, quality) VALUES "
                       "(%s, %s, now(), 4.0, 1)", [tenant.tenant_id, m["signal"]["id"]])
    r = await web.api("PATCH", f"/api/mappings/{m['id']}", json={"scale": 2.0, "offset": 1.0})
    assert r.status_code == 200 and r.json()["latest"]["value"] == 9.0 and r.json()["latest"]["raw_value"] == 4.0
    assert r.json()["latest"]["quality"] == "questionable"
    listed = (await web.api("GET", base)).json()
    assert listed["total"] == 1 and listed["items"][0]["latest"]["value"] == 9.0
    assert (await web.api("GET", base + f"?asset_id={tenant.asset(2)}")).json()["total"] == 0
    assert (await web.api("GET", base + "?q=vibration")).json()["total"] == 1
    assert (await web.api("GET", base + "?asset_id=x")).status_code == 400
    r = await web.api("DELETE", f"/api/mappings/{m['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": m["id"]}
    assert (await web.api("DELETE", f"/api/mappings/{m['id']}")).status_code == 404
    assert count(owner_conn, "signals") == 1  # the signal (and its history) stays
    log = (await web.api("GET", f"/api/integrations/{iid}/log")).json()["items"]
    assert [e["action"] for e in log][:3] == ["mapping_delete", "mapping_update", "mapping_create"]


async def test_limits_roles_and_numbers_are_validated_and_nothing_written(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    base = f"/api/integrations/{iid}/mappings"
    bad = [
        ({"warn_low": 5, "warn_high": 1}, "warn_low"),
        ({"crit_low": 5, "crit_high": 1}, "crit_low"),
        ({"warn_high": 10, "crit_high": 5}, "crit_high"),
        ({"metric_role": "smell"}, "metric_role"),
        ({"scale": 0}, "scale"),
        ({"expected_interval_s": 0}, "expected_interval_s"),
        ({"unit": "x" * 41}, "unit"),
    ]
    for extra, field in bad:
        r = await web.api("POST", base, json={"asset_id": tenant.asset(1), "external_id": f"{P101}.Flow", **extra})
        assert r.status_code == 422, (extra, r.text)
        assert field in r.json()["error"]["details"]["fields"], (extra, r.text)
    r = await web.api("POST", base, json={"asset_id": tenant.asset(1), "external_id": "not a node id"})
    assert r.status_code == 422 and "external_id" in r.json()["error"]["details"]["fields"]
    r = await web.api("POST", base, json={"asset_id": tenant.asset(1), "external_id": f"{P101}.Flow", "warn_high": "hot"})
    assert r.status_code == 422
    assert count(owner_conn, "external_signal_mappings") == 0 and count(owner_conn, "signals") == 0
    ok = (await web.api("POST", base, json={"asset_id": tenant.asset(1), "external_id": f"{P101}.Flow"})).json()
    r = await web.api("PATCH", f"/api/mappings/{ok['id']}", json={"warn_low": 9, "warn_high": 3})
    assert r.status_code == 422
    r = await web.api("PATCH", f"/api/mappings/{ok['id']}", json={"metric_role": "smell"})
    assert r.status_code == 422
    assert rows(owner_conn, "SELECT metric_role, warn_low FROM external_signal_mappings") == [("flow", None)]


async def test_bulk_map_items_folder_and_skips(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    base = f"/api/integrations/{iid}/mappings/bulk"
    r = await web.api("POST", base, json={"asset_id": tenant.asset(1), "folder": P101})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 6 and r.json()["skipped"] == []
    roles = dict(rows(owner_conn, "SELECT s.name, m.metric_role FROM external_signal_mappings m "
                                  "JOIN signals s ON s.id = m.signal_id"))
    assert roles == {"Temperature": "temperature", "Pressure": "pressure", "Vibration": "vibration", "Flow": "flow",
                     "Power": "power", "Running": "running"}
    units = dict(rows(owner_conn, "SELECT s.name, m.unit FROM external_signal_mappings m JOIN signals s ON s.id = m.signal_id"))
    assert units["Vibration"] == "mm/s"
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "external_ids": [f"{P101}.Flow",
                                                                                       "ns=2;s=Other.Tag"]})
    assert r.json()["created"] == 1 and r.json()["skipped"] == [{"external_id": f"{P101}.Flow",
                                                                  "reason": "already mapped"}]
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "items": [{"external_id": f"{P101}.Flow"}],
                                          "metric_role": "flow", "warn_high": 400, "replace": True})
    assert r.json()["updated"] == 1
    assert rows(owner_conn, "SELECT m.asset_id, m.warn_high FROM external_signal_mappings m JOIN signals s "
                            "ON s.id = m.signal_id WHERE s.external_id = %s", f"{P101}.Flow") == [(tenant.asset(2), 400.0)]
    before = count(owner_conn, "external_signal_mappings")
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "external_ids": ["ns=2;s=A.B", "bad id"]})
    assert r.status_code == 422 and count(owner_conn, "external_signal_mappings") == before
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "external_ids": ["ns=2;s=A.C"], "warn_high": 1})
    assert r.status_code == 422 and "metric_role" in r.json()["error"]["details"]["fields"]
    r = await web.api("POST", base, json={"asset_id": tenant.asset(2), "folder": "ns=2;s=No.Such.Folder"})
    assert r.status_code == 404 and count(owner_conn, "external_signal_mappings") == before


async def test_bulk_map_pi_name_filter(web, ctx, owner_conn) -> None:
    tenant, _ = ctx
    pi = await create(web, "pi", "PI bulk", {"username": PI_USER}, PI_PASSWORD)
    r = await web.api("POST", f"/api/integrations/{pi['id']}/mappings/bulk",
                      json={"asset_id": tenant.asset(3), "name_filter": "Abqaiq.Stabilization.K-201.*"})
    assert r.status_code == 200 and r.json()["created"] == 5, r.text
    ids = rows(owner_conn, "SELECT external_id FROM signals WHERE integration_id = %s", pi["id"])
    assert all(e.startswith("F1DP") for (e,) in ids)


async def test_csv_export_then_import_round_trip(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    await web.api("POST", f"/api/integrations/{iid}/mappings/bulk", json={"asset_id": tenant.asset(1), "folder": P101})
    await web.api("POST", f"/api/integrations/{iid}/mappings", json={  # a name a spreadsheet would run
        "asset_id": tenant.asset(2), "external_id": "ns=2;s=Formula", "name": "=SUM(A1)", "metric_role": "other"})
    r = await web.api("GET", f"/api/integrations/{iid}/mappings.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("external_id,signal_name,path,asset_code,metric_role") and len(lines) == 8
    assert "'=SUM(A1)" in text
    report = await web.api("POST", f"/api/integrations/{iid}/mappings/import?mode=preview", content=text.encode(),
                           headers={"content-type": "text/csv"})
    assert report.status_code == 200, report.text
    assert report.json() == report.json() | {"total_rows": 7, "valid_rows": 7, "creates": 0, "updates": 7,
                                             "rejected": [], "applied": False}
    changed = text.replace(",vibration,mm/s,1,0,,,,,60,true", ",vibration,mm/s,1,0,,7.1,,11,60,true")
    assert changed != text
    r = await web.api("POST", f"/api/integrations/{iid}/mappings/import?mode=apply", content=changed.encode(),
                      headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["applied"] is True
    assert rows(owner_conn, "SELECT warn_high, crit_high FROM external_signal_mappings WHERE metric_role = 'vibration'") \
        == [(7.1, 11.0)]
    assert rows(owner_conn, "SELECT name FROM signals WHERE external_id = 'ns=2;s=Formula'") == [("=SUM(A1)",)]


async def test_csv_bad_rows_are_reported_and_apply_writes_nothing(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    code = rows(owner_conn, "SELECT code FROM assets WHERE id = %s", tenant.asset(1))[0][0]
    csv_text = "\n".join([
        "external_id,asset_code,metric_role,warn_low,warn_high,scale,enabled",
        f"ns=2;s=Good.Temperature,{code},,,,,",                  # line 2: ok, role inferred
        f"ns=2;s=Bad.Asset,NO-SUCH-ASSET,flow,,,,",               # 3: unknown asset
        f"ns=2;s=Bad.Role,{code},smell,,,,",                      # 4: unknown role
        f"ns=2;s=Bad.Limits,{code},flow,10,1,,",                  # 5: warn_low > warn_high
        f"ns=2;s=Bad.Number,{code},flow,,hot,,",                  # 6: not a number
        f"ns=2;s=Good.Temperature,{code},,,,,",                   # 7: duplicate of line 2
        f"nonsense,{code},flow,,,,",                              # 8: not a NodeId
        f",{code},flow,,,,",                                      # 9: no id
        f"ns=2;s=Bad.Flag,{code},flow,,,,maybe",                  # 10: bad enabled
        f"ns=2;s=Good.Flow,{code},flow,,,2,no",                   # 11: ok
    ]) + "\n"
    r = await web.api("POST", f"/api/integrations/{iid}/mappings/import", content=csv_text.encode(),
                      headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["total_rows"] == 10 and report["valid_rows"] == 2 and report["creates"] == 2
    assert [x["line"] for x in report["rejected"]] == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = {x["line"]: x["reason"] for x in report["rejected"]}
    assert "asset_code" in reasons[3] and "metric_role" in reasons[4] and "warn_low" in reasons[5]
    assert "warn_high" in reasons[6] and "earlier line" in reasons[7] and "NodeId" in reasons[8]
    r = await web.api("POST", f"/api/integrations/{iid}/mappings/import?mode=apply", content=csv_text.encode(),
                      headers={"content-type": "text/csv"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "rows_rejected"
    assert len(r.json()["error"]["details"]["report"]["rejected"]) == 8
    assert count(owner_conn, "signals") == 0 and count(owner_conn, "external_signal_mappings") == 0
    good = "\n".join(csv_text.splitlines()[i] for i in (0, 1, 10)) + "\n"
    r = await web.api("POST", f"/api/integrations/{iid}/mappings/import?mode=apply", content=good.encode(),
                      headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["applied"] is True
    assert rows(owner_conn, "SELECT metric_role, scale, enabled FROM external_signal_mappings ORDER BY id") == [
        ("temperature", 1.0, True), ("flow", 2.0, False)]
    for junk, why in ((b"", "empty"), (b"foo,bar\n1,2\n", "header"), (b"external_id,asset_code,colour\nx,y,z\n", "unknown"),
                      (b"\xff\xfe\x00\x01", "encoding")):
        r = await web.api("POST", f"/api/integrations/{iid}/mappings/import", content=junk,
                          headers={"content-type": "text/csv"})
        assert r.status_code == 422, (why, r.text)
    r = await web.api("POST", f"/api/integrations/{iid}/mappings/import?mode=delete", content=good.encode())
    assert r.status_code == 400


async def test_latest_values_on_asset_page_and_dashboard(web, ctx, owner_conn) -> None:
    tenant, iid = ctx
    r = await web.api("POST", f"/api/integrations/{iid}/mappings", json={
        "asset_id": tenant.asset(1), "external_id": f"{P101}.Temperature", "name": "P-101 temperature",
        "metric_role": "temperature", "unit": "degC", "warn_high": 95, "crit_high": 110})
    signal_id = r.json()["signal"]["id"]
    owner_conn.execute("INSERT INTO signal_latest (tenant_id, signal_id, time, value, quality) VALUES "
                       "(%s, %s, now(), 101.5, 0)", [tenant.tenant_id, signal_id])
    page = (await web.get(f"/assets/{tenant.asset(1)}")).text
    assert 'data-testid="signal-row"' in page and "P-101 temperature" in page
    assert '<bdi dir="ltr">101.50</bdi> <bdi class="unit">°م</bdi>' in page      # the unit in the reader's language
    assert 'data-level="warning"' in page
    other = (await web.get(f"/assets/{tenant.asset(2)}")).text
    assert 'data-testid="signal-row"' not in other
    dash = (await web.get("/")).text
    assert 'data-testid="dashboard-integration"' in dash and "Mapped OPC-UA" in dash
