"""Stored XSS: every string a user or a source can set is escaped on every page, for every role.

Payloads are planted the way they arrive in production: user-set names and texts through the
JSON API (as a tenant admin, and a tenant name by the platform owner), and source-set texts
(browse names, PI point names, error messages, event summaries, AI texts, audit details) into
the rows the ingest service, the collectors and the runs write. Then every HTML page of the
route table, with every path parameter filled by a real planted row, is fetched as every role
and must not contain any payload raw. To show the check can fail, the escaped payload must be
seen on the pages that show those rows.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from tests.fix_web import Accounts, new_web
from tests.web.routes_walk import walk

PAYLOADS = (
    "<script>alert('x1')</script>",
    "\"><img src=x onerror=alert('x2')>",
    "'><svg onload=alert('x3')>",
)
ALL = "".join(PAYLOADS)          # 84 characters: fits every free-text column
SHORT = PAYLOADS[0]              # for columns limited to 40 characters
ESCAPED_SEEN = "&lt;script&gt;alert(&#39;x1&#39;)&lt;/script&gt;"
ROLES = ("platform_owner", "tenant_admin", "optimization_engineer", "reliability_engineer", "engineer", "viewer")

# Source-set texts, as the ingest service, collectors and runs store them (table -> columns).
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "signals": ("name", "path", "description", "eng_unit", "data_type"),
    "external_signal_mappings": ("unit",),
    "integrations": ("last_test_message",),
    "integration_action_log": ("message", "actor_name"),
    "ingest_health": ("last_error", "worker_id"),
    "industrial_events": ("summary", "actor", "correlation_id", "alarm_key", "source_id"),
    "incidents": ("title", "summary", "acknowledged_by_name", "resolved_by_name"),
    "optimization_runs": ("scope_label", "requested_by_name", "error", "fallback_reason", "model"),
    "optimization_opportunities": ("title", "rationale", "action", "expected_impact"),
    "poc_reports": ("requested_by_name", "summary", "demo_tenant_slug"),
    "audit_log": ("actor_name", "target_name"),
    "identity_providers": ("name", "issuer", "client_id"),
    "alert_history": ("actor_name", "note"),
    "work_order_history": ("actor_name", "note"),
}
SKIP_PAGES = ("/digital-twin/stream", "/healthz", "/readyz", "/metrics", "/internal/config/status", "/sso/")


async def _ok(r, what: str) -> dict[str, Any]:
    assert r.status_code in (200, 201, 202), f"{what}: {r.status_code} {r.text[:400]}"
    return r.json()


async def plant_through_api(admin, owner_web) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    site = await _ok(await admin.api("POST", "/api/sites", {"code": "XS-1", "name": ALL, "name_ar": ALL,
                                                              "description": ALL, "description_ar": ALL}), "site")
    unit = await _ok(await admin.api("POST", "/api/units", {"site_id": site["id"], "code": "XU-1", "name": ALL,
                                                              "name_ar": ALL}), "unit")
    asset = await _ok(await admin.api("POST", "/api/assets", {
        "site_id": site["id"], "unit_id": unit["id"], "code": "XA-1", "name": "plain name", "name_ar": "اسم",
        "description": ALL, "description_ar": ALL, "asset_type": "pump"}), "asset")
    # the reported path: an asset renamed through PATCH
    await _ok(await admin.api("PATCH", f"/api/assets/{asset['id']}", {"name": ALL, "name_ar": ALL}), "asset patch")
    alert = await _ok(await admin.api("POST", f"/api/assets/{asset['id']}/alerts", {
        "severity": "high", "title": ALL, "description": ALL, "source_ref": ALL}), "alert")
    await _ok(await admin.api("POST", f"/api/alerts/{alert['id']}/acknowledge", {"note": ALL}), "ack")
    wo = await _ok(await admin.api("POST", f"/api/assets/{asset['id']}/work-orders", {
        "title": ALL, "description": ALL, "priority": "high", "alert_id": alert["id"]}), "work order")
    await _ok(await admin.api("PATCH", f"/api/work-orders/{wo['id']}", {"status": "in_progress", "note": ALL}), "wo")
    integ = await _ok(await admin.api("POST", "/api/integrations", {
        "kind": "opcua", "name": ALL, "enabled": False,
        "config": {"endpoint_url": "opc.tcp://127.0.0.1:9/" + "x"}}), "integration")
    bulk = await _ok(await admin.api("POST", f"/api/integrations/{integ['id']}/mappings/bulk", {
        "asset_id": asset["id"], "items": [{"external_id": "ns=2;s=" + ALL, "name": ALL, "path": ALL,
                                            "data_type": ALL, "eng_unit": SHORT}]}), "mapping")
    user = await _ok(await admin.api("POST", "/api/tenant/users", {
        "username": "xss-user", "email": "xss@example.test", "role": "viewer", "display_name": ALL}), "user")
    await _ok(await owner_web.api("POST", "/api/platform/tenants", {
        "slug": "xss-second", "name": ALL, "admin_username": "admin2", "admin_email": "admin2@example.test",
        "admin_display_name": ALL}), "tenant")
    run = await _ok(await admin.api("POST", "/api/optimization/runs", {"scope": "asset", "scope_id": asset["id"],
                                                                       "engine": "analytics"}), "run")
    ids.update(site_id=site["id"], unit_id=unit["id"], asset_id=asset["id"], alert_id=alert["id"],
               work_order_id=wo["id"], integration_id=integ["id"], user_id=user["user"]["id"], run_id=run["id"],
               bulk=bulk)
    return ids


def plant_source_texts(conn, tenant_id, ids: dict[str, Any], owner_id) -> dict[str, Any]:
    """Rows the ingest service, collectors, runs and the PoC write, then every source-set text replaced."""
    t, asset, integ = tenant_id, ids["asset_id"], ids["integration_id"]
    mapping_id = conn.execute("SELECT id FROM external_signal_mappings WHERE tenant_id = %s LIMIT 1", [t]).fetchone()[0]
    signal_id = conn.execute("SELECT id FROM signals WHERE tenant_id = %s LIMIT 1", [t]).fetchone()[0]
    conn.execute("""INSERT INTO ingest_health (tenant_id, integration_id, state, last_error, last_error_at)
                    VALUES (%s, %s, 'error', 'x', now())""", [t, integ])
    conn.execute("""INSERT INTO integration_action_log (tenant_id, integration_id, action, success, message, details)
                    VALUES (%s, %s, 'test', false, 'x', %s)""", [t, integ, Jsonb({"error": ALL})])
    # texts the system writes as message keys: their parameters carry names a user or a source set
    said = {"key": "limit_crit_high", "params": {"signal": ALL, "value": 12.0, "limit": 11.0, "unit": SHORT}}
    for action, success, msg in (("test", True, {"key": "connected_pi", "params": {"product": ALL, "server": ALL}}),
                                 ("mapping_create", True, {"key": "mapping_created",
                                                           "params": {"signal": ALL, "asset": ALL, "role": ALL}})):
        conn.execute("""INSERT INTO integration_action_log (tenant_id, integration_id, action, success, message, details)
                        VALUES (%s, %s, %s, %s, 'x', %s)""", [t, integ, action, success, Jsonb({"msg": msg})])
    conn.execute("""UPDATE integrations SET last_test_at = now(), last_test_success = false, last_test_message = 'x',
                    last_test_details = %s WHERE tenant_id = %s""", [Jsonb({"error": ALL}), t])
    event_id = conn.execute("""
        INSERT INTO industrial_events (tenant_id, event_time, source_system, source_type, source_id, severity,
                                       event_category, summary, payload, asset_id, integration_id, signal_id, actor)
        VALUES (%s, now() - interval '5 minutes', 'opcua', 'alarm', 'x', 'critical', 'alarm', 'x', %s, %s, %s, %s, 'x')
        RETURNING id""", [t, Jsonb({"message": ALL, "node": ALL, "msg": said}), asset, integ, signal_id]).fetchone()[0]
    incident_id = conn.execute("""
        INSERT INTO incidents (tenant_id, asset_id, title, incident_type, severity, status, started_at, last_event_at,
                               event_count, trigger_event_id, acknowledged_at, acknowledged_by_name, summary,
                               title_key, title_params)
        VALUES (%s, %s, 'x', 'critical_alarm', 'critical', 'acknowledged', now() - interval '5 minutes', now(), 1, %s,
                now(), 'x', 'x', %s, %s) RETURNING id""",
                               [t, asset, event_id, said["key"], Jsonb(said["params"])]).fetchone()[0]
    conn.execute("""INSERT INTO incident_events (tenant_id, incident_id, event_id, event_time, relation, flood_key,
                                                 last_event_id, last_event_time)
                    SELECT %s, %s, id, event_time, 'trigger', 'k', id, event_time FROM industrial_events
                    WHERE tenant_id = %s AND id = %s""", [t, incident_id, t, event_id])
    conn.execute("""INSERT INTO optimization_opportunities (tenant_id, run_id, asset_id, source, kind, severity, title,
                                                            rationale, action, expected_impact, evidence)
                    VALUES (%s, %s, %s, 'ai', 'recommendation', 'high', 'x', 'x', 'x', 'x', %s)""",
                 [t, ids["run_id"], asset, Jsonb({"note": ALL})])
    provider_id = conn.execute("""
        INSERT INTO identity_providers (tenant_id, name, discovery_url, issuer, client_id, role_mapping)
        VALUES (%s, 'x', 'https://idp.example.test/' || md5(random()::text), 'x', 'x', %s) RETURNING id""",
                               [t, Jsonb({"claim": ALL, "map": {ALL: "viewer"}})]).fetchone()[0]
    report_id = conn.execute("""
        INSERT INTO poc_reports (status, origin, demo_tenant_id, requested_by, requested_by_name, finished_at,
                                 deadline_at, steps, summary)
        VALUES ('failed', 'test', %s, %s, 'x', now(), now(), %s, 'x') RETURNING id""",
                             [t, owner_id, Jsonb([{"key": "config", "status": "failed", "title": ALL, "message": ALL,
                                                   "details": {"error": ALL}, "duration_ms": 5}])]).fetchone()[0]
    conn.execute("""INSERT INTO audit_log (tenant_id, actor_name, action, target_type, target_id, target_name, details)
                    VALUES (%s, 'x', %s, %s, 'x', 'x', %s)""", [t, SHORT, SHORT, Jsonb({"note": ALL, ALL: ALL})])
    for table, columns in SOURCE_COLUMNS.items():
        for column in columns:
            value = SHORT if column in ("demo_tenant_slug", "unit", "eng_unit") else ALL
            conn.execute(f"UPDATE {table} SET {column} = %s WHERE {column} IS NOT NULL OR {column} IS NULL", [value])
    return {"mapping_id": mapping_id, "event_id": event_id, "incident_id": incident_id, "provider_id": provider_id,
            "report_id": report_id, "signal_id": signal_id}


def concrete(path: str, ids: dict[str, Any]) -> str | None:
    def fill(m: re.Match) -> str:
        name = m.group(1).split(":")[0]
        if name not in ids:
            raise KeyError(name)
        return str(ids[name])

    try:
        return re.sub(r"\{([^}]+)\}", fill, path)
    except KeyError:
        return None


@pytest.mark.slow
async def test_no_page_shows_a_planted_payload_raw(app, db, owner_conn) -> None:
    accounts = Accounts(db)
    tenant = await accounts.tenant(name=ALL)
    users = {role: await accounts.user(role, None if role == "platform_owner" else tenant) for role in ROLES}
    owner_conn.execute("UPDATE users SET display_name = %s WHERE tenant_id = %s", [ALL, tenant[0]])

    async with new_web(app) as admin, new_web(app) as owner:
        await admin.login(users["tenant_admin"])
        await owner.login(users["platform_owner"])
        ids = await plant_through_api(admin, owner)
    ids.update(plant_source_texts(owner_conn, tenant[0], ids, users["platform_owner"].user_id))
    ids["integration_id_platform"] = ids["integration_id"]
    ids["org"] = tenant[1]

    pages = [r for r in walk(app) if r.method == "GET" and not r.path.startswith(SKIP_PAGES)
             and not r.path.endswith((".csv", ".json")) and not r.path.startswith("/api/")]
    checked = seen_escaped = 0
    failures: list[str] = []
    fetched: dict[str, int] = {}
    for role in ROLES:
        async with new_web(app) as w:
            await w.login(users[role])
            for route in pages:
                path = concrete(route.path, ids)
                assert path is not None, f"no planted row for a parameter of {route.path}"
                r = await w.get(path)
                if r.status_code in (302, 303, 403):
                    continue
                assert r.status_code == 200, f"{role} GET {path}: {r.status_code} {r.text[:300]}"
                fetched[route.path] = fetched.get(route.path, 0) + 1
                body = r.text
                for payload in PAYLOADS:
                    checked += 1
                    if payload in body:
                        at = body.index(payload)
                        failures.append(f"{role} {path}: {payload!r} raw near {body[max(0, at - 120):at]!r}")
                if ESCAPED_SEEN in body:
                    seen_escaped += 1
    assert not failures, "\n".join(failures[:20])
    # the planted rows are really on the pages (the check above could fail)
    assert seen_escaped >= 40, seen_escaped
    for must_show in ("/assets/{asset_id}", "/integrations/{integration_id}", "/platform/ingestion/{integration_id}",
                      "/blackbox/incidents/{incident_id}", "/management/audit", "/optimization/runs/{run_id}"):
        assert must_show in fetched, f"{must_show} was never fetched"
    page_count = sum(fetched.values())
    print(f"\nXSS sweep: {len(fetched)} routes, {page_count} page fetches (pages x roles) x {len(PAYLOADS)} payloads"
          f" = {checked} checks; escaped payload seen on {seen_escaped} pages; raw payloads: {len(failures)}")
