"""SQL for the platform-owner console (explicit platform scope throughout)."""

from __future__ import annotations

from optria.db import Database

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


class IngestionStore:
    """Cross-tenant ingestion figures for the platform owner (explicit platform scope)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def overview(self, integration_id: int | None = None) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            cur = await conn.execute(INGESTION_OVERVIEW, {"tenant": None, "integration": integration_id})
            return await cur.fetchall()

    async def lag_history(self, integration_id: int | None = None) -> list[dict]:
        async with self.db.platform("ingestion_dashboard") as conn:
            cur = await conn.execute(LAG_HISTORY, {"integration": integration_id})
            return await cur.fetchall()
