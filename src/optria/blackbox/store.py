"""SQL of the Industrial Black Box: every query of the area, by name.

Pages and the API run inside ``db.tenant(tenant_id)`` and still filter by tenant_id.
Collectors and the grouping job scan across tenants inside ``db.platform("blackbox")`` and
write every row with its own tenant_id. List filters are composed from the fixed fragments
below (never from user text), so each filter combination gets a plan that uses its index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql

from optria.blackbox.events import EventRecord
from optria.db import Conn, fetch_all, fetch_one
from optria.timeseries.relations import LATEST

# ----------------------------------------------------------------------------- events: write

EVENT_COLUMNS = ("tenant_id", "event_time", "source_system", "source_type", "source_id", "severity", "event_category",
                 "summary", "payload", "asset_id", "site_id", "unit_id", "integration_id", "signal_id", "actor",
                 "correlation_id", "alarm_key", "time_flag", "repeat_count")
EVENT_TYPES = ("uuid", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "int8", "int8", "int8",
               "int8", "int8", "text", "text", "text", "text", "int4")

INSERT_EVENTS = sql.SQL("""
INSERT INTO industrial_events ({columns})
SELECT {selected} FROM unnest({arrays}) AS u({columns})
ON CONFLICT DO NOTHING
RETURNING id
""").format(
    columns=sql.SQL(", ").join(sql.Identifier(c) for c in EVENT_COLUMNS),
    selected=sql.SQL(", ").join(sql.SQL("u.payload::jsonb") if c == "payload" else sql.SQL("u.{}").format(sql.Identifier(c))
                               for c in EVENT_COLUMNS),
    arrays=sql.SQL(", ").join(sql.SQL("{}::{}[]").format(sql.Placeholder(c), sql.SQL(t))
                             for c, t in zip(EVENT_COLUMNS, EVENT_TYPES)),
)


async def insert_events(conn: Conn, records: list[EventRecord]) -> list[int]:
    """Insert validated records; duplicates (same tenant, source system, source id and time) are skipped.
    Returns the ids of the rows actually added."""
    if not records:
        return []
    columns = list(zip(*(r.row() for r in records)))
    params = {name: list(values) for name, values in zip(EVENT_COLUMNS, columns)}
    return [r["id"] for r in await fetch_all(conn, INSERT_EVENTS, params)]


UPSERT_REJECTION = """
INSERT INTO blackbox_rejections AS r (tenant_id, source_system, reason, count, last_detail)
VALUES (%(tenant_id)s, %(source_system)s, %(reason)s, %(count)s, %(detail)s)
ON CONFLICT (tenant_id, source_system, reason) DO UPDATE
SET count = r.count + EXCLUDED.count, last_at = now(), last_detail = EXCLUDED.last_detail
"""


async def count_rejections(conn: Conn, tenant_id: UUID, source_system: str, counts: dict[str, tuple[int, str]]) -> None:
    for reason, (n, detail) in counts.items():
        await conn.execute(UPSERT_REJECTION, {"tenant_id": tenant_id, "source_system": source_system[:40],
                                              "reason": reason, "count": n, "detail": detail[:300]})


LIST_REJECTIONS = """
SELECT source_system, reason, count, first_at, last_at, last_detail
FROM blackbox_rejections WHERE tenant_id = %(tenant_id)s ORDER BY last_at DESC LIMIT 20
"""

# ----------------------------------------------------------------------------- cursors

ENSURE_CURSOR = """
INSERT INTO blackbox_cursors (collector, tenant_id) VALUES (%(collector)s, %(tenant_id)s) ON CONFLICT DO NOTHING
"""

# SKIP LOCKED: the cursor row is the collector's mutex; a second process finds it taken and skips this round.
LOCK_CURSOR = """
SELECT id, position, position_xid::text AS position_xid, position_time
FROM blackbox_cursors WHERE collector = %(collector)s AND tenant_id IS NOT DISTINCT FROM %(tenant_id)s
FOR UPDATE SKIP LOCKED
"""

SAVE_CURSOR = """
UPDATE blackbox_cursors
SET position = %(position)s, position_xid = %(position_xid)s::xid8, position_time = %(position_time)s,
    processed_total = processed_total + %(processed)s, updated_at = now()
WHERE id = %(id)s
"""


async def lock_cursor(conn: Conn, collector: str, tenant_id: UUID | None = None) -> dict[str, Any] | None:
    """The collector's cursor row, locked for this transaction; None when another process holds it."""
    params = {"collector": collector, "tenant_id": tenant_id}
    row = await fetch_one(conn, LOCK_CURSOR, params)
    if row is None:
        await conn.execute(ENSURE_CURSOR, params)
        row = await fetch_one(conn, LOCK_CURSOR, params)
    return row


async def save_cursor(conn: Conn, cursor: dict[str, Any], processed: int) -> None:
    await conn.execute(SAVE_CURSOR, {"id": cursor["id"], "position": cursor["position"],
                                     "position_xid": cursor["position_xid"], "position_time": cursor["position_time"],
                                     "processed": processed})


# ----------------------------------------------------------------------------- collectors: sources

# History rows (``h``) with their asset (``a``) after the cursor (xact_id, id), below the oldest transaction
# still in flight only: every transaction with a smaller id has ended, so nothing can later appear behind
# the cursor.
HISTORY_AFTER_CURSOR = """
JOIN assets a ON a.tenant_id = h.tenant_id AND a.id = h.asset_id
WHERE (h.xact_id, h.id) > (%(xid)s::xid8, %(id)s) AND h.xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY h.xact_id, h.id
LIMIT %(limit)s
"""

ALERT_HISTORY_AFTER = f"""
SELECT h.tenant_id, h.id, h.xact_id::text AS xid, h.alert_id, h.asset_id, h.action, h.from_status, h.to_status,
       h.actor_name, h.at, h.note, al.severity, al.title, al.source, al.source_ref,
       'alert:' || h.asset_id || ':' || coalesce(al.source || ':' || al.source_ref, lower(btrim(al.title))) AS alarm_key,
       a.site_id, a.unit_id
FROM alert_history h
JOIN alerts al ON al.tenant_id = h.tenant_id AND al.id = h.alert_id
{HISTORY_AFTER_CURSOR}"""

WORK_ORDER_HISTORY_AFTER = f"""
SELECT h.tenant_id, h.id, h.xact_id::text AS xid, h.work_order_id, h.asset_id, h.action, h.from_status,
       h.to_status, h.actor_name, h.at, h.note, w.title, w.priority, w.alert_id, a.site_id, a.unit_id
FROM work_order_history h
JOIN work_orders w ON w.tenant_id = h.tenant_id AND w.id = h.work_order_id
{HISTORY_AFTER_CURSOR}"""

# Enabled mappings with limits, with their collector state: of the given tenants (LIMIT_WATCHED), or
# those whose rows the collector is holding until their source's history is read back (LIMIT_HELD).
_LIMIT_MAPPINGS = """
SELECT m.tenant_id, m.signal_id, m.asset_id, a.site_id, a.unit_id, s.integration_id, s.name AS signal_name,
       m.metric_role, coalesce(m.unit, s.eng_unit, '') AS unit, m.scale, m."offset",
       m.warn_low, m.warn_high, m.crit_low, m.crit_high,
       coalesce(st.limit_state, 'normal') AS limit_state, st.limit_since, st.limit_time, st.limit_held_at
FROM external_signal_mappings m
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id
LEFT JOIN blackbox_signal_state st ON st.tenant_id = m.tenant_id AND st.signal_id = m.signal_id
WHERE m.enabled
  AND (m.warn_low IS NOT NULL OR m.warn_high IS NOT NULL OR m.crit_low IS NOT NULL OR m.crit_high IS NOT NULL)
"""
LIMIT_WATCHED = _LIMIT_MAPPINGS + """  AND m.tenant_id = ANY(%(tenants)s::uuid[])
ORDER BY m.tenant_id, m.signal_id
"""
LIMIT_HELD = _LIMIT_MAPPINGS + """  AND st.limit_held_at IS NOT NULL
ORDER BY st.limit_held_at, m.tenant_id, m.signal_id
LIMIT %(limit)s
"""

# Integrations whose newest rows may still have older ones missing before them: a worker connecting
# or reading its source's history back (its health state, a gap it noted), or one that took its
# lease moments ago and has not reported yet.
INTEGRATIONS_CATCHING_UP = """
SELECT h.tenant_id, h.integration_id FROM ingest_health h
WHERE h.tenant_id = ANY(%(tenants)s::uuid[])
  AND h.state IN ('starting', 'connecting', 'reconnecting', 'backfilling')
UNION
SELECT g.tenant_id, g.integration_id FROM ingest_gaps g WHERE g.tenant_id = ANY(%(tenants)s::uuid[])
UNION
SELECT l.tenant_id, l.integration_id FROM ingest_leases l
WHERE l.tenant_id = ANY(%(tenants)s::uuid[]) AND l.acquired_at > now() - make_interval(secs => %(fresh_lease_s)s)
"""

HOLD_LIMITS = """
INSERT INTO blackbox_signal_state AS st (tenant_id, signal_id, limit_held_at)
SELECT * FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(now)s::timestamptz[])
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET limit_held_at = coalesce(st.limit_held_at, EXCLUDED.limit_held_at), updated_at = now()
"""

SAVE_LIMIT_STATE = """
INSERT INTO blackbox_signal_state AS st (tenant_id, signal_id, limit_state, limit_since, limit_time, limit_held_at)
SELECT * FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(states)s::text[], %(since)s::timestamptz[],
                     %(times)s::timestamptz[], %(held)s::timestamptz[])
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET limit_state = EXCLUDED.limit_state, limit_since = EXCLUDED.limit_since, limit_time = EXCLUDED.limit_time,
    limit_held_at = EXCLUDED.limit_held_at, updated_at = now()
"""

# Latest values whose good/bad quality differs from what the collector last recorded.
QUALITY_CHANGES = f"""
SELECT l.tenant_id, l.signal_id, l.time, l.ingest_time, l.quality, l.value, m.asset_id, a.site_id, a.unit_id,
       s.integration_id, s.name AS signal_name, coalesce(st.quality_bad, false) AS was_bad, st.quality_since
FROM {LATEST} l
JOIN external_signal_mappings m ON m.tenant_id = l.tenant_id AND m.signal_id = l.signal_id AND m.enabled
JOIN signals s ON s.tenant_id = l.tenant_id AND s.id = l.signal_id
JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id
LEFT JOIN blackbox_signal_state st ON st.tenant_id = l.tenant_id AND st.signal_id = l.signal_id
WHERE (l.quality IN (3, 4)) <> coalesce(st.quality_bad, false)
ORDER BY l.tenant_id, l.signal_id
LIMIT %(limit)s
"""

SAVE_QUALITY_STATE = """
INSERT INTO blackbox_signal_state AS st (tenant_id, signal_id, quality_bad, quality_since)
SELECT * FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(bad)s::bool[], %(since)s::timestamptz[])
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET quality_bad = EXCLUDED.quality_bad, quality_since = EXCLUDED.quality_since, updated_at = now()
"""

INTEGRATION_CHANGES = """
SELECT h.tenant_id, h.integration_id, h.state, h.connected, h.reconnects, h.last_error, h.heartbeat_at,
       h.last_sample_time, i.name AS integration_name, i.kind, bs.state AS prev_state, bs.reconnects AS prev_reconnects
FROM ingest_health h
JOIN integrations i ON i.tenant_id = h.tenant_id AND i.id = h.integration_id
LEFT JOIN blackbox_integration_state bs ON bs.tenant_id = h.tenant_id AND bs.integration_id = h.integration_id
WHERE bs.state IS DISTINCT FROM h.state OR h.reconnects > bs.reconnects
ORDER BY h.tenant_id, h.integration_id
LIMIT %(limit)s
"""

SAVE_INTEGRATION_STATE = """
INSERT INTO blackbox_integration_state AS bs (tenant_id, integration_id, state, connected, reconnects, seen_at)
VALUES (%(tenant_id)s, %(integration_id)s, %(state)s, %(connected)s, %(reconnects)s, %(seen_at)s)
ON CONFLICT (tenant_id, integration_id) DO UPDATE
SET state = EXCLUDED.state, connected = EXCLUDED.connected, reconnects = EXCLUDED.reconnects, seen_at = EXCLUDED.seen_at
"""

TABLE_EXISTS = "SELECT to_regclass(%(name)s) IS NOT NULL AS present"

# Runs from the cursor on; the scope names the asset, unit or integration a run covered.
OPTIMIZATION_RUNS_FROM = """
SELECT r.tenant_id, r.id, r.scope, r.scope_id, r.scope_label, r.engine, r.status, r.created_at, r.started_at,
       r.finished_at, r.error, r.fallback_reason, r.recommendations,
       a.id AS asset_id, coalesce(a.unit_id, u.id) AS unit_id, coalesce(a.site_id, u.site_id) AS site_id,
       g.id AS integration_id, coalesce(a.code::text, u.code::text) AS scope_code,
       coalesce(a.name, u.name, g.name) AS scope_name, coalesce(a.name_ar, u.name_ar) AS scope_name_ar
FROM optimization_runs r
LEFT JOIN assets a ON r.scope = 'asset' AND a.tenant_id = r.tenant_id AND a.id = r.scope_id
LEFT JOIN units u ON r.scope = 'unit' AND u.tenant_id = r.tenant_id AND u.id = r.scope_id
LEFT JOIN integrations g ON r.scope = 'integration' AND g.tenant_id = r.tenant_id AND g.id = r.scope_id
WHERE r.id >= %(position)s
ORDER BY r.id
LIMIT %(limit)s
"""
TABLE_COLUMNS = """
SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %(name)s
"""

# ----------------------------------------------------------------------------- grouping

NEXT_EVENTS = """
SELECT tenant_id, id, xact_id::text AS xid, event_time, source_system, source_type, severity, event_category,
       summary, payload->'msg' AS msg, asset_id, integration_id, signal_id, alarm_key, time_flag, repeat_count
FROM industrial_events
WHERE (xact_id, id) > (%(xid)s::xid8, %(id)s) AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id, id
LIMIT %(limit)s
"""

LATEST_INCIDENTS = """
SELECT DISTINCT ON (i.tenant_id, i.asset_id) i.tenant_id, i.asset_id, i.id, i.status, i.severity, i.started_at,
       i.last_event_at, i.event_count
FROM incidents i
JOIN unnest(%(tenants)s::uuid[], %(assets)s::int8[]) AS k(tenant_id, asset_id)
  ON i.tenant_id = k.tenant_id AND i.asset_id = k.asset_id
ORDER BY i.tenant_id, i.asset_id, i.last_event_at DESC, i.id DESC
"""

ASSETS_OF_INTEGRATIONS = """
SELECT DISTINCT s.tenant_id, s.integration_id, m.asset_id
FROM signals s
JOIN external_signal_mappings m ON m.tenant_id = s.tenant_id AND m.signal_id = s.id
JOIN unnest(%(tenants)s::uuid[], %(integrations)s::int8[]) AS k(tenant_id, integration_id)
  ON s.tenant_id = k.tenant_id AND s.integration_id = k.integration_id
"""

INTEGRATIONS_OF_ASSET = """
SELECT DISTINCT s.integration_id FROM external_signal_mappings m
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
WHERE m.tenant_id = %(tenant_id)s AND m.asset_id = %(asset_id)s
"""

_LOOKBACK_COLUMNS = """id, event_time, source_system, source_type, severity, event_category, summary, asset_id,
       integration_id, signal_id, alarm_key, repeat_count"""
# Events of earlier rounds (at or before the cursor) in the look-back window of a new incident.
LOOKBACK = f"""
SELECT {_LOOKBACK_COLUMNS} FROM industrial_events
WHERE tenant_id = %(tenant_id)s AND asset_id = %(asset_id)s
  AND event_time >= %(start)s AND event_time <= %(end)s AND event_time > %(after)s
  AND time_flag IS NULL AND source_system <> 'blackbox' AND (xact_id, id) <= (%(xid)s::xid8, %(id)s)
UNION ALL
SELECT {_LOOKBACK_COLUMNS} FROM industrial_events
WHERE tenant_id = %(tenant_id)s AND asset_id IS NULL AND integration_id = ANY(%(integrations)s::int8[])
  AND event_time >= %(start)s AND event_time <= %(end)s AND event_time > %(after)s
  AND time_flag IS NULL AND (xact_id, id) <= (%(xid)s::xid8, %(id)s)
ORDER BY event_time, id
LIMIT %(limit)s
"""

INSERT_INCIDENT = """
INSERT INTO incidents (tenant_id, asset_id, title, incident_type, severity, started_at, last_event_at, trigger_event_id,
                       title_key, title_params)
VALUES (%(tenant_id)s, %(asset_id)s, %(title)s, %(incident_type)s, %(severity)s, %(started_at)s, %(last_event_at)s,
        %(trigger_event_id)s, %(title_key)s, %(title_params)s)
RETURNING id
"""

UPSERT_INCIDENT_EVENTS = """
INSERT INTO incident_events AS ie (tenant_id, incident_id, event_id, event_time, relation, flood_key, count,
                                   last_event_id, last_event_time)
SELECT * FROM unnest(%(tenants)s::uuid[], %(incidents)s::int8[], %(event_ids)s::int8[], %(event_times)s::timestamptz[],
                     %(relations)s::text[], %(flood_keys)s::text[], %(counts)s::int4[], %(last_ids)s::int8[],
                     %(last_times)s::timestamptz[])
ON CONFLICT (tenant_id, incident_id, flood_key) DO UPDATE SET
    count = ie.count + EXCLUDED.count,
    event_id = CASE WHEN EXCLUDED.event_time < ie.event_time THEN EXCLUDED.event_id ELSE ie.event_id END,
    event_time = least(ie.event_time, EXCLUDED.event_time),
    last_event_id = CASE WHEN EXCLUDED.last_event_time >= ie.last_event_time THEN EXCLUDED.last_event_id
                         ELSE ie.last_event_id END,
    last_event_time = greatest(ie.last_event_time, EXCLUDED.last_event_time),
    relation = CASE WHEN 'trigger' IN (ie.relation, EXCLUDED.relation) THEN 'trigger' ELSE ie.relation END
"""

_SEVERITY_ORDER = "ARRAY['info', 'low', 'medium', 'high', 'critical']"
UPDATE_INCIDENTS = f"""
UPDATE incidents i SET
    started_at = least(i.started_at, u.started_at),
    last_event_at = greatest(i.last_event_at, u.last_event_at),
    severity = CASE WHEN array_position({_SEVERITY_ORDER}, u.severity) > array_position({_SEVERITY_ORDER}, i.severity)
                    THEN u.severity ELSE i.severity END,
    event_count = i.event_count + u.added,
    updated_at = now()
FROM unnest(%(tenants)s::uuid[], %(ids)s::int8[], %(started)s::timestamptz[], %(last)s::timestamptz[],
            %(severities)s::text[], %(added)s::int4[]) AS u(tenant_id, id, started_at, last_event_at, severity, added)
WHERE i.tenant_id = u.tenant_id AND i.id = u.id
"""

# ----------------------------------------------------------------------------- pages: counters and lists

INCIDENT_COUNTERS = """
SELECT count(*) FILTER (WHERE i.severity = 'critical') AS critical_open, count(*) AS open_incidents
FROM incidents i WHERE i.tenant_id = %(tenant_id)s AND i.status <> 'resolved' {asset}
"""

EVENTS_24H = """
SELECT count(*) AS n FROM industrial_events e
WHERE e.tenant_id = %(tenant_id)s {asset}
  AND e.event_time >= %(end)s - interval '24 hours' AND e.event_time <= %(end)s + interval '5 minutes'
"""


# The newest incidents not resolved yet, worst first (the dashboard's incidents card).
OPEN_INCIDENTS = """
SELECT i.id, i.title, i.title_key, i.title_params, i.incident_type, i.severity, i.status, i.started_at,
       i.last_event_at, i.event_count, i.asset_id, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar
FROM incidents i
JOIN assets a ON a.tenant_id = i.tenant_id AND a.id = i.asset_id
WHERE i.tenant_id = %(tenant_id)s AND i.status <> 'resolved'
ORDER BY (i.severity = 'critical') DESC, i.started_at DESC, i.id DESC
LIMIT %(limit)s
"""


async def open_incidents(conn: Conn, tenant_id: UUID, limit: int) -> list[dict[str, Any]]:
    return await fetch_all(conn, OPEN_INCIDENTS, {"tenant_id": tenant_id, "limit": limit})


async def incident_counters(conn: Conn, tenant_id: UUID, asset_id: int | None) -> dict[str, int]:
    row = await fetch_one(conn, with_asset(INCIDENT_COUNTERS, "i.asset_id", asset_id),
                          {"tenant_id": tenant_id, "asset_id": asset_id})
    return dict(row or {"critical_open": 0, "open_incidents": 0})


INCIDENT_FILTERS = {
    "status": "i.status = %(status)s",
    "active": "i.status <> 'resolved'",
    "severity": "i.severity = %(severity)s",
    "asset_id": "i.asset_id = %(asset_id)s",
    "site_id": "a.site_id = %(site_id)s",
    "start": "i.started_at >= %(start)s",
    "end": "i.started_at < %(end)s",
}

INCIDENT_LIST = """
SELECT i.id, i.title, i.title_key, i.title_params, i.incident_type, i.severity, i.status, i.started_at,
       i.last_event_at, i.resolved_at, i.event_count, i.asset_id, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
       a.site_id, s.name AS site_name, s.name_ar AS site_name_ar
FROM incidents i
JOIN assets a ON a.tenant_id = i.tenant_id AND a.id = i.asset_id
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
WHERE i.tenant_id = %(tenant_id)s {where}
ORDER BY i.started_at DESC, i.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

# Counted at most up to a cap (a few pages ahead): "1–25 of more than 250" costs a bounded scan.
INCIDENT_COUNT = """
SELECT count(*) AS n FROM (SELECT 1 FROM incidents i {join} WHERE i.tenant_id = %(tenant_id)s {where} LIMIT %(cap)s) x
"""


def _where(fragments: dict[str, str], active: list[str]) -> sql.Composable:
    return sql.SQL("").join(sql.SQL(" AND " + fragments[k]) for k in active)


async def list_incidents(conn: Conn, tenant_id: UUID, params: dict[str, Any], active: list[str], *,
                         limit: int, offset: int, cap: int) -> tuple[list[dict[str, Any]], int]:
    where = _where(INCIDENT_FILTERS, active)
    values = {"tenant_id": tenant_id, "limit": limit, "offset": offset, "cap": cap, **params}
    rows = await fetch_all(conn, sql.SQL(INCIDENT_LIST).format(where=where), values)
    join = sql.SQL("JOIN assets a ON a.tenant_id = i.tenant_id AND a.id = i.asset_id") if "site_id" in active else sql.SQL("")
    total = await fetch_one(conn, sql.SQL(INCIDENT_COUNT).format(join=join, where=where), values)
    return rows, int(total["n"]) if total else 0


INCIDENT = """
SELECT i.*, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar, a.site_id, a.unit_id,
       s.name AS site_name, s.name_ar AS site_name_ar, s.timezone AS site_timezone
FROM incidents i
JOIN assets a ON a.tenant_id = i.tenant_id AND a.id = i.asset_id
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
WHERE i.tenant_id = %(tenant_id)s AND i.id = %(incident_id)s
"""

INCIDENT_FOR_UPDATE = """
SELECT id, asset_id, title, status, severity FROM incidents
WHERE tenant_id = %(tenant_id)s AND id = %(incident_id)s FOR UPDATE
"""

ACKNOWLEDGE_INCIDENT = """
UPDATE incidents SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = %(user_id)s,
       acknowledged_by_name = %(user_name)s, event_count = event_count + 1, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(incident_id)s AND status = 'open'
RETURNING acknowledged_at AS at
"""

RESOLVE_INCIDENT = """
UPDATE incidents SET status = 'resolved', resolved_at = now(), resolved_by = %(user_id)s,
       resolved_by_name = %(user_name)s, summary = %(note)s, event_count = event_count + 1, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(incident_id)s AND status <> 'resolved'
RETURNING resolved_at AS at
"""

ATTACH_ACTION = """
INSERT INTO incident_events (tenant_id, incident_id, event_id, event_time, relation, flood_key, count, last_event_id,
                             last_event_time)
VALUES (%(tenant_id)s, %(incident_id)s, %(event_id)s, %(event_time)s, 'action', %(flood_key)s, 1, %(event_id)s,
        %(event_time)s)
ON CONFLICT (tenant_id, incident_id, flood_key) DO NOTHING
"""

TIMELINE = """
SELECT ie.id AS link_id, ie.relation, ie.count, ie.event_time, ie.last_event_time, ie.last_event_id,
       e.id, e.source_system, e.source_type, e.severity, e.event_category, e.summary, e.payload, e.actor, e.asset_id,
       e.site_id, e.signal_id, e.integration_id, e.correlation_id, e.alarm_key, e.time_flag, e.ingest_time
FROM incident_events ie
JOIN industrial_events e ON e.tenant_id = ie.tenant_id AND e.id = ie.event_id AND e.event_time = ie.event_time
WHERE ie.tenant_id = %(tenant_id)s AND ie.incident_id = %(incident_id)s
ORDER BY ie.event_time, ie.id
LIMIT %(limit)s
"""

EVENT_FILTERS = {
    "severity": "e.severity = %(severity)s",
    "category": "e.event_category = %(category)s",
    "source_system": "e.source_system = %(source_system)s",
    "asset_id": "e.asset_id = %(asset_id)s",
    "site_id": "e.site_id = %(site_id)s",
    "integration_id": "e.integration_id = %(integration_id)s",
    "alarm_key": "e.alarm_key = %(alarm_key)s",
    "no_asset": "e.asset_id IS NULL",
    "flagged": "e.time_flag IS NOT NULL",
    "start": "e.event_time >= %(start)s",
    "end": "e.event_time < %(end)s",
    "q": "e.summary ILIKE %(q_like)s",
}

EVENT_LIST = """
SELECT e.id, e.event_time, e.ingest_time, e.source_system, e.source_type, e.severity, e.event_category, e.summary,
       e.payload, e.actor, e.asset_id, e.site_id, e.integration_id, e.signal_id, e.correlation_id, e.alarm_key,
       e.time_flag, e.repeat_count,
       a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
       s.name AS site_name, s.name_ar AS site_name_ar, g.name AS integration_name
FROM industrial_events e
LEFT JOIN assets a ON a.tenant_id = e.tenant_id AND a.id = e.asset_id
LEFT JOIN sites s ON s.tenant_id = e.tenant_id AND s.id = e.site_id
LEFT JOIN integrations g ON g.tenant_id = e.tenant_id AND g.id = e.integration_id
WHERE e.tenant_id = %(tenant_id)s {where}
ORDER BY e.event_time DESC, e.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

# Counting a million rows to print "page 1 of 40,000" is not worth it: the count stops at a cap.
EVENT_COUNT = """
SELECT count(*) AS n FROM (SELECT 1 FROM industrial_events e WHERE e.tenant_id = %(tenant_id)s {where} LIMIT %(cap)s) x
"""


async def list_events(conn: Conn, tenant_id: UUID, params: dict[str, Any], active: list[str], *,
                      limit: int, offset: int, cap: int) -> tuple[list[dict[str, Any]], int]:
    where = _where(EVENT_FILTERS, active)
    values = {"tenant_id": tenant_id, "limit": limit, "offset": offset, "cap": cap, **params}
    rows = await fetch_all(conn, sql.SQL(EVENT_LIST).format(where=where), values)
    total = await fetch_one(conn, sql.SQL(EVENT_COUNT).format(where=where), values)
    return rows, int(total["n"]) if total else 0


EVENT = """
SELECT e.*, a.code AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
       s.name AS site_name, s.name_ar AS site_name_ar, g.name AS integration_name, sg.name AS signal_name
FROM industrial_events e
LEFT JOIN assets a ON a.tenant_id = e.tenant_id AND a.id = e.asset_id
LEFT JOIN sites s ON s.tenant_id = e.tenant_id AND s.id = e.site_id
LEFT JOIN integrations g ON g.tenant_id = e.tenant_id AND g.id = e.integration_id
LEFT JOIN signals sg ON sg.tenant_id = e.tenant_id AND sg.id = e.signal_id
WHERE e.tenant_id = %(tenant_id)s AND e.id = %(event_id)s
LIMIT 1
"""

INCIDENTS_OF_EVENT = """
SELECT DISTINCT i.id, i.title, i.title_key, i.title_params, i.severity, i.status, i.started_at, ie.relation, ie.count
FROM incident_events ie JOIN incidents i ON i.tenant_id = ie.tenant_id AND i.id = ie.incident_id
WHERE ie.tenant_id = %(tenant_id)s AND (ie.event_id = %(event_id)s OR ie.last_event_id = %(event_id)s)
ORDER BY i.started_at DESC LIMIT 20
"""

# ----------------------------------------------------------------------------- pages: look-ups for filters

SITES = "SELECT id, code, name, name_ar FROM sites WHERE tenant_id = %(tenant_id)s ORDER BY code"
ASSET_OPTIONS = """
SELECT id, code, name, name_ar, site_id FROM assets WHERE tenant_id = %(tenant_id)s ORDER BY code LIMIT %(limit)s
"""
ASSET = """
SELECT a.id, a.code, a.name, a.name_ar, a.site_id, s.name AS site_name, s.name_ar AS site_name_ar
FROM assets a JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
WHERE a.tenant_id = %(tenant_id)s AND a.id = %(asset_id)s
"""
SITE = "SELECT id, code, name, name_ar FROM sites WHERE tenant_id = %(tenant_id)s AND id = %(site_id)s"
INTEGRATION = "SELECT id, name, kind FROM integrations WHERE tenant_id = %(tenant_id)s AND id = %(integration_id)s"
INTEGRATION_OPTIONS = "SELECT id, name, kind FROM integrations WHERE tenant_id = %(tenant_id)s ORDER BY name LIMIT 200"

# ----------------------------------------------------------------------------- trends

TREND_SIGNALS = """
SELECT m.signal_id, s.name AS signal_name, m.metric_role, coalesce(m.unit, s.eng_unit, '') AS unit, m.scale, m."offset",
       m.warn_low, m.warn_high, m.crit_low, m.crit_high, m.expected_interval_s
FROM external_signal_mappings m
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
WHERE m.tenant_id = %(tenant_id)s AND m.asset_id = %(asset_id)s AND m.enabled
ORDER BY m.metric_role, s.name
LIMIT %(limit)s
"""

# ----------------------------------------------------------------------------- alarm health (ISA-18.2)

ALARM_BUCKETS = """
SELECT date_bin(interval '10 minutes', e.event_time, timestamptz '2000-01-01') AS bucket, count(*) AS n
FROM industrial_events e
WHERE e.tenant_id = %(tenant_id)s AND e.alarm_key IS NOT NULL {asset}
  AND e.event_time >= %(start)s AND e.event_time < %(end)s
GROUP BY 1
"""

CHATTERING = """
SELECT alarm_key, max(n) AS max_per_minute, count(*) AS occurrences,
       (array_agg(summary ORDER BY event_time DESC))[1] AS summary,
       (array_agg(msg ORDER BY event_time DESC))[1] AS msg,
       (array_agg(asset_id ORDER BY event_time DESC))[1] AS asset_id
FROM (
    SELECT e.alarm_key, e.summary, e.payload->'msg' AS msg, e.asset_id, e.event_time,
           count(*) OVER (PARTITION BY e.alarm_key ORDER BY e.event_time
                          RANGE BETWEEN interval '60 seconds' PRECEDING AND CURRENT ROW) AS n
    FROM industrial_events e
    WHERE e.tenant_id = %(tenant_id)s AND e.alarm_key IS NOT NULL {asset}
      AND e.event_time >= %(start)s AND e.event_time < %(end)s
) x
GROUP BY alarm_key
HAVING max(n) >= %(chatter_count)s
ORDER BY max(n) DESC, count(*) DESC
LIMIT 10
"""

TOP_ALARMS = """
SELECT e.alarm_key, count(*) AS occurrences, max(e.event_time) AS last_time,
       (array_agg(e.summary ORDER BY e.event_time DESC))[1] AS summary,
       (array_agg(e.payload->'msg' ORDER BY e.event_time DESC))[1] AS msg,
       (array_agg(e.asset_id ORDER BY e.event_time DESC))[1] AS asset_id,
       (array_agg(e.severity ORDER BY e.event_time DESC))[1] AS severity
FROM industrial_events e
WHERE e.tenant_id = %(tenant_id)s AND e.alarm_key IS NOT NULL {asset}
  AND e.event_time >= %(start)s AND e.event_time < %(end)s
GROUP BY e.alarm_key
ORDER BY count(*) DESC, max(e.event_time) DESC
LIMIT 10
"""

# Standing alarms: alerts not cleared and signals still in a limit band, for longer than the threshold.
STANDING_ALERTS = """
SELECT al.id AS alert_id, al.asset_id, al.title AS summary, al.severity, al.raised_at AS since, al.status,
       'alert:' || al.asset_id || ':' || coalesce(al.source || ':' || al.source_ref, lower(btrim(al.title))) AS alarm_key
FROM alerts al
WHERE al.tenant_id = %(tenant_id)s AND al.status <> 'cleared' AND al.raised_at < %(before)s {asset}
ORDER BY al.raised_at
LIMIT 50
"""

STANDING_LIMITS = """
SELECT st.signal_id, m.asset_id, s.name AS summary, st.limit_state, st.limit_since AS since,
       'limit:' || st.signal_id || ':' || st.limit_state AS alarm_key
FROM blackbox_signal_state st
JOIN external_signal_mappings m ON m.tenant_id = st.tenant_id AND m.signal_id = st.signal_id
JOIN signals s ON s.tenant_id = st.tenant_id AND s.id = st.signal_id
WHERE st.tenant_id = %(tenant_id)s AND st.limit_state <> 'normal' AND st.limit_since < %(before)s {asset}
ORDER BY st.limit_since
LIMIT 50
"""

ASSET_NAMES = """
SELECT id, code, name, name_ar FROM assets WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::int8[])
"""


def with_asset(query: str, column: str, asset_id: int | None) -> sql.Composable:
    """``query`` with its ``{asset}`` slot filled: an asset filter on ``column``, or nothing."""
    fragment = sql.SQL(f"AND {column} = %(asset_id)s") if asset_id else sql.SQL("")
    return sql.SQL(query).format(asset=fragment)

