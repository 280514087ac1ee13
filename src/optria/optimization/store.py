"""SQL of the optimization area: runs, opportunities, and the inputs a run reads.

Every function takes a connection from ``db.tenant(tenant_id)`` and still filters by
tenant_id; the only cross-tenant statement is the stale-run reaper, run by the
optimization job in the explicit platform scope.

A run still queued or running after its ``timeout_s`` is reported as failed by every read
(``EFFECTIVE_STATUS``), so a page never shows a run "running" forever when the process
that ran it died; the job later writes that state down.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.db import Conn, fetch_all
from optria.timeseries.relations import LATEST

MAX_ASSETS = 100
PAGE_SIZE = 25
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "fallback")
ENGINES = ("analytics", "ai")
SCOPES = ("tenant", "unit", "asset", "integration")

_OVERDUE = "(r.status IN ('queued', 'running') AND r.created_at < now() - make_interval(secs => r.timeout_s))"
EFFECTIVE_STATUS = f"CASE WHEN {_OVERDUE} THEN 'failed' ELSE r.status END"
RUN_COLUMNS = f"""r.tenant_id, r.id, r.scope, r.scope_id, r.scope_label, r.engine, r.model, {EFFECTIVE_STATUS} AS status,
       {_OVERDUE} AS overdue, r.requested_by, r.requested_by_name, r.origin, r.timeout_s, r.created_at, r.started_at,
       r.finished_at, r.asset_count, r.error, r.fallback_reason,
       extract(epoch FROM coalesce(r.finished_at, now()) - coalesce(r.started_at, r.created_at))::float8 AS duration_s,
       -- what the run covered, by its current names (pages show them in the reader's language; scope_label is
       -- the English label stored when the run started, shown when the asset or unit is gone)
       CASE r.scope WHEN 'asset' THEN (SELECT a.code::text FROM assets a WHERE a.tenant_id = r.tenant_id AND a.id = r.scope_id)
                    WHEN 'unit' THEN (SELECT u.code::text FROM units u WHERE u.tenant_id = r.tenant_id AND u.id = r.scope_id)
       END AS scope_code,
       CASE r.scope WHEN 'asset' THEN (SELECT a.name FROM assets a WHERE a.tenant_id = r.tenant_id AND a.id = r.scope_id)
                    WHEN 'unit' THEN (SELECT u.name FROM units u WHERE u.tenant_id = r.tenant_id AND u.id = r.scope_id)
                    WHEN 'integration' THEN (SELECT i.name FROM integrations i
                                             WHERE i.tenant_id = r.tenant_id AND i.id = r.scope_id)
       END AS scope_name,
       CASE r.scope WHEN 'asset' THEN (SELECT a.name_ar FROM assets a WHERE a.tenant_id = r.tenant_id AND a.id = r.scope_id)
                    WHEN 'unit' THEN (SELECT u.name_ar FROM units u WHERE u.tenant_id = r.tenant_id AND u.id = r.scope_id)
       END AS scope_name_ar"""

# ----------------------------------------------------------------------------------------- scope

SCOPE_ASSETS = {
    "tenant": """
        SELECT a.id FROM assets a WHERE a.tenant_id = %(tenant_id)s ORDER BY a.code LIMIT %(limit)s""",
    "unit": """
        SELECT a.id FROM assets a WHERE a.tenant_id = %(tenant_id)s AND a.unit_id = %(scope_id)s
        ORDER BY a.code LIMIT %(limit)s""",
    "asset": """
        SELECT a.id FROM assets a WHERE a.tenant_id = %(tenant_id)s AND a.id = %(scope_id)s""",
    "integration": """
        SELECT DISTINCT a.id, a.code FROM assets a
        JOIN external_signal_mappings m ON m.tenant_id = a.tenant_id AND m.asset_id = a.id AND m.enabled
        JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
        WHERE a.tenant_id = %(tenant_id)s AND s.integration_id = %(scope_id)s
        ORDER BY a.code LIMIT %(limit)s""",
}

SCOPE_LABEL = {
    "tenant": "SELECT name AS label FROM tenants WHERE id = %(tenant_id)s",
    "unit": """SELECT u.name || ' (' || u.code || ')' AS label FROM units u
               WHERE u.tenant_id = %(tenant_id)s AND u.id = %(scope_id)s""",
    "asset": """SELECT a.code || ' — ' || a.name AS label FROM assets a
                WHERE a.tenant_id = %(tenant_id)s AND a.id = %(scope_id)s""",
    "integration": """SELECT i.name AS label FROM integrations i
                      WHERE i.tenant_id = %(tenant_id)s AND i.id = %(scope_id)s""",
}

ASSETS = """
SELECT a.id, a.code, a.name, a.name_ar, a.asset_type, a.criticality, a.site_id, a.unit_id, u.name AS unit_name,
       u.name_ar AS unit_name_ar, u.code AS unit_code
FROM assets a LEFT JOIN units u ON u.tenant_id = a.tenant_id AND u.id = a.unit_id
WHERE a.tenant_id = %(tenant_id)s AND a.id = ANY(%(asset_ids)s::int8[])
ORDER BY a.code
"""

MAPPED_SIGNALS = f"""
SELECT m.asset_id, s.id AS signal_id, s.name, m.metric_role AS role, coalesce(m.unit, s.eng_unit) AS unit, m.scale,
       m."offset", m.warn_low, m.warn_high, m.crit_low, m.crit_high, m.expected_interval_s,
       l.value AS latest, l.time AS latest_time, l.quality, ih.heartbeat_at AS source_seen,
       CASE WHEN ih.integration_id IS NULL THEN NULL ELSE coalesce(ih.connected, false) END AS source_connected
FROM external_signal_mappings m
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
LEFT JOIN {LATEST} l ON l.tenant_id = m.tenant_id AND l.signal_id = m.signal_id
LEFT JOIN ingest_health ih ON ih.tenant_id = s.tenant_id AND ih.integration_id = s.integration_id
WHERE m.tenant_id = %(tenant_id)s AND m.enabled AND m.asset_id = ANY(%(asset_ids)s::int8[])
ORDER BY m.asset_id, m.metric_role, s.id
"""

HEALTH = """
SELECT asset_id, time, status, health_score, failure_probability, source
FROM asset_health_latest WHERE tenant_id = %(tenant_id)s AND asset_id = ANY(%(asset_ids)s::int8[])
"""

INCIDENTS_PRESENT = "SELECT to_regclass('incidents') IS NOT NULL AS present"
OPEN_INCIDENTS = """
SELECT id, asset_id, title, title_key, title_params, incident_type, severity, status, started_at, last_event_at,
       event_count
FROM incidents
WHERE tenant_id = %(tenant_id)s AND asset_id = ANY(%(asset_ids)s::int8[]) AND status <> 'resolved'
ORDER BY last_event_at DESC LIMIT 20
"""


async def scope_asset_ids(conn: Conn, tenant_id: UUID, scope: str, scope_id: int | None) -> list[int]:
    cur = await conn.execute(SCOPE_ASSETS[scope], {"tenant_id": tenant_id, "scope_id": scope_id, "limit": MAX_ASSETS})
    return [r["id"] for r in await cur.fetchall()]


async def scope_label(conn: Conn, tenant_id: UUID, scope: str, scope_id: int | None) -> str | None:
    """The scope's name, or None when it does not exist in this tenant."""
    row = await (await conn.execute(SCOPE_LABEL[scope], {"tenant_id": tenant_id, "scope_id": scope_id})).fetchone()
    return row["label"] if row else None


async def open_incidents(conn: Conn, tenant_id: UUID, asset_ids: list[int]) -> list[dict[str, Any]]:
    """Open incidents of the assets, when the Black Box tables exist."""
    present = (await (await conn.execute(INCIDENTS_PRESENT)).fetchone())["present"]
    if not present or not asset_ids:
        return []
    return await fetch_all(conn, OPEN_INCIDENTS, {"tenant_id": tenant_id, "asset_ids": asset_ids})


# ----------------------------------------------------------------------------------------- runs

INSERT_RUN = """
INSERT INTO optimization_runs (tenant_id, scope, scope_id, scope_label, engine, model, status, requested_by,
                               requested_by_name, origin, timeout_s)
VALUES (%(tenant_id)s, %(scope)s, %(scope_id)s, %(scope_label)s, %(engine)s, %(model)s, 'queued', %(requested_by)s,
        %(requested_by_name)s, %(origin)s, %(timeout_s)s)
RETURNING id, created_at
"""

MARK_RUNNING = """
UPDATE optimization_runs SET status = 'running', started_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(run_id)s AND status = 'queued'
RETURNING started_at
"""

# A run an attempt of the job queue leaves unfinished goes back to the queue: the next attempt starts
# it over (its results are written in one transaction at the end, so nothing half-written stays).
REQUEUE_RUN = """
UPDATE optimization_runs SET status = 'queued', started_at = NULL
WHERE tenant_id = %(tenant_id)s AND id = %(run_id)s AND status = 'running'
RETURNING id
"""

FINISH_RUN = """
UPDATE optimization_runs
SET status = %(status)s, finished_at = now(), asset_count = %(asset_count)s, inputs = %(inputs)s,
    findings = %(findings)s, recommendations = %(recommendations)s, error = %(error)s,
    fallback_reason = %(fallback_reason)s, model = coalesce(%(model)s, model)
WHERE tenant_id = %(tenant_id)s AND id = %(run_id)s AND status IN ('queued', 'running')
RETURNING finished_at
"""

RUN = f"""
SELECT {RUN_COLUMNS}, r.inputs, r.findings, r.recommendations
FROM optimization_runs r WHERE r.tenant_id = %(tenant_id)s AND r.id = %(run_id)s
"""

RUN_FILTERS = {
    "status": f"{EFFECTIVE_STATUS} = %(status)s",
    "engine": "r.engine = %(engine)s",
    "q": "(r.scope_label ILIKE %(q)s OR r.requested_by_name ILIKE %(q)s)",
}

LIST_RUNS = f"""
SELECT {RUN_COLUMNS}, jsonb_array_length(r.recommendations) AS recommendation_count
FROM optimization_runs r
WHERE r.tenant_id = %(tenant_id)s {{where}}
ORDER BY r.created_at DESC, r.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
COUNT_RUNS = "SELECT count(*) AS total FROM optimization_runs r WHERE r.tenant_id = %(tenant_id)s {where}"

ACTIVE_RUN_FOR_SCOPE = f"""
SELECT r.id FROM optimization_runs r
WHERE r.tenant_id = %(tenant_id)s AND r.scope = %(scope)s AND r.scope_id IS NOT DISTINCT FROM %(scope_id)s
  AND r.status IN ('queued', 'running') AND NOT {_OVERDUE}
ORDER BY r.id DESC LIMIT 1
"""

# The job's reaper: every tenant, explicit platform scope.
REAP_OVERDUE = f"""
UPDATE optimization_runs r
SET status = 'failed', finished_at = now(),
    error = coalesce(r.error, 'The run did not finish within ' || r.timeout_s || ' s; the process running it may have stopped.')
WHERE {_OVERDUE}
RETURNING r.tenant_id, r.id, r.scope, r.scope_id, r.engine, r.created_at, r.finished_at, r.error
"""


async def insert_run(conn: Conn, **values: Any) -> dict[str, Any]:
    return await (await conn.execute(INSERT_RUN, values)).fetchone()


async def mark_running(conn: Conn, tenant_id: UUID, run_id: int) -> dict[str, Any] | None:
    return await (await conn.execute(MARK_RUNNING, {"tenant_id": tenant_id, "run_id": run_id})).fetchone()


async def requeue_run(conn: Conn, tenant_id: UUID, run_id: int) -> bool:
    return await (await conn.execute(REQUEUE_RUN, {"tenant_id": tenant_id, "run_id": run_id})).fetchone() is not None


async def finish_run(conn: Conn, tenant_id: UUID, run_id: int, *, status: str, asset_count: int,
                     inputs: dict[str, Any], findings: list[dict[str, Any]], recommendations: list[dict[str, Any]],
                     error: str | None = None, fallback_reason: str | None = None,
                     model: str | None = None) -> dict[str, Any] | None:
    return await (await conn.execute(FINISH_RUN, {
        "tenant_id": tenant_id, "run_id": run_id, "status": status, "asset_count": asset_count,
        "inputs": Jsonb(inputs), "findings": Jsonb(findings), "recommendations": Jsonb(recommendations),
        "error": error[:2000] if error else None,
        "fallback_reason": fallback_reason[:1000] if fallback_reason else None, "model": model})).fetchone()


async def run(conn: Conn, tenant_id: UUID, run_id: int) -> dict[str, Any] | None:
    return await (await conn.execute(RUN, {"tenant_id": tenant_id, "run_id": run_id})).fetchone()


async def active_run_for_scope(conn: Conn, tenant_id: UUID, scope: str, scope_id: int | None) -> int | None:
    row = await (await conn.execute(ACTIVE_RUN_FOR_SCOPE, {"tenant_id": tenant_id, "scope": scope,
                                                          "scope_id": scope_id})).fetchone()
    return row["id"] if row else None


async def list_runs(conn: Conn, tenant_id: UUID, filters: dict[str, Any], *, page: int,
                    page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
    active = [name for name in RUN_FILTERS if filters.get(name)]
    where = "".join(f" AND {RUN_FILTERS[name]}" for name in active)
    params = {"tenant_id": tenant_id, "limit": page_size, "offset": (page - 1) * page_size,
              **{name: filters[name] for name in active}}
    if "q" in params:
        params["q"] = "%" + params["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await (await conn.execute(LIST_RUNS.format(where=where), params)).fetchall()  # type: ignore[arg-type]
    total = (await (await conn.execute(COUNT_RUNS.format(where=where), params)).fetchone())["total"]  # type: ignore[arg-type]
    return rows, total


async def reap_overdue(conn: Conn) -> list[dict[str, Any]]:
    return await (await conn.execute(REAP_OVERDUE)).fetchall()


# ----------------------------------------------------------------------------------------- opportunities

INSERT_OPPORTUNITY = """
INSERT INTO optimization_opportunities (tenant_id, run_id, asset_id, source, kind, severity, title, rationale, action,
                                        expected_impact, impact_value, impact_unit, confidence, evidence)
VALUES (%(tenant_id)s, %(run_id)s, %(asset_id)s, %(source)s, %(kind)s, %(severity)s, %(title)s, %(rationale)s,
        %(action)s, %(expected_impact)s, %(impact_value)s, %(impact_unit)s, %(confidence)s, %(evidence)s)
"""

SUPERSEDE = """
UPDATE optimization_opportunities SET superseded_at = now()
WHERE tenant_id = %(tenant_id)s AND asset_id = ANY(%(asset_ids)s::int8[]) AND run_id < %(run_id)s
  AND superseded_at IS NULL
"""

_OPPORTUNITY_COLUMNS = """o.id, o.run_id, o.asset_id, o.source, o.kind, o.severity, o.title, o.rationale, o.action,
       o.expected_impact, o.impact_value, o.impact_unit, o.confidence, o.evidence, o.created_at"""

CURRENT_OPPORTUNITIES = f"""
SELECT {_OPPORTUNITY_COLUMNS}, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
       a.criticality, a.unit_id, u.name AS unit_name, u.name_ar AS unit_name_ar,
       h.status AS health_status, h.health_score, h.failure_probability, r.engine, r.status AS run_status
FROM optimization_opportunities o
JOIN assets a ON a.tenant_id = o.tenant_id AND a.id = o.asset_id
JOIN optimization_runs r ON r.tenant_id = o.tenant_id AND r.id = o.run_id
LEFT JOIN units u ON u.tenant_id = a.tenant_id AND u.id = a.unit_id
LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
WHERE o.tenant_id = %(tenant_id)s AND o.superseded_at IS NULL
  AND (%(asset_id)s::int8 IS NULL OR o.asset_id = %(asset_id)s::int8)
  AND (%(unit_id)s::int8 IS NULL OR a.unit_id = %(unit_id)s::int8)
ORDER BY u.name NULLS LAST, a.code, o.id
LIMIT 500
"""

RUN_OPPORTUNITIES = f"""
SELECT {_OPPORTUNITY_COLUMNS}, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar
FROM optimization_opportunities o
JOIN assets a ON a.tenant_id = o.tenant_id AND a.id = o.asset_id
WHERE o.tenant_id = %(tenant_id)s AND o.run_id = %(run_id)s
ORDER BY a.code, o.id
"""

INSERT_AI_SNAPSHOT = """
INSERT INTO asset_metrics_snapshot (tenant_id, asset_id, time, health_score, failure_probability, status, source,
                                    contributing)
VALUES (%(tenant_id)s, %(asset_id)s, %(time)s, %(health_score)s, %(failure_probability)s, %(status)s, 'ai',
        %(contributing)s)
ON CONFLICT (tenant_id, asset_id, time) DO NOTHING
"""


async def insert_opportunities(conn: Conn, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT_OPPORTUNITY, [{**r, "evidence": Jsonb(r.get("evidence") or {})} for r in rows])


async def supersede(conn: Conn, tenant_id: UUID, run_id: int, asset_ids: list[int]) -> None:
    await conn.execute(SUPERSEDE, {"tenant_id": tenant_id, "run_id": run_id, "asset_ids": asset_ids})


async def current_opportunities(conn: Conn, tenant_id: UUID, *, asset_id: int | None = None,
                                unit_id: int | None = None) -> list[dict[str, Any]]:
    return await fetch_all(conn, CURRENT_OPPORTUNITIES, {"tenant_id": tenant_id, "asset_id": asset_id,
                                                         "unit_id": unit_id})


async def run_opportunities(conn: Conn, tenant_id: UUID, run_id: int) -> list[dict[str, Any]]:
    return await fetch_all(conn, RUN_OPPORTUNITIES, {"tenant_id": tenant_id, "run_id": run_id})


async def insert_ai_snapshots(conn: Conn, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT_AI_SNAPSHOT, [{**r, "contributing": Jsonb(r.get("contributing") or [])}
                                                       for r in rows])


# ----------------------------------------------------------------------------------------- page options

UNIT_OPTIONS = """
SELECT u.id, u.code, u.name, u.name_ar, s.code AS site_code FROM units u
JOIN sites s ON s.tenant_id = u.tenant_id AND s.id = u.site_id
WHERE u.tenant_id = %(tenant_id)s ORDER BY s.code, u.code LIMIT 500
"""
ASSET_OPTIONS = """
SELECT a.id, a.code, a.name, a.name_ar, a.unit_id FROM assets a WHERE a.tenant_id = %(tenant_id)s ORDER BY a.code LIMIT 1000
"""
INTEGRATION = "SELECT id, name, kind FROM integrations WHERE tenant_id = %(tenant_id)s AND id = %(integration_id)s"


async def unit_options(conn: Conn, tenant_id: UUID) -> list[dict[str, Any]]:
    return await fetch_all(conn, UNIT_OPTIONS, {"tenant_id": tenant_id})


async def asset_options(conn: Conn, tenant_id: UUID) -> list[dict[str, Any]]:
    return await fetch_all(conn, ASSET_OPTIONS, {"tenant_id": tenant_id})


async def integration(conn: Conn, tenant_id: UUID, integration_id: int) -> dict[str, Any] | None:
    return await (await conn.execute(INTEGRATION, {"tenant_id": tenant_id, "integration_id": integration_id})).fetchone()
