"""SQL of the integrations area: integrations, their action log, signals and signal → asset mappings.

Every statement filters by ``tenant_id`` (row-level security checks it again); callers run
them inside ``db.tenant(tenant_id)`` and pass the connection, so a change, its action-log
row and its audit entry commit together. ``secrets`` (sealed values) are read by one
statement only, :data:`INTEGRATION_SECRETS`, and never by the listing queries.

Latest values come from ``signal_latest`` (raw source values); the engineering value shown
to users is ``raw × scale + offset`` of the mapping, computed here once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.db import Conn, fetch_all, fetch_one, fetch_page, like_pattern
from optria.integrations import live
from optria.integrations.models import KIND_LABELS
from optria.timeseries.relations import LATEST

# ----------------------------------------------------------------------------- integrations

INTEGRATION_COLUMNS = """
i.id, i.kind, i.name, i.config, (i.secrets ? 'password') AS has_password, i.enabled, i.is_demo, i.demo_stream,
i.last_test_at, i.last_test_success, i.last_test_message, i.last_test_details, i.created_at, i.updated_at,
coalesce(m.mapped, 0) AS mapped_signals, coalesce(m.enabled_mappings, 0) AS enabled_mappings,
m.expected_interval_s,
coalesce(h.state, 'not_running') AS ingest_state, coalesce(h.connected, false) AS ingest_connected,
h.samples_per_s, h.last_sample_time, h.last_error, h.last_error_at, h.heartbeat_at,
h.lag_p50_ms, h.lag_p99_ms, h.rejected_total, h.backfill_rows, h.backfill_oldest_s, h.backfill_at, h.restarts,
h.last_restart_reason, h.last_restart_at, h.reconnects,
(SELECT e.first_at FROM ingest_errors e WHERE e.tenant_id = i.tenant_id AND e.integration_id = i.id
   AND e.resolved_at IS NULL) AS error_since,
(SELECT st.last_reason FROM ingest_signal_status st WHERE st.tenant_id = i.tenant_id AND st.integration_id = i.id
   ORDER BY st.last_rejected_at DESC NULLS LAST LIMIT 1) AS last_reject_reason,
extract(epoch FROM now() - h.last_sample_time)::float8 AS sample_age_s,
extract(epoch FROM now() - h.heartbeat_at)::float8 AS heartbeat_age_s
"""

INTEGRATION_FROM = """
integrations i
LEFT JOIN ingest_health h ON h.tenant_id = i.tenant_id AND h.integration_id = i.id
LEFT JOIN LATERAL (
    SELECT count(*) AS mapped, count(*) FILTER (WHERE em.enabled) AS enabled_mappings,
           min(em.expected_interval_s) FILTER (WHERE em.enabled) AS expected_interval_s
    FROM signals s
    JOIN external_signal_mappings em ON em.tenant_id = s.tenant_id AND em.signal_id = s.id
    WHERE s.tenant_id = i.tenant_id AND s.integration_id = i.id
) m ON true
"""

LIST_INTEGRATIONS = f"""
SELECT {INTEGRATION_COLUMNS}, count(*) OVER () AS total
FROM {INTEGRATION_FROM}
WHERE i.tenant_id = %(tenant_id)s
  AND (%(kind)s::text IS NULL OR i.kind = %(kind)s)
  AND (%(q)s::text IS NULL OR i.name ILIKE %(q)s)
  AND (%(enabled)s::boolean IS NULL OR i.enabled = %(enabled)s)
ORDER BY i.is_demo DESC, lower(i.name), i.id
LIMIT %(limit)s OFFSET %(offset)s
"""

GET_INTEGRATION = f"SELECT {INTEGRATION_COLUMNS} FROM {INTEGRATION_FROM} WHERE i.tenant_id = %(tenant_id)s AND i.id = %(id)s"

# Locks the row: a concurrent edit of the same integration waits instead of losing a change.
INTEGRATION_SECRETS = """
SELECT id, kind, name, config, secrets, enabled, is_demo, demo_stream
FROM integrations WHERE tenant_id = %(tenant_id)s AND id = %(id)s
FOR UPDATE
"""

INTEGRATION_FOR_USE = """
SELECT id, kind, name, config, secrets FROM integrations WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

NAME_TAKEN = """
SELECT 1 FROM integrations
WHERE tenant_id = %(tenant_id)s AND lower(name) = lower(%(name)s) AND id IS DISTINCT FROM %(id)s::bigint
"""

INSERT_INTEGRATION = """
INSERT INTO integrations (tenant_id, kind, name, config, secrets, enabled, is_demo, demo_stream)
VALUES (%(tenant_id)s, %(kind)s, %(name)s, %(config)s, %(secrets)s, %(enabled)s, %(is_demo)s, %(demo_stream)s)
RETURNING id
"""

UPDATE_INTEGRATION = """
UPDATE integrations
SET name = %(name)s, config = %(config)s, secrets = %(secrets)s, enabled = %(enabled)s,
    demo_stream = %(demo_stream)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

RECORD_TEST = """
UPDATE integrations
SET last_test_at = %(at)s, last_test_success = %(success)s, last_test_message = %(message)s,
    last_test_details = %(details)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

INTEGRATION_BY_NAME = "SELECT id FROM integrations WHERE tenant_id = %(tenant_id)s AND lower(name) = lower(%(name)s)"

# ----------------------------------------------------------------------------- action log

INSERT_ACTION = """
INSERT INTO integration_action_log (tenant_id, integration_id, action, success, message, duration_ms,
                                    actor_user_id, actor_name, details)
VALUES (%(tenant_id)s, %(integration_id)s, %(action)s, %(success)s, %(message)s, %(duration_ms)s,
        %(actor_user_id)s, %(actor_name)s, %(details)s)
"""

# The source's error episodes, newest first: the open one is the current error, the rest history.
ERROR_HISTORY = """
SELECT message, first_at, last_at, occurrences, resolved_at FROM ingest_errors
WHERE tenant_id = %(tenant_id)s AND integration_id = %(integration_id)s
ORDER BY first_at DESC
LIMIT %(limit)s
"""

LIST_ACTIONS = """
SELECT id, action, success, message, duration_ms, actor_name, details, created_at, count(*) OVER () AS total
FROM integration_action_log
WHERE tenant_id = %(tenant_id)s AND integration_id = %(integration_id)s
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

# ----------------------------------------------------------------------------- signals

# A name is replaced only when the caller knows one (a browse or a CSV gave it).
UPSERT_SIGNAL = """
INSERT INTO signals (tenant_id, integration_id, external_id, name, path, data_type, eng_unit)
VALUES (%(tenant_id)s, %(integration_id)s, %(external_id)s, %(name)s, %(path)s, %(data_type)s, %(eng_unit)s)
ON CONFLICT (tenant_id, integration_id, external_id) DO UPDATE
SET name = CASE WHEN %(name_given)s THEN EXCLUDED.name ELSE signals.name END,
    path = CASE WHEN EXCLUDED.path <> '' THEN EXCLUDED.path ELSE signals.path END,
    data_type = coalesce(EXCLUDED.data_type, signals.data_type),
    eng_unit = coalesce(EXCLUDED.eng_unit, signals.eng_unit)
RETURNING id
"""

SIGNAL_OF_INTEGRATION = """
SELECT id, external_id, name, path, data_type, eng_unit FROM signals
WHERE tenant_id = %(tenant_id)s AND integration_id = %(integration_id)s AND id = %(id)s
"""

MAPPED_EXTERNAL_IDS = """
SELECT s.external_id, m.id AS mapping_id, a.code::text AS asset_code
FROM signals s
JOIN external_signal_mappings m ON m.tenant_id = s.tenant_id AND m.signal_id = s.id
JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id
WHERE s.tenant_id = %(tenant_id)s AND s.integration_id = %(integration_id)s AND s.external_id = ANY(%(ids)s::text[])
"""

# ----------------------------------------------------------------------------- mappings

ENGINEERING = "(l.value * m.scale + m.\"offset\")"

MAPPING_COLUMNS = f"""
m.id, s.integration_id, m.signal_id, s.external_id, s.name AS signal_name, s.path AS signal_path,
s.data_type, s.eng_unit, m.asset_id, a.code::text AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
m.metric_role, m.unit, m.scale, m."offset", m.warn_low, m.warn_high, m.crit_low, m.crit_high,
m.expected_interval_s, m.enabled, m.created_at, m.updated_at,
l.time AS latest_time, l.value AS latest_raw, {ENGINEERING} AS latest_value, l.quality AS latest_quality,
coalesce(st.rejected_total, 0) AS rejected_total, st.last_reason AS reject_reason, st.last_detail AS reject_detail,
st.last_rejected_at
"""

MAPPING_FROM = f"""
external_signal_mappings m
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id
LEFT JOIN {LATEST} l ON l.tenant_id = m.tenant_id AND l.signal_id = m.signal_id
LEFT JOIN ingest_signal_status st ON st.tenant_id = m.tenant_id AND st.signal_id = m.signal_id
"""

LIST_MAPPINGS = f"""
SELECT {MAPPING_COLUMNS}, count(*) OVER () AS total
FROM {MAPPING_FROM}
WHERE m.tenant_id = %(tenant_id)s AND s.integration_id = %(integration_id)s
  AND (%(asset_id)s::bigint IS NULL OR m.asset_id = %(asset_id)s)
  AND (%(q)s::text IS NULL OR s.name ILIKE %(q)s OR s.path ILIKE %(q)s OR s.external_id ILIKE %(q)s
       OR a.code ILIKE %(q)s OR a.name ILIKE %(q)s)
ORDER BY a.code, s.name, m.id
LIMIT %(limit)s OFFSET %(offset)s
"""

EXPORT_MAPPINGS = f"""
SELECT {MAPPING_COLUMNS}
FROM {MAPPING_FROM}
WHERE m.tenant_id = %(tenant_id)s AND s.integration_id = %(integration_id)s
ORDER BY a.code, s.name, m.id
"""

GET_MAPPING = f"SELECT {MAPPING_COLUMNS} FROM {MAPPING_FROM} WHERE m.tenant_id = %(tenant_id)s AND m.id = %(id)s"

MAPPING_OF_SIGNAL = """
SELECT id, asset_id FROM external_signal_mappings WHERE tenant_id = %(tenant_id)s AND signal_id = %(signal_id)s
"""

MAPPING_FIELDS = ("asset_id", "metric_role", "unit", "scale", "offset", "warn_low", "warn_high", "crit_low",
                  "crit_high", "expected_interval_s", "enabled")

INSERT_MAPPING = """
INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, unit, scale, "offset", warn_low,
                                      warn_high, crit_low, crit_high, expected_interval_s, enabled)
VALUES (%(tenant_id)s, %(signal_id)s, %(asset_id)s, %(metric_role)s, %(unit)s, %(scale)s, %(offset)s, %(warn_low)s,
        %(warn_high)s, %(crit_low)s, %(crit_high)s, %(expected_interval_s)s, %(enabled)s)
RETURNING id
"""

UPDATE_MAPPING = """
UPDATE external_signal_mappings
SET asset_id = %(asset_id)s, metric_role = %(metric_role)s, unit = %(unit)s, scale = %(scale)s, "offset" = %(offset)s,
    warn_low = %(warn_low)s, warn_high = %(warn_high)s, crit_low = %(crit_low)s, crit_high = %(crit_high)s,
    expected_interval_s = %(expected_interval_s)s, enabled = %(enabled)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

DELETE_MAPPING = "DELETE FROM external_signal_mappings WHERE tenant_id = %(tenant_id)s AND id = %(id)s RETURNING id"

MAPPED_SIGNALS_FOR_ASSET = f"""
SELECT {MAPPING_COLUMNS}, i.name AS integration_name, i.kind AS integration_kind
FROM {MAPPING_FROM}
JOIN integrations i ON i.tenant_id = s.tenant_id AND i.id = s.integration_id
WHERE m.tenant_id = %(tenant_id)s AND m.asset_id = %(asset_id)s
ORDER BY m.metric_role, s.name, m.id
LIMIT %(limit)s
"""

# ----------------------------------------------------------------------------- assets (pickers, CSV codes)

ASSET_CHOICES = """
SELECT a.id, a.code::text AS code, a.name, a.name_ar, s.name AS site_name, s.name_ar AS site_name_ar
FROM assets a JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
WHERE a.tenant_id = %(tenant_id)s
ORDER BY s.name, a.code
LIMIT %(limit)s
"""

ASSET_REF = "SELECT id, code::text AS code, name, name_ar FROM assets WHERE tenant_id = %(tenant_id)s AND id = %(id)s"

ASSET_IDS_BY_CODE = """
SELECT code::text AS code, id FROM assets WHERE tenant_id = %(tenant_id)s AND code = ANY(%(codes)s::citext[])
"""


# ----------------------------------------------------------------------------- integrations


async def list_integrations(conn: Conn, tenant_id: UUID, *, kind: str | None = None, q: str | None = None,
                            enabled: bool | None = None, page: int = 1,
                            page_size: int = 30) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "kind": kind, "q": like_pattern(q), "enabled": enabled}
    return await fetch_page(conn, LIST_INTEGRATIONS, params, limit=page_size, offset=(page - 1) * page_size)


async def dashboard_integrations(conn: Conn, tenant_id: UUID, limit: int = 6) -> dict[str, Any]:
    """The dashboard panel: enabled integrations with their ingest status, and how many there are."""
    rows, total = await list_integrations(conn, tenant_id, enabled=True, page_size=limit)
    return {"integrations": [{**r, "ingest": live.ingest_status(r), "streams": live.streams(r),
                              "kind_label": KIND_LABELS[r["kind"]]} for r in rows], "total": total}


async def get_integration(conn: Conn, tenant_id: UUID, integration_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_INTEGRATION, {"tenant_id": tenant_id, "id": integration_id})


async def lock_integration(conn: Conn, tenant_id: UUID, integration_id: int) -> dict[str, Any] | None:
    """The row with its sealed secrets, locked for an update in this transaction."""
    return await fetch_one(conn, INTEGRATION_SECRETS, {"tenant_id": tenant_id, "id": integration_id})


async def integration_for_use(conn: Conn, tenant_id: UUID, integration_id: int) -> dict[str, Any] | None:
    """Kind, config and sealed secrets, for a connection test or a browse (no lock)."""
    return await fetch_one(conn, INTEGRATION_FOR_USE, {"tenant_id": tenant_id, "id": integration_id})


async def name_taken(conn: Conn, tenant_id: UUID, name: str, integration_id: int | None = None) -> bool:
    return await fetch_one(conn, NAME_TAKEN, {"tenant_id": tenant_id, "name": name, "id": integration_id}) is not None


async def integration_id_by_name(conn: Conn, tenant_id: UUID, name: str) -> int | None:
    row = await fetch_one(conn, INTEGRATION_BY_NAME, {"tenant_id": tenant_id, "name": name})
    return int(row["id"]) if row else None


async def insert_integration(conn: Conn, tenant_id: UUID, *, kind: str, name: str, config: dict[str, Any],
                             secrets: dict[str, str], enabled: bool = True, is_demo: bool = False,
                             demo_stream: bool = False) -> int:
    row = await fetch_one(conn, INSERT_INTEGRATION, {
        "tenant_id": tenant_id, "kind": kind, "name": name, "config": Jsonb(config), "secrets": Jsonb(secrets),
        "enabled": enabled, "is_demo": is_demo, "demo_stream": demo_stream})
    return int(row["id"])  # type: ignore[index]


async def update_integration(conn: Conn, tenant_id: UUID, integration_id: int, *, name: str, config: dict[str, Any],
                             secrets: dict[str, str], enabled: bool, demo_stream: bool) -> None:
    await conn.execute(UPDATE_INTEGRATION, {
        "tenant_id": tenant_id, "id": integration_id, "name": name, "config": Jsonb(config),
        "secrets": Jsonb(secrets), "enabled": enabled, "demo_stream": demo_stream})


async def record_test(conn: Conn, tenant_id: UUID, integration_id: int, *, at: Any, success: bool, message: str,
                      details: dict[str, Any]) -> None:
    await conn.execute(RECORD_TEST, {"tenant_id": tenant_id, "id": integration_id, "at": at, "success": success,
                                     "message": message, "details": Jsonb(details)})


# ----------------------------------------------------------------------------- action log


async def log_action(conn: Conn, tenant_id: UUID, integration_id: int, *, action: str, success: bool,
                     message: str = "", duration_ms: int | None = None, actor_id: UUID | None = None,
                     actor_name: str = "system", details: dict[str, Any] | None = None) -> None:
    await conn.execute(INSERT_ACTION, {
        "tenant_id": tenant_id, "integration_id": integration_id, "action": action, "success": success,
        "message": message[:1000], "duration_ms": duration_ms, "actor_user_id": actor_id, "actor_name": actor_name,
        "details": Jsonb(details or {})})


async def error_history(conn: Conn, tenant_id: UUID, integration_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The source's error episodes, newest first (the open one, if any, is the current error)."""
    return await fetch_all(conn, ERROR_HISTORY, {"tenant_id": tenant_id, "integration_id": integration_id,
                                                 "limit": limit})


async def list_actions(conn: Conn, tenant_id: UUID, integration_id: int, *, page: int = 1,
                       page_size: int = 25) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "integration_id": integration_id}
    return await fetch_page(conn, LIST_ACTIONS, params, limit=page_size, offset=(page - 1) * page_size)


# ----------------------------------------------------------------------------- signals


async def upsert_signal(conn: Conn, tenant_id: UUID, integration_id: int, *, external_id: str, name: str | None,
                        path: str = "", data_type: str | None = None, eng_unit: str | None = None) -> int:
    row = await fetch_one(conn, UPSERT_SIGNAL, {
        "tenant_id": tenant_id, "integration_id": integration_id, "external_id": external_id,
        "name": name or external_id, "name_given": bool(name), "path": path or "", "data_type": data_type,
        "eng_unit": eng_unit})
    return int(row["id"])  # type: ignore[index]


async def signal_of_integration(conn: Conn, tenant_id: UUID, integration_id: int,
                                signal_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, SIGNAL_OF_INTEGRATION, {"tenant_id": tenant_id, "integration_id": integration_id,
                                                         "id": signal_id})


async def mapped_external_ids(conn: Conn, tenant_id: UUID, integration_id: int,
                              external_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not external_ids:
        return {}
    rows = await fetch_all(conn, MAPPED_EXTERNAL_IDS, {"tenant_id": tenant_id, "integration_id": integration_id,
                                                       "ids": external_ids})
    return {r["external_id"]: r for r in rows}


# ----------------------------------------------------------------------------- mappings


async def list_mappings(conn: Conn, tenant_id: UUID, integration_id: int, *, asset_id: int | None = None,
                        q: str | None = None, page: int = 1, page_size: int = 50) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "integration_id": integration_id, "asset_id": asset_id, "q": like_pattern(q)}
    return await fetch_page(conn, LIST_MAPPINGS, params, limit=page_size, offset=(page - 1) * page_size)


async def export_mappings(conn: Conn, tenant_id: UUID, integration_id: int) -> list[dict[str, Any]]:
    return await fetch_all(conn, EXPORT_MAPPINGS, {"tenant_id": tenant_id, "integration_id": integration_id})


async def get_mapping(conn: Conn, tenant_id: UUID, mapping_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_MAPPING, {"tenant_id": tenant_id, "id": mapping_id})


async def mapping_of_signal(conn: Conn, tenant_id: UUID, signal_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, MAPPING_OF_SIGNAL, {"tenant_id": tenant_id, "signal_id": signal_id})


async def insert_mapping(conn: Conn, tenant_id: UUID, signal_id: int, values: dict[str, Any]) -> int:
    params = {"tenant_id": tenant_id, "signal_id": signal_id, **{f: values[f] for f in MAPPING_FIELDS}}
    row = await fetch_one(conn, INSERT_MAPPING, params)
    return int(row["id"])  # type: ignore[index]


async def update_mapping(conn: Conn, tenant_id: UUID, mapping_id: int, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_MAPPING, {"tenant_id": tenant_id, "id": mapping_id,
                                        **{f: values[f] for f in MAPPING_FIELDS}})


async def delete_mapping(conn: Conn, tenant_id: UUID, mapping_id: int) -> bool:
    return await fetch_one(conn, DELETE_MAPPING, {"tenant_id": tenant_id, "id": mapping_id}) is not None


async def mapped_signals_for_asset(conn: Conn, tenant_id: UUID, asset_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The asset's mapped signals with their latest engineering value, quality name and limit level
    (see :func:`optria.integrations.live.with_latest`), for the asset detail page."""
    params = {"tenant_id": tenant_id, "asset_id": asset_id, "limit": limit}
    rows = await fetch_all(conn, MAPPED_SIGNALS_FOR_ASSET, params)
    return [live.with_latest(r) for r in rows]


# ----------------------------------------------------------------------------- assets


async def asset_choices(conn: Conn, tenant_id: UUID, limit: int = 2000) -> list[dict[str, Any]]:
    return await fetch_all(conn, ASSET_CHOICES, {"tenant_id": tenant_id, "limit": limit})


async def asset_ref(conn: Conn, tenant_id: UUID, asset_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, ASSET_REF, {"tenant_id": tenant_id, "id": asset_id})


async def asset_ids_by_code(conn: Conn, tenant_id: UUID, codes: list[str]) -> dict[str, int]:
    """Asset ids by code, keyed by the lower-cased code (codes are case-insensitive)."""
    if not codes:
        return {}
    rows = await fetch_all(conn, ASSET_IDS_BY_CODE, {"tenant_id": tenant_id, "codes": codes})
    return {r["code"].lower(): int(r["id"]) for r in rows}
