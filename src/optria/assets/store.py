"""SQL of the assets area: sites, units, assets, alerts, work orders, their histories and asset health.

Every statement filters by ``tenant_id`` (row-level security checks it again); callers run
them inside ``db.tenant(tenant_id)`` and pass the connection, so a change and its history
row or audit entry commit together. Codes are citext and compared as ``%(code)s::citext``.

Health: ``asset_health_latest`` holds one row per asset (upserted, never moved back in
time); ``asset_metrics_snapshot`` the series. Readers show :data:`EFFECTIVE_STATUS`, which
turns a missing or stale row into "nodata", never "normal".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.assets.models import STALE_AFTER_INTERVALS
from optria.db import Conn, fetch_all, fetch_one, fetch_page, like_pattern

# ----------------------------------------------------------------------------- health reading
# Both fragments need ``a`` (assets) and ``h`` (asset_health_latest, LEFT JOINed).
STALE = ("(h.asset_id IS NOT NULL"
         f" AND h.time < now() - make_interval(secs => a.expected_interval_s * {STALE_AFTER_INTERVALS}))")
EFFECTIVE_STATUS = f"(CASE WHEN h.asset_id IS NULL OR {STALE} THEN 'nodata' ELSE h.status END)"

ASSET_COLUMNS = f"""
a.id, a.code::text AS code, a.name, a.name_ar, a.asset_type, a.criticality, a.description, a.description_ar,
a.expected_interval_s,
a.created_at, a.updated_at,
a.site_id, s.code::text AS site_code, s.name AS site_name, s.name_ar AS site_name_ar, s.timezone AS site_timezone,
a.unit_id, u.code::text AS unit_code, u.name AS unit_name, u.name_ar AS unit_name_ar,
h.time AS health_time, h.health_score, h.failure_probability, h.status AS reported_status, h.source AS health_source,
{EFFECTIVE_STATUS} AS status, {STALE} AS stale
"""

ASSET_FROM = """
assets a
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
LEFT JOIN units u ON u.tenant_id = a.tenant_id AND u.id = a.unit_id
LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
"""

ACTIVE_COUNTS = """
(SELECT count(*) FROM alerts al WHERE al.tenant_id = %(tenant_id)s AND al.asset_id = p.id AND al.status <> 'cleared')
    AS active_alerts,
(SELECT count(*) FROM work_orders w WHERE w.tenant_id = %(tenant_id)s AND w.asset_id = p.id AND w.status <> 'closed')
    AS active_work_orders
"""

# Filters: a NULL parameter means "no filter"; %(q)s is a LIKE pattern with wildcards escaped.
LIST_ASSETS = f"""
SELECT p.*, {ACTIVE_COUNTS}
FROM (
    SELECT x.*, count(*) OVER () AS total
    FROM (
        SELECT {ASSET_COLUMNS}
        FROM {ASSET_FROM}
        WHERE a.tenant_id = %(tenant_id)s
          AND (%(site_id)s::bigint IS NULL OR a.site_id = %(site_id)s)
          AND (%(unit_id)s::bigint IS NULL OR a.unit_id = %(unit_id)s)
          AND (%(q)s::text IS NULL OR a.name ILIKE %(q)s OR a.code ILIKE %(q)s OR a.name_ar ILIKE %(q)s)
    ) x
    WHERE (%(status)s::text IS NULL OR x.status = %(status)s)
    ORDER BY x.site_name, x.unit_name NULLS FIRST, x.code
    LIMIT %(limit)s OFFSET %(offset)s
) p
ORDER BY p.site_name, p.unit_name NULLS FIRST, p.code
"""

GET_ASSET = f"""
SELECT p.*, {ACTIVE_COUNTS}
FROM (SELECT {ASSET_COLUMNS} FROM {ASSET_FROM} WHERE a.tenant_id = %(tenant_id)s AND a.id = %(id)s) p
"""

ASSET_EXISTS = "SELECT id, code::text AS code, name, name_ar FROM assets WHERE tenant_id = %(tenant_id)s AND id = %(id)s"

LOCK_ASSET = """
SELECT id, site_id, unit_id, code::text AS code, name, name_ar, asset_type, criticality, description, description_ar,
       expected_interval_s
FROM assets WHERE tenant_id = %(tenant_id)s AND id = %(id)s
FOR UPDATE
"""

ASSET_CODE_TAKEN = """
SELECT 1 FROM assets WHERE tenant_id = %(tenant_id)s AND code = %(code)s::citext AND id <> coalesce(%(id)s::bigint, 0)
"""

INSERT_ASSET = """
INSERT INTO assets (tenant_id, site_id, unit_id, code, name, name_ar, asset_type, criticality, description, description_ar,
                    expected_interval_s, created_by)
VALUES (%(tenant_id)s, %(site_id)s, %(unit_id)s, %(code)s, %(name)s, %(name_ar)s, %(asset_type)s, %(criticality)s,
        %(description)s, %(description_ar)s, %(expected_interval_s)s, %(created_by)s)
RETURNING id
"""

UPDATE_ASSET = """
UPDATE assets SET site_id = %(site_id)s, unit_id = %(unit_id)s, code = %(code)s, name = %(name)s, name_ar = %(name_ar)s,
       asset_type = %(asset_type)s, criticality = %(criticality)s, description = %(description)s,
       description_ar = %(description_ar)s,
       expected_interval_s = %(expected_interval_s)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

# Seeding: insert by code unless present; the seed then reads ids back by code.
INSERT_ASSET_IF_ABSENT = """
INSERT INTO assets (tenant_id, site_id, unit_id, code, name, name_ar, asset_type, criticality, description, description_ar)
VALUES (%(tenant_id)s, %(site_id)s, %(unit_id)s, %(code)s, %(name)s, %(name_ar)s, %(asset_type)s, %(criticality)s,
        %(description)s, %(description_ar)s)
ON CONFLICT (tenant_id, code) DO NOTHING
RETURNING id
"""

ASSET_IDS_BY_CODE = "SELECT code::text AS code, id FROM assets WHERE tenant_id = %(tenant_id)s"

# ----------------------------------------------------------------------------- sites and units

# The tenant's time zone for pages that span its sites: the zone most of its sites use.
TENANT_TIMEZONE = """
SELECT timezone FROM sites WHERE tenant_id = %(tenant_id)s
GROUP BY timezone ORDER BY count(*) DESC, timezone LIMIT 1
"""


async def tenant_timezone(conn: Conn, tenant_id: UUID) -> str | None:
    row = await fetch_one(conn, TENANT_TIMEZONE, {"tenant_id": tenant_id})
    return row["timezone"] if row else None


LIST_SITES = """
SELECT s.id, s.code::text AS code, s.name, s.name_ar, s.description, s.description_ar, s.timezone, s.created_at,
       s.updated_at,
       (SELECT count(*) FROM units u WHERE u.tenant_id = s.tenant_id AND u.site_id = s.id) AS unit_count,
       (SELECT count(*) FROM assets a WHERE a.tenant_id = s.tenant_id AND a.site_id = s.id) AS asset_count
FROM sites s
WHERE s.tenant_id = %(tenant_id)s
ORDER BY s.name, s.id
"""

GET_SITE = """
SELECT id, code::text AS code, name, name_ar, description, description_ar, timezone FROM sites
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

SITE_CODE_TAKEN = """
SELECT 1 FROM sites WHERE tenant_id = %(tenant_id)s AND code = %(code)s::citext AND id <> coalesce(%(id)s::bigint, 0)
"""

INSERT_SITE = """
INSERT INTO sites (tenant_id, code, name, name_ar, description, description_ar, timezone)
VALUES (%(tenant_id)s, %(code)s, %(name)s, %(name_ar)s, %(description)s, %(description_ar)s, %(timezone)s)
RETURNING id
"""

INSERT_SITE_IF_ABSENT = """
INSERT INTO sites (tenant_id, code, name, name_ar, description, description_ar, timezone)
VALUES (%(tenant_id)s, %(code)s, %(name)s, %(name_ar)s, %(description)s, %(description_ar)s, %(timezone)s)
ON CONFLICT (tenant_id, code) DO NOTHING
"""

UPDATE_SITE = """
UPDATE sites SET code = %(code)s, name = %(name)s, name_ar = %(name_ar)s, description = %(description)s,
       description_ar = %(description_ar)s,
       timezone = %(timezone)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

SITE_IDS_BY_CODE = "SELECT code::text AS code, id FROM sites WHERE tenant_id = %(tenant_id)s"

LIST_UNITS = """
SELECT u.id, u.site_id, u.code::text AS code, u.name, u.name_ar, u.created_at, u.updated_at,
       s.code::text AS site_code, s.name AS site_name, s.name_ar AS site_name_ar,
       (SELECT count(*) FROM assets a WHERE a.tenant_id = u.tenant_id AND a.unit_id = u.id) AS asset_count
FROM units u
JOIN sites s ON s.tenant_id = u.tenant_id AND s.id = u.site_id
WHERE u.tenant_id = %(tenant_id)s AND (%(site_id)s::bigint IS NULL OR u.site_id = %(site_id)s)
ORDER BY s.name, s.id, u.name, u.id
"""

GET_UNIT = """
SELECT id, site_id, code::text AS code, name, name_ar FROM units WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

UNIT_CODE_TAKEN = """
SELECT 1 FROM units WHERE tenant_id = %(tenant_id)s AND site_id = %(site_id)s AND code = %(code)s::citext
  AND id <> coalesce(%(id)s::bigint, 0)
"""

# An asset's unit lies in the asset's site, so a unit with assets cannot move to another site.
UNIT_HAS_ASSETS = "SELECT 1 FROM assets WHERE tenant_id = %(tenant_id)s AND unit_id = %(id)s LIMIT 1"

INSERT_UNIT = """
INSERT INTO units (tenant_id, site_id, code, name, name_ar)
VALUES (%(tenant_id)s, %(site_id)s, %(code)s, %(name)s, %(name_ar)s)
RETURNING id
"""

INSERT_UNIT_IF_ABSENT = """
INSERT INTO units (tenant_id, site_id, code, name, name_ar)
VALUES (%(tenant_id)s, %(site_id)s, %(code)s, %(name)s, %(name_ar)s)
ON CONFLICT (tenant_id, site_id, code) DO NOTHING
"""

UPDATE_UNIT = """
UPDATE units SET site_id = %(site_id)s, code = %(code)s, name = %(name)s, name_ar = %(name_ar)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

UNIT_IDS_BY_CODE = """
SELECT s.code::text AS site_code, u.code::text AS code, u.id
FROM units u JOIN sites s ON s.tenant_id = u.tenant_id AND s.id = u.site_id
WHERE u.tenant_id = %(tenant_id)s
"""

# ----------------------------------------------------------------------------- alerts

ALERT_COLUMNS = """
al.id, al.asset_id, al.severity, al.title, al.description, al.status, al.source, al.source_ref,
al.raised_at, al.acknowledged_at, al.cleared_at,
coalesce(ru.display_name, ru.username::text) AS raised_by,
coalesce(au.display_name, au.username::text) AS acknowledged_by,
coalesce(cu.display_name, cu.username::text) AS cleared_by,
a.code::text AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
a.site_id, s.name AS site_name, s.name_ar AS site_name_ar
"""

ALERT_FROM = """
alerts al
JOIN assets a ON a.tenant_id = al.tenant_id AND a.id = al.asset_id
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
LEFT JOIN users ru ON ru.tenant_id = al.tenant_id AND ru.id = al.raised_by
LEFT JOIN users au ON au.tenant_id = al.tenant_id AND au.id = al.acknowledged_by
LEFT JOIN users cu ON cu.tenant_id = al.tenant_id AND cu.id = al.cleared_by
"""

# status 'active' means "not cleared".
LIST_ALERTS = f"""
SELECT {ALERT_COLUMNS}, count(*) OVER () AS total
FROM {ALERT_FROM}
WHERE al.tenant_id = %(tenant_id)s
  AND (%(status)s::text IS NULL OR al.status = %(status)s OR (%(status)s = 'active' AND al.status <> 'cleared'))
  AND (%(severity)s::text IS NULL OR al.severity = %(severity)s)
  AND (%(asset_id)s::bigint IS NULL OR al.asset_id = %(asset_id)s)
  AND (%(site_id)s::bigint IS NULL OR a.site_id = %(site_id)s)
ORDER BY (al.status = 'cleared'), al.raised_at DESC, al.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

GET_ALERT = f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE al.tenant_id = %(tenant_id)s AND al.id = %(id)s"

ALERT_OF_ASSET = "SELECT id, status FROM alerts WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND asset_id = %(asset_id)s"

INSERT_ALERT = """
INSERT INTO alerts (tenant_id, asset_id, severity, title, description, source, source_ref, raised_by)
VALUES (%(tenant_id)s, %(asset_id)s, %(severity)s, %(title)s, %(description)s, %(source)s, %(source_ref)s, %(actor_id)s)
ON CONFLICT (tenant_id, asset_id, source, source_ref) WHERE status <> 'cleared' AND source_ref IS NOT NULL DO NOTHING
RETURNING id, status
"""

ACKNOWLEDGE_ALERT = """
UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = %(actor_id)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

CLEAR_ALERT = """
UPDATE alerts SET status = 'cleared', cleared_at = now(), cleared_by = %(actor_id)s
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

ALERT_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
       count(*) FILTER (WHERE status <> 'cleared') AS active,
       count(*) FILTER (WHERE status <> 'cleared' AND severity = 'critical') AS active_critical,
       count(*) FILTER (WHERE status <> 'cleared' AND severity = 'high') AS active_high
FROM alerts WHERE tenant_id = %(tenant_id)s
"""

# ----------------------------------------------------------------------------- work orders

WORK_ORDER_COLUMNS = """
w.id, w.asset_id, w.alert_id, w.title, w.description, w.priority, w.status, w.created_at, w.updated_at, w.closed_at,
coalesce(cu.display_name, cu.username::text) AS created_by,
coalesce(xu.display_name, xu.username::text) AS closed_by,
a.code::text AS asset_code, a.name AS asset_name, a.name_ar AS asset_name_ar,
a.site_id, s.name AS site_name, s.name_ar AS site_name_ar
"""

WORK_ORDER_FROM = """
work_orders w
JOIN assets a ON a.tenant_id = w.tenant_id AND a.id = w.asset_id
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
LEFT JOIN users cu ON cu.tenant_id = w.tenant_id AND cu.id = w.created_by
LEFT JOIN users xu ON xu.tenant_id = w.tenant_id AND xu.id = w.closed_by
"""

PRIORITY_RANK = "(CASE w.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END)"

# status 'active' means "not closed".
LIST_WORK_ORDERS = f"""
SELECT {WORK_ORDER_COLUMNS}, count(*) OVER () AS total
FROM {WORK_ORDER_FROM}
WHERE w.tenant_id = %(tenant_id)s
  AND (%(status)s::text IS NULL OR w.status = %(status)s OR (%(status)s = 'active' AND w.status <> 'closed'))
  AND (%(priority)s::text IS NULL OR w.priority = %(priority)s)
  AND (%(asset_id)s::bigint IS NULL OR w.asset_id = %(asset_id)s)
  AND (%(site_id)s::bigint IS NULL OR a.site_id = %(site_id)s)
ORDER BY (w.status = 'closed'), {PRIORITY_RANK}, w.created_at DESC, w.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

GET_WORK_ORDER = f"SELECT {WORK_ORDER_COLUMNS} FROM {WORK_ORDER_FROM} WHERE w.tenant_id = %(tenant_id)s AND w.id = %(id)s"

INSERT_WORK_ORDER = """
INSERT INTO work_orders (tenant_id, asset_id, alert_id, title, description, priority, created_by)
VALUES (%(tenant_id)s, %(asset_id)s, %(alert_id)s, %(title)s, %(description)s, %(priority)s, %(actor_id)s)
RETURNING id
"""

SET_WORK_ORDER_STATUS = """
UPDATE work_orders SET status = %(status)s, updated_at = now(),
       closed_at = CASE WHEN %(status)s = 'closed' THEN now() END,
       closed_by = CASE WHEN %(status)s = 'closed' THEN %(actor_id)s::uuid END
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

WORK_ORDER_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
       count(*) FILTER (WHERE status <> 'closed') AS active,
       count(*) FILTER (WHERE status <> 'closed' AND priority = 'urgent') AS active_urgent
FROM work_orders WHERE tenant_id = %(tenant_id)s
"""

# ----------------------------------------------------------------------------- lifecycle of alerts and work orders
# Both are items of an asset with a status; each change is locked, applied and written to the item's history
# table (``alert_history`` / ``work_order_history``, read by the Black Box collectors) by the same statements.

ITEM_KINDS = ("alert", "work_order")

LOCK_ITEM = {kind: f"""
SELECT id, asset_id, status FROM {kind}s WHERE tenant_id = %(tenant_id)s AND id = %(id)s FOR UPDATE
""" for kind in ITEM_KINDS}

# (kind, new status) → the update; an alert records who acknowledged or cleared it and when.
SET_ITEM_STATUS = {("alert", "acknowledged"): ACKNOWLEDGE_ALERT, ("alert", "cleared"): CLEAR_ALERT,
                   ("work_order", "in_progress"): SET_WORK_ORDER_STATUS, ("work_order", "closed"): SET_WORK_ORDER_STATUS}

INSERT_ITEM_HISTORY = {kind: f"""
INSERT INTO {kind}_history (tenant_id, {kind}_id, asset_id, action, from_status, to_status, actor_user_id, actor_name,
                            note)
VALUES (%(tenant_id)s, %(item_id)s, %(asset_id)s, %(action)s, %(from_status)s, %(to_status)s, %(actor_id)s,
        %(actor_name)s, %(note)s)
""" for kind in ITEM_KINDS}

# ----------------------------------------------------------------------------- dashboard

STATUS_COUNTS = f"""
SELECT {EFFECTIVE_STATUS} AS status, count(*) AS n
FROM assets a LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
WHERE a.tenant_id = %(tenant_id)s
GROUP BY 1
"""

# Assets with a fresh score, riskiest first: highest failure probability, then lowest health.
AT_RISK = f"""
SELECT p.*, {ACTIVE_COUNTS}
FROM (
    SELECT {ASSET_COLUMNS} FROM {ASSET_FROM}
    WHERE a.tenant_id = %(tenant_id)s AND h.asset_id IS NOT NULL AND NOT {STALE} AND h.status <> 'nodata'
    ORDER BY h.failure_probability DESC NULLS LAST, h.health_score ASC NULLS LAST, a.code
    LIMIT %(limit)s
) p
ORDER BY p.failure_probability DESC NULLS LAST, p.health_score ASC NULLS LAST, p.code
"""

# ----------------------------------------------------------------------------- health writing (scoring job)

INSERT_HEALTH_SNAPSHOT = """
INSERT INTO asset_metrics_snapshot (tenant_id, asset_id, time, health_score, failure_probability, status, source,
                                    contributing)
VALUES (%(tenant_id)s, %(asset_id)s, %(time)s, %(health_score)s, %(failure_probability)s, %(status)s, %(source)s,
        %(contributing)s)
ON CONFLICT (tenant_id, asset_id, time) DO UPDATE SET
    health_score = EXCLUDED.health_score, failure_probability = EXCLUDED.failure_probability,
    status = EXCLUDED.status, source = EXCLUDED.source, contributing = EXCLUDED.contributing
"""

UPSERT_HEALTH_LATEST = """
INSERT INTO asset_health_latest (tenant_id, asset_id, time, health_score, failure_probability, status, source,
                                 contributing, updated_at)
VALUES (%(tenant_id)s, %(asset_id)s, %(time)s, %(health_score)s, %(failure_probability)s, %(status)s, %(source)s,
        %(contributing)s, now())
ON CONFLICT (tenant_id, asset_id) DO UPDATE SET
    time = EXCLUDED.time, health_score = EXCLUDED.health_score, failure_probability = EXCLUDED.failure_probability,
    status = EXCLUDED.status, source = EXCLUDED.source, contributing = EXCLUDED.contributing, updated_at = now()
WHERE asset_health_latest.time <= EXCLUDED.time
"""


# ----------------------------------------------------------------------------- assets


async def list_assets(conn: Conn, tenant_id: UUID, *, site_id: int | None = None, unit_id: int | None = None,
                      status: str | None = None, q: str | None = None, page: int = 1,
                      page_size: int = 25) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "site_id": site_id, "unit_id": unit_id, "status": status, "q": like_pattern(q)}
    return await fetch_page(conn, LIST_ASSETS, params, limit=page_size, offset=(page - 1) * page_size)


async def get_asset(conn: Conn, tenant_id: UUID, asset_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_ASSET, {"tenant_id": tenant_id, "id": asset_id})


async def asset_exists(conn: Conn, tenant_id: UUID, asset_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, ASSET_EXISTS, {"tenant_id": tenant_id, "id": asset_id})


async def lock_asset(conn: Conn, tenant_id: UUID, asset_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, LOCK_ASSET, {"tenant_id": tenant_id, "id": asset_id})


async def asset_code_taken(conn: Conn, tenant_id: UUID, code: str, asset_id: int | None = None) -> bool:
    return await fetch_one(conn, ASSET_CODE_TAKEN, {"tenant_id": tenant_id, "code": code, "id": asset_id}) is not None


async def insert_asset(conn: Conn, tenant_id: UUID, values: dict[str, Any], created_by: UUID | None) -> int:
    row = await fetch_one(conn, INSERT_ASSET, {"description_ar": None, **values, "tenant_id": tenant_id,
                                               "created_by": created_by})
    return int(row["id"])  # type: ignore[index]


async def update_asset(conn: Conn, tenant_id: UUID, asset_id: int, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_ASSET, {"description_ar": None, **values, "tenant_id": tenant_id, "id": asset_id})


# ----------------------------------------------------------------------------- sites and units


async def list_sites(conn: Conn, tenant_id: UUID) -> list[dict[str, Any]]:
    return await fetch_all(conn, LIST_SITES, {"tenant_id": tenant_id})


async def get_site(conn: Conn, tenant_id: UUID, site_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_SITE, {"tenant_id": tenant_id, "id": site_id})


async def site_code_taken(conn: Conn, tenant_id: UUID, code: str, site_id: int | None = None) -> bool:
    return await fetch_one(conn, SITE_CODE_TAKEN, {"tenant_id": tenant_id, "code": code, "id": site_id}) is not None


async def insert_site(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> int:
    row = await fetch_one(conn, INSERT_SITE, {"description_ar": None, **values, "tenant_id": tenant_id})
    return int(row["id"])  # type: ignore[index]


async def update_site(conn: Conn, tenant_id: UUID, site_id: int, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_SITE, {"description_ar": None, **values, "tenant_id": tenant_id, "id": site_id})


async def list_units(conn: Conn, tenant_id: UUID, site_id: int | None = None) -> list[dict[str, Any]]:
    return await fetch_all(conn, LIST_UNITS, {"tenant_id": tenant_id, "site_id": site_id})


async def get_unit(conn: Conn, tenant_id: UUID, unit_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_UNIT, {"tenant_id": tenant_id, "id": unit_id})


async def unit_code_taken(conn: Conn, tenant_id: UUID, site_id: int, code: str, unit_id: int | None = None) -> bool:
    params = {"tenant_id": tenant_id, "site_id": site_id, "code": code, "id": unit_id}
    return await fetch_one(conn, UNIT_CODE_TAKEN, params) is not None


async def unit_has_assets(conn: Conn, tenant_id: UUID, unit_id: int) -> bool:
    return await fetch_one(conn, UNIT_HAS_ASSETS, {"tenant_id": tenant_id, "id": unit_id}) is not None


async def insert_unit(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> int:
    row = await fetch_one(conn, INSERT_UNIT, {**values, "tenant_id": tenant_id})
    return int(row["id"])  # type: ignore[index]


async def update_unit(conn: Conn, tenant_id: UUID, unit_id: int, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_UNIT, {**values, "tenant_id": tenant_id, "id": unit_id})


# ----------------------------------------------------------------------------- alerts


async def list_alerts(conn: Conn, tenant_id: UUID, *, status: str | None = None, severity: str | None = None,
                      asset_id: int | None = None, site_id: int | None = None, page: int = 1,
                      page_size: int = 25) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "status": status, "severity": severity, "asset_id": asset_id, "site_id": site_id}
    return await fetch_page(conn, LIST_ALERTS, params, limit=page_size, offset=(page - 1) * page_size)


async def get_alert(conn: Conn, tenant_id: UUID, alert_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_ALERT, {"tenant_id": tenant_id, "id": alert_id})


async def alert_of_asset(conn: Conn, tenant_id: UUID, alert_id: int, asset_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, ALERT_OF_ASSET, {"tenant_id": tenant_id, "id": alert_id, "asset_id": asset_id})


async def insert_alert(conn: Conn, tenant_id: UUID, asset_id: int, values: dict[str, Any],
                       actor_id: UUID | None) -> int | None:
    """The new alert's id, or None when a live alert with the same (source, source_ref) exists."""
    row = await fetch_one(conn, INSERT_ALERT, {**values, "tenant_id": tenant_id, "asset_id": asset_id,
                                               "actor_id": actor_id})
    return int(row["id"]) if row else None


async def alert_counts(conn: Conn, tenant_id: UUID) -> dict[str, int]:
    return dict(await fetch_one(conn, ALERT_COUNTS, {"tenant_id": tenant_id}) or {})


# ----------------------------------------------------------------------------- work orders


async def list_work_orders(conn: Conn, tenant_id: UUID, *, status: str | None = None, priority: str | None = None,
                           asset_id: int | None = None, site_id: int | None = None, page: int = 1,
                           page_size: int = 25) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "status": status, "priority": priority, "asset_id": asset_id, "site_id": site_id}
    return await fetch_page(conn, LIST_WORK_ORDERS, params, limit=page_size, offset=(page - 1) * page_size)


async def get_work_order(conn: Conn, tenant_id: UUID, work_order_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_WORK_ORDER, {"tenant_id": tenant_id, "id": work_order_id})


async def insert_work_order(conn: Conn, tenant_id: UUID, asset_id: int, values: dict[str, Any],
                            actor_id: UUID | None) -> int:
    row = await fetch_one(conn, INSERT_WORK_ORDER, {**values, "tenant_id": tenant_id, "asset_id": asset_id,
                                                    "actor_id": actor_id})
    return int(row["id"])  # type: ignore[index]


async def work_order_counts(conn: Conn, tenant_id: UUID) -> dict[str, int]:
    return dict(await fetch_one(conn, WORK_ORDER_COUNTS, {"tenant_id": tenant_id}) or {})


# ----------------------------------------------------------------------------- lifecycle of alerts and work orders


async def lock_item(conn: Conn, tenant_id: UUID, kind: str, item_id: int) -> dict[str, Any] | None:
    """The alert or work order (``kind``) with its asset and status, locked for this transaction."""
    return await fetch_one(conn, LOCK_ITEM[kind], {"tenant_id": tenant_id, "id": item_id})


async def set_item_status(conn: Conn, tenant_id: UUID, kind: str, item_id: int, status: str,
                          actor_id: UUID | None) -> None:
    await conn.execute(SET_ITEM_STATUS[kind, status], {"tenant_id": tenant_id, "id": item_id, "status": status,
                                                       "actor_id": actor_id})


async def insert_item_history(conn: Conn, tenant_id: UUID, kind: str, *, item_id: int, asset_id: int, action: str,
                              from_status: str | None, to_status: str, actor_id: UUID | None, actor_name: str,
                              note: str = "") -> None:
    await conn.execute(INSERT_ITEM_HISTORY[kind], {
        "tenant_id": tenant_id, "item_id": item_id, "asset_id": asset_id, "action": action,
        "from_status": from_status, "to_status": to_status, "actor_id": actor_id, "actor_name": actor_name,
        "note": note})


# ----------------------------------------------------------------------------- dashboard and health


async def status_counts(conn: Conn, tenant_id: UUID) -> dict[str, int]:
    rows = await fetch_all(conn, STATUS_COUNTS, {"tenant_id": tenant_id})
    return {r["status"]: int(r["n"]) for r in rows}


async def at_risk_assets(conn: Conn, tenant_id: UUID, limit: int = 5) -> list[dict[str, Any]]:
    return await fetch_all(conn, AT_RISK, {"tenant_id": tenant_id, "limit": limit})


async def record_health(conn: Conn, tenant_id: UUID, asset_id: int, *, time: datetime, status: str,
                        health_score: float | None, failure_probability: float | None, source: str = "rules",
                        contributing: list[dict[str, Any]] | None = None) -> None:
    """Append a health snapshot and move the asset's latest row forward (never back in time).

    For the twin's scoring job; it runs in the job's tenant transaction.
    """
    params = {"tenant_id": tenant_id, "asset_id": asset_id, "time": time, "status": status,
              "health_score": health_score, "failure_probability": failure_probability, "source": source,
              "contributing": Jsonb(contributing or [])}
    await conn.execute(INSERT_HEALTH_SNAPSHOT, params)
    await conn.execute(UPSERT_HEALTH_LATEST, params)


# ----------------------------------------------------------------------------- seeding


async def ensure_site(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> None:
    await conn.execute(INSERT_SITE_IF_ABSENT, {"description_ar": None, **values, "tenant_id": tenant_id})


async def ensure_unit(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> None:
    await conn.execute(INSERT_UNIT_IF_ABSENT, {**values, "tenant_id": tenant_id})


async def ensure_asset(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> bool:
    """True when the asset was created now (False: a row with that code exists)."""
    params = {"description_ar": None, **values, "tenant_id": tenant_id}
    return await fetch_one(conn, INSERT_ASSET_IF_ABSENT, params) is not None


async def site_ids_by_code(conn: Conn, tenant_id: UUID) -> dict[str, int]:
    return {r["code"].lower(): r["id"] for r in await fetch_all(conn, SITE_IDS_BY_CODE, {"tenant_id": tenant_id})}


async def unit_ids_by_code(conn: Conn, tenant_id: UUID) -> dict[tuple[str, str], int]:
    rows = await fetch_all(conn, UNIT_IDS_BY_CODE, {"tenant_id": tenant_id})
    return {(r["site_code"].lower(), r["code"].lower()): r["id"] for r in rows}
