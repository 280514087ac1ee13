"""Arranging Black Box test data with plain SQL on the owner connection (arranging, not testing).

Rows are written the way their owners write them: alert and work-order changes with their
history row, samples together with ``signal_latest``, ingest health as the supervisor does.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg

from optria.timeseries.writes import RECORD_BATCH, Row, batch_summaries


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Plant:
    tenant_id: UUID
    slug: str
    site_id: int
    unit_id: int
    integration_id: int
    assets: list[int] = field(default_factory=list)


def make_tenant(conn: psycopg.Connection, slug: str | None = None) -> tuple[UUID, str]:
    slug = slug or f"bb-{uuid.uuid4().hex[:8]}"
    tid = conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", [slug, slug.upper()]).fetchone()[0]
    return tid, slug


def make_plant(conn: psycopg.Connection, tenant_id: UUID | None = None, *, assets: int = 2, tag: str = "A") -> Plant:
    slug = ""
    if tenant_id is None:
        tenant_id, slug = make_tenant(conn)
    site = conn.execute("INSERT INTO sites (tenant_id, code, name) VALUES (%s, %s, %s) RETURNING id",
                        [tenant_id, f"{tag}-SITE-{uuid.uuid4().hex[:4]}", f"{tag} Site"]).fetchone()[0]
    unit = conn.execute("INSERT INTO units (tenant_id, site_id, code, name) VALUES (%s, %s, %s, %s) RETURNING id",
                        [tenant_id, site, f"{tag}-U", f"{tag} Unit"]).fetchone()[0]
    integration = conn.execute("INSERT INTO integrations (tenant_id, kind, name) VALUES (%s, 'opcua', %s) RETURNING id",
                               [tenant_id, f"{tag} OPC {uuid.uuid4().hex[:4]}"]).fetchone()[0]
    plant = Plant(tenant_id, slug, site, unit, integration)
    for n in range(1, assets + 1):
        plant.assets.append(conn.execute(
            "INSERT INTO assets (tenant_id, site_id, unit_id, code, name) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            [tenant_id, site, unit, f"{tag}-P-{n}-{uuid.uuid4().hex[:4]}", f"{tag} Pump {n}"]).fetchone()[0])
    return plant


def add_signal(conn: psycopg.Connection, plant: Plant, asset_id: int, name: str = "Vibration", *,
               role: str = "vibration", unit: str | None = "mm/s", scale: float = 1.0, offset: float = 0.0,
               warn_low: float | None = None, warn_high: float | None = None, crit_low: float | None = None,
               crit_high: float | None = None) -> int:
    sid = conn.execute("INSERT INTO signals (tenant_id, integration_id, external_id, name, eng_unit) "
                       "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                       [plant.tenant_id, plant.integration_id, f"ns=2;s={name}-{uuid.uuid4().hex[:6]}", name, unit]
                       ).fetchone()[0]
    conn.execute('INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, unit, scale, "offset", '
                 "warn_low, warn_high, crit_low, crit_high) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 [plant.tenant_id, sid, asset_id, role, unit, scale, offset, warn_low, warn_high, crit_low, crit_high])
    return sid


def visible(conn: psycopg.Connection) -> None:
    """Wait until every transaction older than what was just committed has ended: the commit-order
    readers (the alert, limit and grouping collectors) read only below the oldest transaction in
    flight, and a TimescaleDB background worker starting in a new database holds one for a moment.
    A no-op inside the caller's own transaction."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return
    xid = conn.execute("SELECT pg_current_xact_id()").fetchone()[0]
    deadline = time.monotonic() + 15
    while not conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot()) > %s::xid8", [xid]).fetchone()[0]:
        if time.monotonic() > deadline:
            raise AssertionError("a transaction older than the arranged rows stayed open for 15 s")
        time.sleep(0.02)


def write_samples(conn: psycopg.Connection, tenant_id: UUID, signal_id: int,
                  samples: list[tuple[datetime, float | None] | tuple[datetime, float | None, int]]) -> None:
    """Store samples as the ingest writer does: in one transaction with one ingest time, moving
    signal_latest forward and adding the commit-log entry that derived data follows."""
    rows = [Row(tenant_id, signal_id, s[0], s[1], s[2] if len(s) > 2 else 0) for s in samples]
    with conn.transaction():
        stamp = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        new = []
        for r in rows:
            if conn.execute("INSERT INTO signal_samples (tenant_id, signal_id, time, value, quality, ingest_time) "
                            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                            [*r, stamp]).fetchone():
                new.append(r)
            conn.execute("INSERT INTO signal_latest AS l (tenant_id, signal_id, time, value, quality, ingest_time) "
                         "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, signal_id) DO UPDATE "
                         "SET time = EXCLUDED.time, value = EXCLUDED.value, quality = EXCLUDED.quality, "
                         "ingest_time = EXCLUDED.ingest_time WHERE EXCLUDED.time > l.time", [*r, stamp])
        for entry in batch_summaries(new, stamp):
            conn.execute(RECORD_BATCH, {**entry, "rolled_up": False})
    visible(conn)


def mark_stale(conn: psycopg.Connection, tenant_id: UUID, signal_id: int) -> None:
    conn.execute("UPDATE signal_latest SET quality = 4, ingest_time = now() WHERE tenant_id = %s AND signal_id = %s",
                 [tenant_id, signal_id])


def raise_alert(conn: psycopg.Connection, tenant_id: UUID, asset_id: int, severity: str = "critical",
                title: str = "Bearing temperature high", at: datetime | None = None, actor: str = "operator",
                wait_visible: bool = True) -> int:
    at = at or now()
    with conn.transaction():
        alert = conn.execute("INSERT INTO alerts (tenant_id, asset_id, severity, title, raised_at) VALUES (%s, %s, %s, %s, %s) "
                             "RETURNING id", [tenant_id, asset_id, severity, title, at]).fetchone()[0]
        conn.execute("INSERT INTO alert_history (tenant_id, alert_id, asset_id, action, to_status, actor_name, at) "
                     "VALUES (%s, %s, %s, 'raised', 'open', %s, %s)", [tenant_id, alert, asset_id, actor, at])
    if wait_visible:
        visible(conn)
    return alert


def change_alert(conn: psycopg.Connection, tenant_id: UUID, alert_id: int, action: str, at: datetime | None = None,
                 actor: str = "operator", note: str = "") -> None:
    at = at or now()
    to = {"acknowledged": "acknowledged", "cleared": "cleared"}[action]
    with conn.transaction():
        prev, asset = conn.execute("SELECT status, asset_id FROM alerts WHERE tenant_id = %s AND id = %s FOR UPDATE",
                                   [tenant_id, alert_id]).fetchone()
        if action == "acknowledged":
            conn.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_at = %s WHERE tenant_id = %s AND id = %s",
                         [at, tenant_id, alert_id])
        else:
            conn.execute("UPDATE alerts SET status = 'cleared', cleared_at = %s WHERE tenant_id = %s AND id = %s",
                         [at, tenant_id, alert_id])
        conn.execute("INSERT INTO alert_history (tenant_id, alert_id, asset_id, action, from_status, to_status, actor_name, "
                     "at, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     [tenant_id, alert_id, asset, action, prev, to, actor, at, note])
    visible(conn)


def open_work_order(conn: psycopg.Connection, tenant_id: UUID, asset_id: int, title: str = "Inspect bearing",
                    priority: str = "high", at: datetime | None = None, alert_id: int | None = None) -> int:
    at = at or now()
    with conn.transaction():
        wo = conn.execute("INSERT INTO work_orders (tenant_id, asset_id, alert_id, title, priority, created_at) "
                          "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                          [tenant_id, asset_id, alert_id, title, priority, at]).fetchone()[0]
        conn.execute("INSERT INTO work_order_history (tenant_id, work_order_id, asset_id, action, to_status, actor_name, at) "
                     "VALUES (%s, %s, %s, 'opened', 'open', 'planner', %s)", [tenant_id, wo, asset_id, at])
    return wo


def change_work_order(conn: psycopg.Connection, tenant_id: UUID, wo: int, to: str, at: datetime | None = None) -> None:
    at = at or now()
    with conn.transaction():
        prev, asset = conn.execute("SELECT status, asset_id FROM work_orders WHERE tenant_id = %s AND id = %s",
                                   [tenant_id, wo]).fetchone()
        conn.execute("UPDATE work_orders SET status = %s, closed_at = CASE WHEN %s = 'closed' THEN %s::timestamptz END "
                     "WHERE tenant_id = %s AND id = %s", [to, to, at, tenant_id, wo])
        conn.execute("INSERT INTO work_order_history (tenant_id, work_order_id, asset_id, action, from_status, to_status, "
                     "actor_name, at) VALUES (%s, %s, %s, %s, %s, %s, 'technician', %s)",
                     [tenant_id, wo, asset, "closed" if to == "closed" else "status_changed", prev, to, at])


def set_health(conn: psycopg.Connection, tenant_id: UUID, integration_id: int, state: str, *, reconnects: int = 0,
               error: str | None = None, at: datetime | None = None) -> None:
    conn.execute("INSERT INTO ingest_health AS h (tenant_id, integration_id, worker_id, state, connected, reconnects, "
                 "last_error, heartbeat_at) VALUES (%s, %s, 'w1', %s, %s, %s, %s, %s) "
                 "ON CONFLICT (tenant_id, integration_id) DO UPDATE SET state = EXCLUDED.state, "
                 "connected = EXCLUDED.connected, reconnects = EXCLUDED.reconnects, last_error = EXCLUDED.last_error, "
                 "heartbeat_at = EXCLUDED.heartbeat_at",
                 [tenant_id, integration_id, state, state in ("streaming", "backfilling"), reconnects, error, at or now()])


def add_event(conn: psycopg.Connection, tenant_id: UUID, *, asset_id: int | None, event_time: datetime,
              severity: str = "medium", category: str = "alarm", source_system: str = "alerts",
              source_type: str = "alert_raised", summary: str = "Something happened", alarm_key: str | None = None,
              source_id: str | None = None, time_flag: str | None = None, integration_id: int | None = None,
              site_id: int | None = None, signal_id: int | None = None, payload: dict[str, Any] | None = None,
              actor: str | None = None, repeat_count: int = 1) -> int:
    """One event as a collector would store it (direct, for grouping and page tests)."""
    event = conn.execute(
        "INSERT INTO industrial_events (tenant_id, event_time, source_system, source_type, source_id, severity, "
        "event_category, summary, payload, asset_id, site_id, integration_id, signal_id, actor, alarm_key, time_flag, "
        "repeat_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [tenant_id, event_time, source_system, source_type, source_id or uuid.uuid4().hex, severity, category, summary,
         json.dumps(payload or {}), asset_id, site_id, integration_id, signal_id, actor, alarm_key, time_flag,
         repeat_count]).fetchone()[0]
    visible(conn)
    return event


def critical(conn: psycopg.Connection, tenant_id: UUID, asset_id: int, t: datetime, summary: str = "Vibration 14 > 11",
             **kw: Any) -> int:
    """A critical limit breach: an incident trigger."""
    kw.setdefault("alarm_key", f"limit:x:{summary}")
    return add_event(conn, tenant_id, asset_id=asset_id, event_time=t, severity="critical", category="limit",
                     source_system="limits", source_type="limit_breach", summary=summary, **kw)


def rows(conn: psycopg.Connection, query: str, *params: Any) -> list[tuple]:
    return conn.execute(query, params).fetchall()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
