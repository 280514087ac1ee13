"""The platform owner's ingestion dashboard across tenants."""

from __future__ import annotations

from tests.fix_ingest import arrange_integration


def _health(conn, arranged, *, state="streaming", sample_age_s=1, heartbeat_age_s=1, error=None, lag=(20.0, 80.0)):
    conn.execute(
        "INSERT INTO ingest_health (tenant_id, integration_id, worker_id, state, connected, samples_per_s, lag_p50_ms, "
        "lag_p99_ms, last_error, last_error_at, last_sample_time, heartbeat_at) VALUES (%s, %s, 'w1', %s, %s, 12.5, %s, %s, "
        "%s, CASE WHEN %s::text IS NULL THEN NULL ELSE now() END, now() - make_interval(secs => %s), now() - make_interval(secs => %s))",
        [arranged.tenant_id, arranged.integration_id, state, state == "streaming", lag[0], lag[1], error, error,
         sample_age_s, heartbeat_age_s])
    for k in range(5):
        conn.execute("INSERT INTO ingest_health_history (tenant_id, integration_id, time, state, connected, samples_per_s, "
                     "lag_p50_ms, lag_p99_ms, queue_depth, spool_bytes) VALUES (%s, %s, now() - make_interval(mins => %s), "
                     "'streaming', true, 10, %s, %s, 0, 0)", [arranged.tenant_id, arranged.integration_id, k, lag[0], lag[1] + k])


async def test_owner_sees_every_tenant_with_problems_standing_out(web, accounts, owner_conn) -> None:
    good = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=A"])
    quiet = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=Q"])
    stale = arrange_integration(owner_conn, "pi", {}, ["W1"])
    broken = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=B"])
    _health(owner_conn, good)
    _health(owner_conn, quiet, sample_age_s=3600)      # connected, reports by exception, nothing changed for an hour
    _health(owner_conn, stale, state="connecting", sample_age_s=3600)   # worker alive, source not connected
    _health(owner_conn, broken, state="reconnecting", error="connection refused by 10.0.0.9:4840")
    await web.login(await accounts.user("platform_owner"))
    r = await web.get("/platform/ingestion")
    assert r.status_code == 200
    html = r.text
    assert f'data-integration="{good.integration_id}" data-level="normal"' in html
    assert f'data-integration="{quiet.integration_id}" data-level="normal"' in html   # the one staleness rule
    assert f'data-integration="{stale.integration_id}" data-level="warning"' in html
    assert f'data-integration="{broken.integration_id}" data-level="critical"' in html
    assert "connection refused by 10.0.0.9:4840" in html
    assert "<svg" in html and "polyline" in html
    r = await web.get(f"/platform/ingestion/{broken.integration_id}")
    assert r.status_code == 200 and "connection refused" in r.text
    assert (await web.get("/platform/ingestion/987654321")).status_code == 404


async def test_tenant_roles_cannot_see_the_dashboard(web, accounts, owner_conn) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=A"])
    tenant = (arranged.tenant_id, owner_conn.execute("SELECT slug FROM tenants WHERE id = %s", [arranged.tenant_id]).fetchone()[0])
    await web.login(await accounts.user("tenant_admin", tenant))
    assert (await web.get("/platform/ingestion")).status_code == 403
    assert (await web.get(f"/platform/ingestion/{arranged.integration_id}")).status_code == 403


async def test_empty_dashboard_explains_what_to_do(web, accounts) -> None:
    await web.login(await accounts.user("platform_owner"))
    r = await web.get("/platform/ingestion")
    assert r.status_code == 200 and "لا توجد تكاملات بعد" in r.text
