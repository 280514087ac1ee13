"""SQL of the ingest service: what to stream, leases, health, and where each signal left off.

The ingest service works across tenants, so every transaction here runs in the explicit
``platform("ingest")`` scope; rows it writes still carry their tenant id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from optria.db import Database
from optria.timeseries import store as timeseries

ACTIVE_INTEGRATIONS = """
SELECT i.tenant_id, i.id, i.kind, i.name, i.config, i.secrets, i.updated_at,
       coalesce(json_agg(json_build_object('signal_id', s.id, 'external_id', s.external_id,
                                           'expected_interval_s', m.expected_interval_s)
                         ORDER BY s.id) FILTER (WHERE s.id IS NOT NULL), '[]') AS signals,
       max(m.updated_at) AS mappings_updated_at
FROM integrations i
JOIN tenants t ON t.id = i.tenant_id AND t.is_active
JOIN external_signal_mappings m ON m.tenant_id = i.tenant_id AND m.enabled
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id AND s.integration_id = i.id
WHERE i.enabled AND (NOT i.is_demo OR i.demo_stream)
GROUP BY i.tenant_id, i.id
ORDER BY i.id
"""

ACQUIRE_LEASE = """
INSERT INTO ingest_leases AS l (tenant_id, integration_id, worker_id, acquired_at, expires_at)
VALUES (%(tenant)s, %(integration)s, %(worker)s, now(), now() + %(ttl)s)
ON CONFLICT (tenant_id, integration_id) DO UPDATE
SET worker_id = EXCLUDED.worker_id, acquired_at = CASE WHEN l.worker_id = EXCLUDED.worker_id THEN l.acquired_at ELSE now() END,
    expires_at = EXCLUDED.expires_at
WHERE l.expires_at < now() OR l.worker_id = EXCLUDED.worker_id
RETURNING worker_id
"""

RENEW_LEASES = """
UPDATE ingest_leases SET expires_at = now() + %(ttl)s
WHERE worker_id = %(worker)s AND integration_id = ANY(%(ids)s::int8[]) AND expires_at > now()
RETURNING integration_id
"""

RELEASE_LEASE = "DELETE FROM ingest_leases WHERE worker_id = %(worker)s AND integration_id = %(integration)s"
RELEASE_ALL = "DELETE FROM ingest_leases WHERE worker_id = %(worker)s"

# This process is alive for another lease period, able to run max_leases integrations; what the
# live processes (itself included) may run; rows of processes gone for an hour are cleared.
ANNOUNCE_PROCESS = """
INSERT INTO ingest_processes (worker_id, expires_at, max_leases) VALUES (%(worker)s, now() + %(ttl)s, %(max_leases)s)
ON CONFLICT (worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, max_leases = EXCLUDED.max_leases
"""
LIVE_PROCESSES = "SELECT max_leases FROM ingest_processes WHERE expires_at > now()"
FORGET_PROCESSES = "DELETE FROM ingest_processes WHERE expires_at < now() - interval '1 hour'"
RETIRE_PROCESS = "DELETE FROM ingest_processes WHERE worker_id = %(worker)s"
STOP_ALL_HEALTH = """
UPDATE ingest_health SET state = 'stopped', connected = false, heartbeat_at = now() WHERE worker_id = %(worker)s
"""

UPSERT_HEALTH = """
INSERT INTO ingest_health AS h (tenant_id, integration_id, worker_id, state, connected, samples_per_s, samples_total,
    rejected_total, reconnects, lag_p50_ms, lag_p99_ms, queue_depth, spool_bytes, last_error, last_error_at,
    last_sample_time, backfill_rows, backfill_oldest_s, backfill_at, restarts, last_restart_reason, last_restart_at,
    heartbeat_at)
VALUES (%(tenant_id)s, %(integration_id)s, %(worker_id)s, %(state)s, %(connected)s, %(samples_per_s)s,
    %(samples_total)s, %(rejected_total)s, %(reconnects)s, %(lag_p50_ms)s, %(lag_p99_ms)s, %(queue_depth)s,
    %(spool_bytes)s, %(last_error)s, %(last_error_at)s, %(last_sample_time)s, %(backfill_rows)s,
    %(backfill_oldest_s)s, %(backfill_at)s, %(restarts)s, %(last_restart_reason)s, %(last_restart_at)s, now())
ON CONFLICT (tenant_id, integration_id) DO UPDATE SET
    worker_id = EXCLUDED.worker_id, state = EXCLUDED.state, connected = EXCLUDED.connected,
    samples_per_s = EXCLUDED.samples_per_s, samples_total = EXCLUDED.samples_total,
    rejected_total = EXCLUDED.rejected_total, reconnects = EXCLUDED.reconnects, lag_p50_ms = EXCLUDED.lag_p50_ms,
    lag_p99_ms = EXCLUDED.lag_p99_ms, queue_depth = EXCLUDED.queue_depth, spool_bytes = EXCLUDED.spool_bytes,
    last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at,
    last_sample_time = coalesce(EXCLUDED.last_sample_time, h.last_sample_time),
    backfill_rows = EXCLUDED.backfill_rows, backfill_oldest_s = coalesce(EXCLUDED.backfill_oldest_s, h.backfill_oldest_s),
    backfill_at = coalesce(EXCLUDED.backfill_at, h.backfill_at), restarts = EXCLUDED.restarts,
    last_restart_reason = coalesce(EXCLUDED.last_restart_reason, h.last_restart_reason),
    last_restart_at = coalesce(EXCLUDED.last_restart_at, h.last_restart_at), heartbeat_at = now()
"""

# The open error episode of an integration follows its current error: opened (or its message and
# count refreshed) while there is one, closed once the worker reports the source works again.
OPEN_ERROR = """
INSERT INTO ingest_errors AS e (tenant_id, integration_id, message, first_at, last_at)
VALUES (%(tenant_id)s, %(integration_id)s, %(last_error)s, coalesce(%(error_since)s, now()), coalesce(%(last_error_at)s, now()))
ON CONFLICT (tenant_id, integration_id) WHERE resolved_at IS NULL DO UPDATE
SET message = EXCLUDED.message, occurrences = e.occurrences + (EXCLUDED.last_at > e.last_at)::int,
    last_at = greatest(e.last_at, EXCLUDED.last_at)
"""
CLOSE_ERROR = """
UPDATE ingest_errors SET resolved_at = now()
WHERE tenant_id = %(tenant_id)s AND integration_id = %(integration_id)s AND resolved_at IS NULL
"""

NOTE_GAP = """
INSERT INTO ingest_gaps AS g (tenant_id, integration_id, since) VALUES (%(tenant)s, %(integration)s, %(since)s)
ON CONFLICT (tenant_id, integration_id) DO UPDATE SET since = EXCLUDED.since, noted_at = now()
"""
CLEAR_GAP = "DELETE FROM ingest_gaps WHERE tenant_id = %(tenant)s AND integration_id = %(integration)s"
OPEN_GAP = "SELECT since FROM ingest_gaps WHERE tenant_id = %(tenant)s AND integration_id = %(integration)s"

UPSERT_SIGNAL_STATUS = """
INSERT INTO ingest_signal_status AS st (tenant_id, signal_id, integration_id, rejected_total, last_reason, last_detail,
    last_rejected_at, updated_at)
VALUES (%(tenant_id)s, %(signal_id)s, %(integration_id)s, %(rejected)s, %(reason)s, %(detail)s, %(at)s, now())
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET rejected_total = st.rejected_total + EXCLUDED.rejected_total, last_reason = EXCLUDED.last_reason,
    last_detail = EXCLUDED.last_detail, last_rejected_at = EXCLUDED.last_rejected_at,
    integration_id = EXCLUDED.integration_id, updated_at = now()
"""

INSERT_HEALTH_HISTORY = """
INSERT INTO ingest_health_history (tenant_id, integration_id, time, state, connected, samples_per_s, lag_p50_ms,
    lag_p99_ms, queue_depth, spool_bytes)
VALUES (%(tenant_id)s, %(integration_id)s, now(), %(state)s, %(connected)s, %(samples_per_s)s, %(lag_p50_ms)s,
    %(lag_p99_ms)s, %(queue_depth)s, %(spool_bytes)s)
ON CONFLICT DO NOTHING
"""

STOP_HEALTH = """
UPDATE ingest_health SET state = 'stopped', connected = false, heartbeat_at = now()
WHERE integration_id = %(integration)s AND worker_id = %(worker)s
"""



@dataclass
class SignalSpec:
    signal_id: int
    external_id: str
    expected_interval_s: int = 60


@dataclass
class IntegrationSpec:
    tenant_id: UUID
    id: int
    kind: str
    name: str
    config: dict[str, Any]
    secrets: dict[str, str]       # still sealed
    version: str                  # changes when the integration or its mappings change
    signals: list[SignalSpec] = field(default_factory=list)

    def by_external_id(self) -> dict[str, int]:
        return {s.external_id: s.signal_id for s in self.signals}


class IngestStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def active_integrations(self) -> list[IntegrationSpec]:
        async with self.db.platform("ingest") as conn:
            rows = await (await conn.execute(ACTIVE_INTEGRATIONS)).fetchall()
        out = []
        for r in rows:
            signals = [SignalSpec(**s) for s in r["signals"]]
            version = f"{r['updated_at'].isoformat()}|{r['mappings_updated_at'].isoformat()}|{len(signals)}"
            out.append(IntegrationSpec(r["tenant_id"], r["id"], r["kind"], r["name"], r["config"] or {},
                                       r["secrets"] or {}, version, signals))
        return out

    async def acquire(self, spec: IntegrationSpec, worker: str, ttl) -> bool:
        async with self.db.platform("ingest") as conn:
            row = await (await conn.execute(ACQUIRE_LEASE, {"tenant": spec.tenant_id, "integration": spec.id,
                                                            "worker": worker, "ttl": ttl})).fetchone()
            return row is not None

    async def announce(self, worker: str, ttl, max_leases: int) -> list[int]:
        """Mark this process alive for ``ttl``; returns the capacities (``max_leases``) of the live
        ingest processes, this one's included."""
        async with self.db.platform("ingest") as conn:
            await conn.execute(ANNOUNCE_PROCESS, {"worker": worker, "ttl": ttl, "max_leases": max_leases})
            await conn.execute(FORGET_PROCESSES)
            return [r["max_leases"] for r in await (await conn.execute(LIVE_PROCESSES)).fetchall()]

    async def renew(self, worker: str, ids: list[int], ttl) -> set[int]:
        if not ids:
            return set()
        async with self.db.platform("ingest") as conn:
            rows = await (await conn.execute(RENEW_LEASES, {"worker": worker, "ids": ids, "ttl": ttl})).fetchall()
            return {r["integration_id"] for r in rows}

    async def release(self, worker: str, integration_id: int | None = None) -> None:
        async with self.db.platform("ingest") as conn:
            if integration_id is None:
                await conn.execute(RELEASE_ALL, {"worker": worker})
                await conn.execute(STOP_ALL_HEALTH, {"worker": worker})
                await conn.execute(RETIRE_PROCESS, {"worker": worker})
            else:
                await conn.execute(RELEASE_LEASE, {"worker": worker, "integration": integration_id})
                await conn.execute(STOP_HEALTH, {"worker": worker, "integration": integration_id})

    async def write_health(self, rows: list[dict[str, Any]], history: bool,
                           signal_status: list[dict[str, Any]] | None = None) -> None:
        if not rows and not signal_status:
            return
        async with self.db.platform("ingest") as conn:
            async with conn.cursor() as cur:
                if rows:
                    await cur.executemany(UPSERT_HEALTH, rows)
                    failing = [r for r in rows if r["last_error"]]
                    working = [r for r in rows if not r["last_error"]]
                    if failing:
                        await cur.executemany(OPEN_ERROR, failing)
                    if working:
                        await cur.executemany(CLOSE_ERROR, working)
                if history and rows:
                    await cur.executemany(INSERT_HEALTH_HISTORY, rows)
                if signal_status:
                    await cur.executemany(UPSERT_SIGNAL_STATUS, signal_status)

    async def note_gap(self, spec: IntegrationSpec, since: datetime) -> None:
        """The source's history still unread starts at ``since`` (kept until :meth:`clear_gap`; one
        worker at a time holds an integration's lease, so the newest note is the right one)."""
        async with self.db.platform("ingest") as conn:
            await conn.execute(NOTE_GAP, {"tenant": spec.tenant_id, "integration": spec.id, "since": since})

    async def clear_gap(self, spec: IntegrationSpec) -> None:
        async with self.db.platform("ingest") as conn:
            await conn.execute(CLEAR_GAP, {"tenant": spec.tenant_id, "integration": spec.id})

    async def open_gap(self, spec: IntegrationSpec) -> datetime | None:
        async with self.db.platform("ingest") as conn:
            row = await (await conn.execute(OPEN_GAP, {"tenant": spec.tenant_id, "integration": spec.id})).fetchone()
            return row["since"] if row else None

    async def last_stored(self, signal_ids: list[int]) -> dict[int, datetime]:
        """Each signal's newest stored source time (where a backfill starts)."""
        async with self.db.platform("ingest") as conn:
            return await timeseries.last_stored(conn, signal_ids)
