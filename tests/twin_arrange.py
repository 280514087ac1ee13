"""Arranging twin data for tests: an integration whose signals are mapped to an asset, and samples
written through the real ingest writer (so signal_latest, the rollups and NOTIFY are the real ones).

Not fixtures and not the code under test; tests call these with the tenant and asset they need.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg

from ingest.samples import Sample
from ingest.writer import Writer

# role -> (unit, warn_low, warn_high, crit_low, crit_high), as the demo plant's profiles
LIMITS = {
    "vibration": ("mm/s", None, 7.1, None, 11.0),
    "temperature": ("degC", None, 95.0, None, 110.0),
    "pressure": ("bar", None, 16.0, None, 18.0),
}


@dataclass
class Mapped:
    tenant_id: UUID
    asset_id: int
    integration_id: int
    signals: dict[str, int]          # role -> signal id


def map_signals(conn: psycopg.Connection, tenant_id: UUID, asset_id: int, roles: list[str], *,
                interval_s: int = 60, integration_id: int | None = None, scale: float = 1.0,
                offset: float = 0.0) -> Mapped:
    """An integration (or the given one) with one signal per role, mapped to the asset with the LIMITS."""
    if integration_id is None:
        integration_id = conn.execute(
            "INSERT INTO integrations (tenant_id, kind, name) VALUES (%s, 'opcua', %s) RETURNING id",
            [tenant_id, f"twin-{uuid.uuid4().hex[:6]}"]).fetchone()[0]
    signals = {}
    for role in roles:
        unit, wl, wh, cl, ch = LIMITS.get(role, ("", None, None, None, None))
        sid = conn.execute(
            "INSERT INTO signals (tenant_id, integration_id, external_id, name, eng_unit) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id", [tenant_id, integration_id, f"ns=2;s=A{asset_id}.{role}.{uuid.uuid4().hex[:4]}",
                             f"{role.capitalize()} {asset_id}", unit]).fetchone()[0]
        conn.execute(
            "INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, unit, scale, \"offset\", "
            "warn_low, warn_high, crit_low, crit_high, expected_interval_s) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [tenant_id, sid, asset_id, role, unit, scale, offset, wl, wh, cl, ch, interval_s])
        signals[role] = sid
    return Mapped(tenant_id, asset_id, integration_id, signals)


async def write_samples(dsn: str, samples: list[Sample]) -> int:
    """Commit samples through the ingest writer (one transaction, NOTIFY optria_live per tenant)."""
    writer = Writer(dsn)
    try:
        return await writer.write_batch(samples)
    finally:
        await writer.stop()


async def write_values(dsn: str, mapped: Mapped, values: dict[str, float], *, at: datetime | None = None,
                       quality: int = 0) -> int:
    at = at or datetime.now(timezone.utc)
    return await write_samples(dsn, [Sample(mapped.tenant_id, mapped.signals[role], at, v, quality)
                                     for role, v in values.items()])


async def write_history(dsn: str, mapped: Mapped, role: str, value: float, *, minutes: int, end_ago_s: float = 60,
                        per_minute: int = 2) -> int:
    """A flat history (for drift baselines): ``per_minute`` samples a minute over ``minutes`` minutes."""
    end = datetime.now(timezone.utc) - timedelta(seconds=end_ago_s)
    rows = []
    for i in range(minutes * per_minute):
        t = end - timedelta(seconds=i * 60 / per_minute)
        rows.append(Sample(mapped.tenant_id, mapped.signals[role], t, value + (0.05 if i % 2 else -0.05), 0))
    return await write_samples(dsn, rows)


def heartbeat(conn: psycopg.Connection, mapped: Mapped, *, ago_s: float = 0.0, connected: bool = True) -> None:
    """The integration's ingest worker reports (``ago_s`` seconds ago), connected to its source or not."""
    conn.execute(
        "INSERT INTO ingest_health (tenant_id, integration_id, worker_id, state, connected, heartbeat_at) "
        "VALUES (%s, %s, 'w1', 'streaming', %s, now() - make_interval(secs => %s)) "
        "ON CONFLICT (tenant_id, integration_id) DO UPDATE SET connected = EXCLUDED.connected, "
        "heartbeat_at = EXCLUDED.heartbeat_at", [mapped.tenant_id, mapped.integration_id, connected, ago_s])


def health_row(conn: psycopg.Connection, asset_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM asset_health_latest WHERE asset_id = %s", [asset_id]).fetchone()


def snapshot_count(conn: psycopg.Connection, asset_id: int) -> int:
    return conn.execute("SELECT count(*) FROM asset_metrics_snapshot WHERE asset_id = %s", [asset_id]).fetchone()[0]
