"""SQL for the platform-owner console (explicit platform scope throughout)."""

from __future__ import annotations

from optria.db import Database, fetch_all, fetch_one
from optria.identity.store import write_audit
from optria.integrations.store import log_action
from optria.timeseries.relations import LATEST

STORAGE_TIER = "SELECT tier FROM storage_capabilities"


class PlatformStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def storage_tier(self) -> str:
        async with self.db.platform("config_status") as conn:
            cur = await conn.execute(STORAGE_TIER)
            row = await cur.fetchone()
            return row["tier"] if row else "unknown"


INGESTION_OVERVIEW = """
SELECT i.tenant_id, t.name AS tenant_name, t.slug AS tenant_slug, i.id, i.kind, i.name, i.enabled, i.is_demo,
       i.demo_stream, h.worker_id, coalesce(h.state, 'not_running') AS state, coalesce(h.connected, false) AS connected,
       h.samples_per_s, h.samples_total, h.rejected_total, h.reconnects, h.lag_p50_ms, h.lag_p99_ms, h.queue_depth,
       h.spool_bytes, h.last_error, h.last_error_at, h.last_sample_time, h.heartbeat_at,
       h.backfill_rows, h.backfill_oldest_s, h.backfill_at, h.restarts, h.last_restart_reason, h.last_restart_at,
       (SELECT e.first_at FROM ingest_errors e WHERE e.tenant_id = i.tenant_id AND e.integration_id = i.id
          AND e.resolved_at IS NULL) AS error_since,
       extract(epoch FROM now() - h.last_sample_time) AS sample_age_s,
       extract(epoch FROM now() - h.heartbeat_at) AS heartbeat_age_s,
       m.mapped, m.expected_interval_s
FROM integrations i
JOIN tenants t ON t.id = i.tenant_id
LEFT JOIN ingest_health h ON h.tenant_id = i.tenant_id AND h.integration_id = i.id
LEFT JOIN LATERAL (
    SELECT count(*) AS mapped, min(em.expected_interval_s) AS expected_interval_s
    FROM signals s JOIN external_signal_mappings em ON em.tenant_id = s.tenant_id AND em.signal_id = s.id AND em.enabled
    WHERE s.tenant_id = i.tenant_id AND s.integration_id = i.id
) m ON true
WHERE (%(tenant)s::uuid IS NULL OR i.tenant_id = %(tenant)s::uuid)
  AND (%(integration)s::bigint IS NULL OR i.id = %(integration)s::bigint)
ORDER BY t.name, i.name
"""

LAG_HISTORY = """
SELECT date_trunc('minute', time) AS minute, max(lag_p99_ms) AS lag_p99_ms, max(lag_p50_ms) AS lag_p50_ms,
       sum(samples_per_s) AS samples_per_s
FROM ingest_health_history
WHERE time > now() - interval '1 hour'
  AND (%(integration)s::bigint IS NULL OR integration_id = %(integration)s::bigint)
GROUP BY 1 ORDER BY 1
"""


ERROR_HISTORY = """
SELECT message, first_at, last_at, occurrences, resolved_at FROM ingest_errors
WHERE integration_id = %(integration)s
ORDER BY first_at DESC
LIMIT 10
"""

REJECTS_BY_SIGNAL = """
SELECT s.name AS signal_name, s.external_id, st.rejected_total, st.last_reason, st.last_detail, st.last_rejected_at
FROM ingest_signal_status st
JOIN signals s ON s.tenant_id = st.tenant_id AND s.id = st.signal_id
WHERE st.integration_id = %(integration)s
ORDER BY st.last_rejected_at DESC NULLS LAST
LIMIT 20
"""


class IngestionStore:
    """Cross-tenant ingestion figures for the platform owner (explicit platform scope)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def overview(self, integration_id: int | None = None) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            cur = await conn.execute(INGESTION_OVERVIEW, {"tenant": None, "integration": integration_id})
            return await cur.fetchall()

    async def error_history(self, integration_id: int) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            return await (await conn.execute(ERROR_HISTORY, {"integration": integration_id})).fetchall()

    async def rejects(self, integration_id: int) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            return await (await conn.execute(REJECTS_BY_SIGNAL, {"integration": integration_id})).fetchall()

    async def lag_history(self, integration_id: int | None = None) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            cur = await conn.execute(LAG_HISTORY, {"integration": integration_id})
            return await cur.fetchall()


# ----------------------------------------------------------------------------- owner console (issue 9)

CONSOLE_TENANTS = """
SELECT t.id, t.slug, t.name, t.is_demo, t.is_active, t.created_at,
       (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS user_count,
       (SELECT count(*) FROM assets a WHERE a.tenant_id = t.id) AS asset_count,
       (SELECT count(*) FROM integrations i WHERE i.tenant_id = t.id) AS integration_count,
       count(*) OVER () AS total
FROM tenants t
ORDER BY t.is_active DESC, t.created_at DESC
LIMIT %(limit)s
"""

INTEGRATION_TESTS = """
SELECT i.id, i.last_test_at, i.last_test_success, i.last_test_message FROM integrations i
"""

SLUGS_LIKE = "SELECT slug::text AS slug FROM tenants WHERE slug = %(base)s OR slug LIKE %(pattern)s"

INSERT_DEMO_TENANT = "INSERT INTO tenants (slug, name, is_demo) VALUES (%(slug)s, %(name)s, true) RETURNING id"

INSERT_DEMO_USER = """
INSERT INTO users (tenant_id, username, email, display_name, role, auth_source, password_hash, must_change_password)
VALUES (%(tenant_id)s, %(username)s, %(email)s, NULL, %(role)s, 'local', %(password_hash)s, false)
RETURNING id
"""


class ConsoleStore:
    """Cross-tenant figures of the owner console (explicit platform scope)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def tenants(self, limit: int = 50) -> list[dict]:
        async with self.db.platform("platform_console") as conn:
            return await (await conn.execute(CONSOLE_TENANTS, {"limit": limit})).fetchall()

    async def integration_tests(self) -> dict[int, dict]:
        async with self.db.platform("platform_console") as conn:
            return {r["id"]: r for r in await (await conn.execute(INTEGRATION_TESTS)).fetchall()}


async def slugs_like(db: Database, base: str) -> set[str]:
    async with db.platform("create_demo_tenant") as conn:
        rows = await (await conn.execute(SLUGS_LIKE, {"base": base, "pattern": base.replace("_", "\\_") + "-%"})).fetchall()
    return {r["slug"] for r in rows}


async def insert_demo_tenant(conn, slug: str, name: str):
    return (await (await conn.execute(INSERT_DEMO_TENANT, {"slug": slug, "name": name})).fetchone())["id"]


async def insert_demo_user(conn, tenant_id, username: str, email: str, role: str, password_hash: str):
    row = await (await conn.execute(INSERT_DEMO_USER, {"tenant_id": tenant_id, "username": username, "email": email,
                                                       "role": role, "password_hash": password_hash})).fetchone()
    return row["id"]


# ----------------------------------------------------------------------------- proof of concept

POC_TENANT = """
SELECT t.id, t.slug, t.name, t.is_active, t.is_demo,
       (SELECT count(*) FROM assets a WHERE a.tenant_id = t.id) AS asset_count
FROM tenants t WHERE t.slug = %(slug)s
"""

POC_INTEGRATIONS = """
SELECT i.id, i.kind, i.name, i.config, i.enabled, i.is_demo, i.demo_stream,
       (SELECT count(*) FROM signals s JOIN external_signal_mappings m ON m.tenant_id = s.tenant_id
                                     AND m.signal_id = s.id AND m.enabled
        WHERE s.tenant_id = i.tenant_id AND s.integration_id = i.id) AS mapped
FROM integrations i
WHERE i.tenant_id = %(tenant_id)s AND i.is_demo AND i.kind IN ('opcua', 'pi')
ORDER BY i.id
"""

POC_SET_DEMO_STREAM = """
UPDATE integrations SET demo_stream = true, enabled = true, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::int8[]) AND is_demo AND NOT (demo_stream AND enabled)
RETURNING id, name
"""

POC_INGEST_HEALTH = """
SELECT h.integration_id, h.state, h.connected, h.samples_total, h.last_sample_time, h.lag_p99_ms, h.last_error,
       extract(epoch FROM now() - h.heartbeat_at) AS heartbeat_age_s,
       extract(epoch FROM now() - h.last_sample_time) AS sample_age_s
FROM ingest_health h
WHERE h.tenant_id = %(tenant_id)s AND h.integration_id = ANY(%(ids)s::int8[])
"""

POC_ASSET = "SELECT id, code, name FROM assets WHERE tenant_id = %(tenant_id)s AND code = %(code)s"

POC_TWIN_DATA = f"""
SELECT a.id, a.code,
       count(m.id) AS mapped,
       count(l.signal_id) FILTER (WHERE l.time > now() - make_interval(secs => %(fresh_s)s)) AS fresh,
       max(l.time) AS newest,
       h.status AS health_status, h.time AS health_time, h.failure_probability
FROM assets a
JOIN external_signal_mappings m ON m.tenant_id = a.tenant_id AND m.asset_id = a.id AND m.enabled
LEFT JOIN {LATEST} l ON l.tenant_id = m.tenant_id AND l.signal_id = m.signal_id
LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
WHERE a.tenant_id = %(tenant_id)s
GROUP BY a.id, a.code, h.status, h.time, h.failure_probability
ORDER BY a.code
"""

POC_BREACH = """
SELECT e.id, e.event_time, e.severity, e.summary, e.signal_id
FROM industrial_events e
WHERE e.tenant_id = %(tenant_id)s AND e.asset_id = %(asset_id)s AND e.source_system = 'limits'
  AND e.source_type = 'limit_breach' AND e.severity = 'critical' AND e.event_time >= %(since)s
ORDER BY e.event_time LIMIT 1
"""

POC_INCIDENT = """
SELECT i.id, i.title, i.severity, i.status, i.started_at, i.last_event_at, i.event_count
FROM incidents i
WHERE i.tenant_id = %(tenant_id)s AND i.asset_id = %(asset_id)s AND i.severity = 'critical'
  AND i.last_event_at >= %(since)s
ORDER BY i.last_event_at DESC LIMIT 1
"""

INSERT_POC_REPORT = """
INSERT INTO poc_reports (origin, demo_tenant_slug, requested_by, requested_by_name, deadline_at, steps)
VALUES (%(origin)s, %(slug)s, %(requested_by)s, %(requested_by_name)s, now() + make_interval(secs => %(budget_s)s),
        %(steps)s)
RETURNING id, started_at
"""

UPDATE_POC_REPORT = """
UPDATE poc_reports SET steps = %(steps)s, demo_tenant_id = coalesce(%(tenant_id)s, demo_tenant_id)
WHERE id = %(id)s AND status = 'running'
"""

FINISH_POC_REPORT = """
UPDATE poc_reports SET steps = %(steps)s, status = %(status)s, finished_at = now(), summary = %(summary)s,
       duration_ms = (extract(epoch FROM now() - started_at) * 1000)::int
WHERE id = %(id)s AND status = 'running'
"""

_POC_OVERDUE = "(p.status = 'running' AND p.deadline_at < now())"
POC_REPORT_COLUMNS = f"""p.id, CASE WHEN {_POC_OVERDUE} THEN 'failed' ELSE p.status END AS status, {_POC_OVERDUE} AS overdue,
       p.origin, p.demo_tenant_id, p.demo_tenant_slug, p.requested_by_name, p.started_at, p.finished_at, p.deadline_at,
       coalesce(p.duration_ms, (extract(epoch FROM coalesce(p.finished_at, now()) - p.started_at) * 1000)::int) AS duration_ms,
       p.summary"""

POC_REPORT = f"SELECT {POC_REPORT_COLUMNS}, p.steps FROM poc_reports p WHERE p.id = %(id)s"

POC_REPORTS = f"""
SELECT {POC_REPORT_COLUMNS},
       (SELECT count(*) FROM jsonb_array_elements(p.steps) s WHERE s->>'status' = 'passed') AS passed,
       jsonb_array_length(p.steps) AS step_count
FROM poc_reports p ORDER BY p.started_at DESC, p.id DESC LIMIT %(limit)s OFFSET %(offset)s
"""
POC_REPORTS_COUNT = "SELECT count(*) AS total FROM poc_reports"
POC_RUNNING = f"SELECT p.id FROM poc_reports p WHERE p.status = 'running' AND NOT {_POC_OVERDUE} ORDER BY p.id DESC LIMIT 1"


class PocStore:
    """Proof-of-concept reports (platform-level rows) and the cross-tenant reads of the runner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def one(self, query: str, params: dict) -> dict | None:
        async with self.db.platform("poc") as conn:
            return await fetch_one(conn, query, params)

    async def all(self, query: str, params: dict) -> list[dict]:
        async with self.db.platform("poc") as conn:
            return await fetch_all(conn, query, params)

    async def execute(self, query: str, params: dict) -> list[dict]:
        async with self.db.platform("poc") as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []

    async def switch_on_streams(self, tenant_id, integration_ids: list[int], *, actor_name: str,
                                report_id: int) -> list[dict]:
        """Turn on the demo streams the PoC needs, with the integration action log and the tenant's audit
        log written in the same transaction (the platform owner acted inside a tenant)."""
        async with self.db.platform("poc") as conn:
            switched = await (await conn.execute(POC_SET_DEMO_STREAM, {"tenant_id": tenant_id,
                                                                       "ids": integration_ids})).fetchall()
            for row in switched:
                await log_action(conn, tenant_id, row["id"], action="demo_stream_on", success=True,
                                 message="Demo stream started by the proof of concept", actor_name=actor_name[:200],
                                 details={"msg": {"key": "demo_stream_on_poc", "params": {}}})
                await write_audit(conn, tenant_id=tenant_id, actor=None, action="integration.demo_stream_on",
                                  target_type="integration", target_id=str(row["id"]), target_name=row["name"],
                                  details={"by": "proof of concept", "report_id": report_id, "actor": actor_name})
        return switched

    async def reports(self, *, limit: int, offset: int) -> tuple[list[dict], int]:
        async with self.db.platform("poc") as conn:
            rows = await (await conn.execute(POC_REPORTS, {"limit": limit, "offset": offset})).fetchall()
            total = (await (await conn.execute(POC_REPORTS_COUNT)).fetchone())["total"]
        return rows, total
