"""Row-level security: inside tenant A's transaction, a bare SELECT sees only tenant A's rows.

Tables are enumerated from the catalog. A new table must either carry ``tenant_id`` (and
then have forced RLS, a policy and a row factory below) or be listed as global on purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from optria.db import Database

# Tables that hold no tenant data, with the reason.
GLOBAL_TABLES = {
    "schema_migrations": "migration bookkeeping",
    "storage_capabilities": "one row describing the server",
    "login_attempts": "pre-authentication throttling, keyed by account name and client address",
    "retention_settings": "one row of platform-wide retention days",
    "poc_reports": "the platform owner's proof-of-concept reports; no tenant owns them (RLS: platform scope only)",
    "ingest_processes": "the live ingest processes and their heartbeats, for a fair share of the leases "
                        "(RLS: platform scope only)",
    "procrastinate_jobs": "the background job queue (optria.shell.job_queue): ids and options, no tenant rows",
    "procrastinate_events": "the job queue's history of each job (deferred, started, retried, ...)",
    "procrastinate_periodic_defers": "the job queue's record of periodic jobs (none are defined)",
    "procrastinate_workers": "the job queue's workers and their heartbeats",
}

Factory = Callable[[psycopg.Connection, uuid.UUID, dict], None]


def _user(conn, tenant, ctx):
    row = conn.execute(
        "INSERT INTO users (tenant_id, username, email, role, password_hash) VALUES (%s, %s, %s, 'viewer', 'x') RETURNING id",
        [tenant, f"u{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:6]}@x.test"]).fetchone()
    ctx["user_id"] = row[0]


def _session(conn, tenant, ctx):
    conn.execute("INSERT INTO sessions (id, user_id, tenant_id, expires_at) VALUES (%s, %s, %s, now() + interval '1 hour')",
                 [uuid.uuid4().hex, ctx["user_id"], tenant])


def _audit(conn, tenant, ctx):
    conn.execute("INSERT INTO audit_log (tenant_id, actor_name, action, target_type) VALUES (%s, 'x', 'test', 'user')",
                 [tenant])


# One row of each tenant table per tenant, in dependency order. New tenant tables add a factory.
ROW_FACTORIES: dict[str, Factory] = {
    "users": _user,
    "sessions": _session,
    "audit_log": _audit,
}


# --- assets (0003_assets.sql): site → unit → asset → alert/work order → histories, health
def _site(conn, tenant, ctx):
    ctx["site_id"] = conn.execute("INSERT INTO sites (tenant_id, code, name) VALUES (%s, 'S1', 'Site') RETURNING id",
                                  [tenant]).fetchone()[0]


def _unit(conn, tenant, ctx):
    ctx["unit_id"] = conn.execute("INSERT INTO units (tenant_id, site_id, code, name) VALUES (%s, %s, 'U1', 'Unit') "
                                  "RETURNING id", [tenant, ctx["site_id"]]).fetchone()[0]


def _asset(conn, tenant, ctx):
    ctx["asset_id"] = conn.execute(
        "INSERT INTO assets (tenant_id, site_id, unit_id, code, name, created_by) VALUES (%s, %s, %s, 'P-1', 'Pump', %s) "
        "RETURNING id", [tenant, ctx["site_id"], ctx["unit_id"], ctx["user_id"]]).fetchone()[0]


def _alert(conn, tenant, ctx):
    ctx["alert_id"] = conn.execute(
        "INSERT INTO alerts (tenant_id, asset_id, severity, title, raised_by) VALUES (%s, %s, 'high', 'Hot', %s) "
        "RETURNING id", [tenant, ctx["asset_id"], ctx["user_id"]]).fetchone()[0]


def _work_order(conn, tenant, ctx):
    ctx["work_order_id"] = conn.execute(
        "INSERT INTO work_orders (tenant_id, asset_id, alert_id, title, created_by) VALUES (%s, %s, %s, 'Fix', %s) "
        "RETURNING id", [tenant, ctx["asset_id"], ctx["alert_id"], ctx["user_id"]]).fetchone()[0]


def _alert_history(conn, tenant, ctx):
    conn.execute("INSERT INTO alert_history (tenant_id, alert_id, asset_id, action, to_status, actor_user_id, actor_name) "
                 "VALUES (%s, %s, %s, 'raised', 'open', %s, 'x')", [tenant, ctx["alert_id"], ctx["asset_id"], ctx["user_id"]])


def _work_order_history(conn, tenant, ctx):
    conn.execute("INSERT INTO work_order_history (tenant_id, work_order_id, asset_id, action, to_status, actor_name) "
                 "VALUES (%s, %s, %s, 'opened', 'open', 'x')", [tenant, ctx["work_order_id"], ctx["asset_id"]])


def _metrics_snapshot(conn, tenant, ctx):
    conn.execute("INSERT INTO asset_metrics_snapshot (tenant_id, asset_id, time, health_score, failure_probability, status) "
                 "VALUES (%s, %s, now(), 90, 0.1, 'normal')", [tenant, ctx["asset_id"]])


def _health_latest(conn, tenant, ctx):
    conn.execute("INSERT INTO asset_health_latest (tenant_id, asset_id, time, health_score, failure_probability, status) "
                 "VALUES (%s, %s, now(), 90, 0.1, 'normal')", [tenant, ctx["asset_id"]])


ROW_FACTORIES.update({
    "sites": _site,
    "units": _unit,
    "assets": _asset,
    "alerts": _alert,
    "work_orders": _work_order,
    "alert_history": _alert_history,
    "work_order_history": _work_order_history,
    "asset_metrics_snapshot": _metrics_snapshot,
    "asset_health_latest": _health_latest,
})


# --- identity (0002_identity.sql): a tenant's OpenID Connect provider, and an SSO user linked to it
def _identity_provider(conn, tenant, ctx):
    ctx["identity_provider_id"] = conn.execute(
        "INSERT INTO identity_providers (tenant_id, name, discovery_url, client_id) "
        "VALUES (%s, 'Entra', 'https://login.example.test/v2.0', 'client') RETURNING id", [tenant]).fetchone()[0]
    conn.execute("INSERT INTO users (tenant_id, username, email, role, auth_source, identity_provider_id, "
                 "external_issuer, external_subject) VALUES (%s, %s, %s, 'viewer', 'sso', %s, 'https://iss', %s)",
                 [tenant, f"sso{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:6]}@x.test", ctx["identity_provider_id"],
                  uuid.uuid4().hex])


ROW_FACTORIES.update({"identity_providers": _identity_provider})



# ----- integrations and time series -----

def _integration(conn, tenant, ctx):
    ctx["integration_id"] = conn.execute(
        "INSERT INTO integrations (tenant_id, kind, name) VALUES (%s, 'opcua', %s) RETURNING id",
        [tenant, f"int-{uuid.uuid4().hex[:6]}"]).fetchone()[0]


def _integration_log(conn, tenant, ctx):
    conn.execute("INSERT INTO integration_action_log (tenant_id, integration_id, action, success) VALUES (%s, %s, 'test', true)",
                 [tenant, ctx["integration_id"]])


def _signal(conn, tenant, ctx):
    ctx["signal_id"] = conn.execute(
        "INSERT INTO signals (tenant_id, integration_id, external_id, name) VALUES (%s, %s, 'ns=2;s=X', 'X') RETURNING id",
        [tenant, ctx["integration_id"]]).fetchone()[0]


def _mapping(conn, tenant, ctx):
    conn.execute("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role) VALUES (%s, %s, %s, 'vibration')",
                 [tenant, ctx["signal_id"], ctx["asset_id"]])


def _sample(conn, tenant, ctx):
    conn.execute("INSERT INTO signal_samples (tenant_id, signal_id, time, value) VALUES (%s, %s, now(), 1)",
                 [tenant, ctx["signal_id"]])


def _rollup(table):
    def make(conn, tenant, ctx):
        conn.execute(sql.SQL("INSERT INTO {} (tenant_id, signal_id, bucket, n, sum, last_time) VALUES (%s, %s, now(), 1, 1, now())")
                     .format(sql.Identifier(table)), [tenant, ctx["signal_id"]])
    return make


def _latest(conn, tenant, ctx):
    conn.execute("INSERT INTO signal_latest (tenant_id, signal_id, time, value) VALUES (%s, %s, now(), 1)",
                 [tenant, ctx["signal_id"]])


def _lease(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_leases (tenant_id, integration_id, worker_id, expires_at) VALUES (%s, %s, 'w', now())",
                 [tenant, ctx["integration_id"]])


def _health(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_health (tenant_id, integration_id) VALUES (%s, %s)", [tenant, ctx["integration_id"]])


def _health_history(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_health_history (tenant_id, integration_id, time, state, connected, samples_per_s, "
                 "queue_depth, spool_bytes) VALUES (%s, %s, now(), 'streaming', true, 1, 0, 0)",
                 [tenant, ctx["integration_id"]])


def _sample_batch(conn, tenant, ctx):
    conn.execute("INSERT INTO sample_batches (tenant_id, ingest_time, min_time, max_time, rows) "
                 "VALUES (%s, now(), now(), now(), 1)", [tenant])


def _signal_status(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_signal_status (tenant_id, signal_id, integration_id, rejected_total, last_reason) "
                 "VALUES (%s, %s, %s, 1, 'not_a_number')", [tenant, ctx["signal_id"], ctx["integration_id"]])


def _ingest_error(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_errors (tenant_id, integration_id, message, first_at, last_at) "
                 "VALUES (%s, %s, 'refused', now(), now())", [tenant, ctx["integration_id"]])


def _ingest_gap(conn, tenant, ctx):
    conn.execute("INSERT INTO ingest_gaps (tenant_id, integration_id, since) VALUES (%s, %s, now())",
                 [tenant, ctx["integration_id"]])


# (after the mapping: a mapping written for the asset deletes its summary, migration 0018)
def _signal_summary(conn, tenant, ctx):
    conn.execute("INSERT INTO asset_signal_summary (tenant_id, asset_id, computed_at, valid_until, n_signals, "
                 "n_with_data, n_fresh) VALUES (%s, %s, now(), now() + interval '1 minute', 1, 1, 1)",
                 [tenant, ctx["asset_id"]])


ROW_FACTORIES.update({
    "integrations": _integration,
    "integration_action_log": _integration_log,
    "signals": _signal,
    "external_signal_mappings": _mapping,
    "asset_signal_summary": _signal_summary,
    "signal_samples": _sample,
    "signal_1m_rollup": _rollup("signal_1m_rollup"),
    "signal_1h_rollup": _rollup("signal_1h_rollup"),
    "signal_latest": _latest,
    "ingest_leases": _lease,
    "ingest_health": _health,
    "ingest_health_history": _health_history,
    "sample_batches": _sample_batch,
    "ingest_signal_status": _signal_status,
    "ingest_errors": _ingest_error,
    "ingest_gaps": _ingest_gap,
})

# In the `timescale` tier the samples hypertable has no row security, so the application role
# holds no privilege on it; it reads samples through the tenant view instead.
VIEW_ONLY = {"timescale": {"signal_samples": "signal_samples_tenant"}}
# TimescaleDB refuses continuous aggregates over a hypertable with row security.
NO_RLS = {"timescale": {"signal_samples"}}

# ----- optimization (0007_optimization.sql): a run, and an opportunity it found for the asset -----
def _optimization_run(conn, tenant, ctx):
    ctx["optimization_run_id"] = conn.execute(
        "INSERT INTO optimization_runs (tenant_id, scope, scope_id, engine, requested_by, requested_by_name) "
        "VALUES (%s, 'asset', %s, 'analytics', %s, 'x') RETURNING id", [tenant, ctx["asset_id"], ctx["user_id"]]).fetchone()[0]


def _optimization_opportunity(conn, tenant, ctx):
    conn.execute("INSERT INTO optimization_opportunities (tenant_id, run_id, asset_id, source, kind, severity, title) "
                 "VALUES (%s, %s, %s, 'analytics', 'anomaly', 'medium', 'x')",
                 [tenant, ctx["optimization_run_id"], ctx["asset_id"]])


ROW_FACTORIES.update({
    "optimization_runs": _optimization_run,
    "optimization_opportunities": _optimization_opportunity,
})


# ----- black box (0006_blackbox.sql): event → incident → link; collector cursor and state, rejections -----
def _industrial_event(conn, tenant, ctx):
    ctx["event_id"], ctx["event_time"] = conn.execute(
        "INSERT INTO industrial_events (tenant_id, event_time, source_system, source_type, source_id, severity, "
        "event_category, summary, asset_id, site_id, integration_id, signal_id) "
        "VALUES (%s, now(), 'limits', 'limit_breach', 'x', 'critical', 'limit', 'x', %s, %s, %s, %s) "
        "RETURNING id, event_time",
        [tenant, ctx["asset_id"], ctx["site_id"], ctx["integration_id"], ctx["signal_id"]]).fetchone()


def _incident(conn, tenant, ctx):
    ctx["incident_id"] = conn.execute(
        "INSERT INTO incidents (tenant_id, asset_id, title, incident_type, severity, started_at, last_event_at) "
        "VALUES (%s, %s, 'x', 'limit_breach', 'critical', now(), now()) RETURNING id",
        [tenant, ctx["asset_id"]]).fetchone()[0]


def _incident_event(conn, tenant, ctx):
    conn.execute("INSERT INTO incident_events (tenant_id, incident_id, event_id, event_time, relation, flood_key, "
                 "last_event_id, last_event_time) VALUES (%s, %s, %s, %s, 'trigger', 'k', %s, %s)",
                 [tenant, ctx["incident_id"], ctx["event_id"], ctx["event_time"], ctx["event_id"], ctx["event_time"]])


def _blackbox_cursor(conn, tenant, ctx):
    conn.execute("INSERT INTO blackbox_cursors (collector, tenant_id) VALUES ('blackbox.sql_events', %s)", [tenant])


def _blackbox_signal_state(conn, tenant, ctx):
    conn.execute("INSERT INTO blackbox_signal_state (tenant_id, signal_id) VALUES (%s, %s)", [tenant, ctx["signal_id"]])


def _blackbox_integration_state(conn, tenant, ctx):
    conn.execute("INSERT INTO blackbox_integration_state (tenant_id, integration_id, state, connected, seen_at) "
                 "VALUES (%s, %s, 'streaming', true, now())", [tenant, ctx["integration_id"]])


def _blackbox_rejection(conn, tenant, ctx):
    conn.execute("INSERT INTO blackbox_rejections (tenant_id, source_system, reason, count) VALUES (%s, 'sql', 'bad_time', 1)",
                 [tenant])


ROW_FACTORIES.update({
    "industrial_events": _industrial_event,
    "incidents": _incident,
    "incident_events": _incident_event,
    "blackbox_cursors": _blackbox_cursor,
    "blackbox_signal_state": _blackbox_signal_state,
    "blackbox_integration_state": _blackbox_integration_state,
    "blackbox_rejections": _blackbox_rejection,
})


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
        ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def all_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def test_every_table_is_tenant_scoped_or_declared_global(owner_conn) -> None:
    scoped = set(tenant_tables(owner_conn)) | {"tenants"}
    unexplained = [t for t in all_tables(owner_conn) if t not in scoped and t not in GLOBAL_TABLES]
    assert unexplained == [], f"tables without tenant_id and not declared global: {unexplained}"


def test_every_tenant_table_forces_rls_with_a_policy(owner_conn, storage_tier: str) -> None:
    problems = []
    for table in NO_RLS.get(storage_tier, ()):   # the tier's exception: no row security, and no privilege either
        privileges = owner_conn.execute(
            "SELECT array_agg(p) FILTER (WHERE has_table_privilege('optria_app', %s, p)) "
            "FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p", [table]).fetchone()[0]
        assert privileges is None, f"{table}: the app role holds {privileges} on a table without row security"
    for table in tenant_tables(owner_conn) + ["tenants"]:
        if table in NO_RLS.get(storage_tier, ()):
            continue
        rls, forced = owner_conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s AND relnamespace = 'public'::regnamespace",
            [table]).fetchone()
        policies = owner_conn.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = %s",
                                      [table]).fetchone()[0]
        if not (rls and forced and policies):
            problems.append(f"{table}: rls={rls} forced={forced} policies={policies}")
    assert problems == []


def test_every_tenant_policy_reads_the_scope_once_per_statement(owner_conn) -> None:
    """A tenant table's policy reads the transaction's scope in scalar sub-selects (evaluated once
    per statement), not optria_tenant_visible(tenant_id), whose settings are read for every row:
    see migration 0016."""
    rows = owner_conn.execute("SELECT tablename, qual, with_check FROM pg_policies "
                              "WHERE schemaname = 'public' AND policyname = 'tenant_isolation'").fetchall()
    assert len(rows) >= 20
    slow = [t for t, qual, check in rows if qual != check or "SELECT optria_scope_tenant()" not in qual
            or "SELECT optria_platform_scope()" not in qual or "optria_tenant_visible" in qual]
    assert slow == []
    # the views that carry the test themselves (migration 0017; on timescale, over the aggregates)
    views = dict(owner_conn.execute("SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c WHERE c.relkind = 'v' "
                                    "AND c.relnamespace = 'public'::regnamespace").fetchall())
    assert "SELECT optria_scope_tenant()" in views["signal_samples_tenant"]
    assert [name for name, body in views.items() if "optria_tenant_visible" in body] == []


async def test_bare_select_sees_only_own_tenant(owner_conn, db: Database, storage_tier: str) -> None:
    tables = tenant_tables(owner_conn)
    missing = [t for t in tables if t not in ROW_FACTORIES]
    assert missing == [], f"add a row factory for new tenant tables: {missing}"

    tenants = []
    for slug in ("rls-a", "rls-b"):
        tid = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", [slug, slug]).fetchone()[0]
        ctx: dict = {}
        for table in ROW_FACTORIES:
            ROW_FACTORIES[table](owner_conn, tid, ctx)
        tenants.append(tid)
    # a platform owner (tenant_id null) must not be visible to tenants either
    owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                       "VALUES (NULL, 'rls-owner', 'rls-owner@x.test', 'platform_owner', 'x')")
    a, b = tenants

    views = VIEW_ONLY.get(storage_tier, {})
    for table in views:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with db.tenant(a) as conn:
                await conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier(table)))
    async with db.tenant(a) as conn:
        assert (await (await conn.execute("SELECT current_user AS u")).fetchone())["u"] == "optria_app"
        for table in tables:
            relation = views.get(table, table)
            rows = await (await conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier(relation)))).fetchall()
            seen = {r["tenant_id"] for r in rows}
            assert seen == {a}, f"{table}: tenant A's transaction saw {seen}"
        ids = {r["id"] for r in await (await conn.execute("SELECT id FROM tenants")).fetchall()}
        assert ids == {a}

    async with db.platform("test") as conn:
        for table in tables:
            relation = views.get(table, table)
            rows = await (await conn.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(relation)))).fetchall()
            assert {a, b} <= {r["tenant_id"] for r in rows}, f"platform scope must see every tenant in {table}"


async def test_no_scope_sees_nothing(owner_conn, db: Database) -> None:
    owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-c', 'c')")
    async with db.pool.connection() as conn:
        rows = await (await conn.execute("SELECT id FROM tenants")).fetchall()
        assert rows == []


async def test_cannot_write_into_another_tenant(owner_conn, db: Database) -> None:
    a = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-w-a', 'a') RETURNING id").fetchone()[0]
    b = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-w-b', 'b') RETURNING id").fetchone()[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with db.tenant(a) as conn:
            await conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                               "VALUES (%s, 'intruder', 'i@x.test', 'viewer', 'x')", [b])
    victim = owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                                "VALUES (%s, 'victim', 'v@x.test', 'viewer', 'x') RETURNING id", [b]).fetchone()[0]
    async with db.tenant(a) as conn:
        cur = await conn.execute("UPDATE users SET is_active = false WHERE id = %s", [victim])
        assert cur.rowcount == 0
    assert owner_conn.execute("SELECT is_active FROM users WHERE id = %s", [victim]).fetchone()[0] is True
