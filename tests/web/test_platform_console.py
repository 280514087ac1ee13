"""The platform owner's console: overview checklist and integration health, demo tenants in one action,
proof-of-concept failures reported with reasons, and tenant users kept out."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from psycopg.types.json import Jsonb

from optria.shell.app import create_app
from tests.fix_web import make_settings, new_web
from tests.web.assets_setup import make_plant
from tests.web.optimization_setup import add_integration

CREDENTIAL_ROW = re.compile(r'<td dir="ltr">([a-z]+)</td><td>[^<]*</td><td><code dir="ltr" class="secret-value">([^<]+)</code>')


async def test_overview_shows_flags_never_values(db, accounts, owner_conn, storage_tier: str) -> None:
    settings = make_settings(OPENAI_API_KEY="sk-overview-secret", OPCUA_ENDPOINT_URL="opc.tcp://plant-secret-host:4840",
                             OPCUA_USERNAME="opcuser", OPCUA_PASSWORD="opc-secret-pass")
    app = create_app(settings, db)
    tenant = await accounts.tenant(name="Overview Oil")
    integration = add_integration(owner_conn, tenant[0], name="North OPC")
    owner_conn.execute("UPDATE integrations SET last_test_at = now(), last_test_success = false, "
                       "last_test_message = 'Connection refused by 10.0.0.5:4840' WHERE id = %s", [integration])
    owner_conn.execute("INSERT INTO ingest_health (tenant_id, integration_id, state, connected, lag_p99_ms, heartbeat_at) "
                       "VALUES (%s, %s, 'error', false, 1234, now())", [tenant[0], integration])
    owner = await accounts.user("platform_owner")
    async with new_web(app) as web:
        await web.login(owner)
        page = await web.get("/platform")
    assert page.status_code == 200
    text = page.text
    assert 'data-check="opcua" data-state="ok"' in text
    assert 'data-check="pi" data-state="missing"' in text                  # PI_BASE_URL not set
    assert 'data-check="openai" data-state="ok"' in text
    # names read but used by nothing yet are said to be reserved, not shown as working switches
    assert 'data-check="sap" data-state="reserved"' in text and 'data-check="demo" data-state="reserved"' in text
    assert "محجوز: لا يتصل هذا الإصدار بـ SAP" in text
    assert f'data-testid="storage-tier">{storage_tier}<' in text           # the tier this run is on
    assert "North OPC" in text and 'data-test-result="failed"' in text and "Connection refused" in text
    assert f'href="/platform/ingestion/{integration}"' in text and 'href="/platform/ingestion"' in text
    assert "Overview Oil" in text
    for secret in ("sk-overview-secret", "plant-secret-host", "opc-secret-pass", "opcuser", "test-session-secret"):
        assert secret not in text, secret


async def test_demo_tenant_in_one_action_and_its_admin_runs_ai_from_a_data_source(web, db, accounts, owner_conn) -> None:
    owner = await accounts.user("platform_owner")
    await web.login(owner)
    form = await web.get("/platform/demo-tenants")
    assert form.status_code == 200 and 'value="Demo ARAMCO"' in form.text
    r = await web.post_form("/platform/demo-tenants", {"name": "Demo ARAMCO"})
    assert r.status_code == 303, r.text
    page = await web.get("/platform/demo-tenants")
    assert 'data-testid="demo-credentials"' in page.text and "demo-aramco" in page.text
    logins = dict(CREDENTIAL_ROW.findall(page.text))
    assert set(logins) == {"admin", "optimizer", "reliability", "engineer", "viewer"}
    again = await web.get("/platform/demo-tenants")
    assert 'data-testid="demo-credentials"' not in again.text                 # shown once
    assert not any(p in again.text for p in logins.values())

    tenant_id, is_demo = owner_conn.execute("SELECT id, is_demo FROM tenants WHERE slug = 'demo-aramco'").fetchone()
    assert is_demo
    roles = dict(owner_conn.execute("SELECT username, role FROM users WHERE tenant_id = %s", [tenant_id]).fetchall())
    assert roles == {"admin": "tenant_admin", "optimizer": "optimization_engineer",
                     "reliability": "reliability_engineer", "engineer": "engineer", "viewer": "viewer"}
    assert owner_conn.execute("SELECT count(*) FROM assets WHERE tenant_id = %s", [tenant_id]).fetchone()[0] == 9
    kinds = owner_conn.execute("SELECT kind, is_demo, demo_stream, config FROM integrations WHERE tenant_id = %s "
                               "ORDER BY kind", [tenant_id]).fetchall()
    assert [(k, d, s) for k, d, s, _ in kinds] == [("opcua", True, True), ("pi", True, True)]
    assert all("endpoint_url" not in c and "base_url" not in c for *_, c in kinds)   # they follow the global URLs
    assert owner_conn.execute("SELECT count(*) FROM external_signal_mappings WHERE tenant_id = %s",
                              [tenant_id]).fetchone()[0] > 30
    audit = owner_conn.execute("SELECT action, details::text FROM audit_log WHERE tenant_id = %s", [tenant_id]).fetchall()
    assert ("demo_tenant.created" in {a for a, _ in audit}) and sum(a == "user.created" for a, _ in audit) == 5
    assert not any(p in d for _, d in audit for p in logins.values())

    # the same name again gets its own identifier; a name without Latin letters still gets one
    await web.post_form("/platform/demo-tenants", {"name": "Demo ARAMCO"})
    await web.post_form("/platform/demo-tenants", {"name": "عرض تجريبي"})
    slugs = {r[0] for r in owner_conn.execute("SELECT slug FROM tenants WHERE is_demo").fetchall()}
    assert {"demo-aramco", "demo-aramco-2", "demo"} <= slugs
    bad = await web.post_form("/platform/demo-tenants", {"name": "   "})
    assert bad.status_code == 422 and "alert-error" in bad.text

    # the new tenant admin signs in with the password shown once and runs AI from a Data Sources card
    admin = type(owner)("demo-aramco", "admin", logins["admin"], "tenant_admin", None, tenant_id)
    async with new_web(web.client.app) as tenant_web:
        await tenant_web.login(admin)
        sources = await tenant_web.get("/integrations")
        assert sources.status_code == 200
        actions = re.findall(r'action="(/integrations/\d+/ai-run)"', sources.text)
        assert len(actions) == 2, sources.text[-2000:]
        r = await tenant_web.post_form(actions[0])
        assert r.status_code == 303 and r.headers["location"].startswith("/optimization/runs/")
        run_url = r.headers["location"]
        for _ in range(100):
            body = (await tenant_web.api("GET", "/api" + run_url)).json()
            if body["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.2)
        assert body["status"] == "fallback" and body["scope"] == "integration" and body["asset_count"] >= 4
        run_page = await tenant_web.get(run_url)
        assert run_page.status_code == 200 and 'data-testid="recommendations"' in run_page.text
        assert 'data-testid="fallback-reason"' in run_page.text


async def test_poc_reports_each_failure_with_its_reason(web, accounts, owner_conn) -> None:
    owner = await accounts.user("platform_owner")
    await web.login(owner)
    r = await web.post_form("/platform/poc", {"tenant_slug": "no-such-tenant"})
    assert r.status_code == 303
    report_id = int(r.headers["location"].rsplit("/", 1)[1])
    for _ in range(100):
        body = (await web.api("GET", f"/api/platform/poc/{report_id}")).json()
        if body["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert body["status"] == "failed"
    steps = {s["key"]: s for s in body["steps"]}
    assert steps["config"]["status"] == "failed" and "PI_BASE_URL" in steps["config"]["message"]
    assert steps["tenant"]["status"] == "failed" and "no-such-tenant" in steps["tenant"]["message"]
    assert steps["tenant"]["evidence_url"] == "/platform/demo-tenants"
    for key in ("opcua_test", "pi_test", "streams", "twin", "fault", "incident", "optimization"):
        assert steps[key]["status"] == "skipped", key
    assert steps["streams"]["message_text"] == "تُخطّيت: لم تنجح خطوة «المستأجر التجريبي موجود»."   # Arabic, step named
    page = await web.get(f"/platform/poc/{report_id}")
    assert page.status_code == 200 and 'data-poc-status="failed"' in page.text and 'data-step="incident"' in page.text
    history = await web.get("/platform/poc")
    assert f'data-report="{report_id}"' in history.text
    assert (await web.api("GET", "/api/platform/poc/987654")).status_code == 404
    assert (await web.get("/platform/poc/987654")).status_code == 404
    assert (await web.post_form("/platform/poc", {})).status_code == 422


async def test_a_dead_poc_is_shown_failed_and_a_live_one_is_not_started_twice(web, accounts, owner_conn) -> None:
    owner = await accounts.user("platform_owner")
    await web.login(owner)
    dead = owner_conn.execute("INSERT INTO poc_reports (requested_by_name, started_at, deadline_at, steps) VALUES "
                              "('x', now() - interval '1 hour', now() - interval '30 minutes', %s) RETURNING id",
                              [Jsonb([{"key": "config", "title": "Configuration status", "status": "running"}])]).fetchone()[0]
    body = (await web.api("GET", f"/api/platform/poc/{dead}")).json()
    assert body["status"] == "failed" and body["steps"][0]["status"] == "failed"
    live = owner_conn.execute("INSERT INTO poc_reports (requested_by_name, deadline_at) VALUES ('y', now() + interval '5 minutes') "
                              "RETURNING id").fetchone()[0]
    r = await web.post_form("/platform/poc", {"tenant_slug": "demo-aramco"})
    assert r.status_code == 303 and r.headers["location"] == f"/platform/poc/{live}"
    assert owner_conn.execute("SELECT count(*) FROM poc_reports").fetchone()[0] == 2


async def test_tenant_users_never_reach_the_console(web, accounts, db) -> None:
    tenant = await accounts.tenant()
    await make_plant(db, tenant[0], tag="TC", assets=1)
    admin = await accounts.user("tenant_admin", tenant)
    await web.login(admin)
    for path in ("/platform", "/platform/demo-tenants", "/platform/poc", "/platform/poc/1"):
        assert (await web.get(path)).status_code == 403, path
    r = await web.api("GET", "/api/platform/poc/1")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await web.post_form("/platform/demo-tenants", {"name": "Sneaky"})).status_code == 403
    assert (await web.post_form("/platform/poc", {"tenant_slug": "demo-aramco"})).status_code == 403


def test_cli_poc_without_a_demo_tenant_fails_with_reasons(db_dsn, tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": "cli-poc-secret-" + "q" * 30, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path), "OPTRIA_LOG_LEVEL": "ERROR"}
    r = subprocess.run([sys.executable, "-m", "optria.cli", "poc", "--tenant", "absent-tenant", "--no-local-fallback"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[FAIL] 2. Demo tenant present" in r.stdout and "absent-tenant" in r.stdout
    assert "[SKIP] 9. Optimization run finished" in r.stdout and "Result: FAILED" in r.stdout
    assert "Traceback" not in r.stderr
