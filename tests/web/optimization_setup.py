"""Arranging optimization inputs: an integration, mapped signals with limits, minute samples and latest values.

Samples go through the real ingest writer (so every storage tier builds its own minute and hour
aggregates from them), and the latest value is set as stated, so a test states exactly the data
a run sees.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from ingest.samples import GOOD, Sample
from tests.fix_ingest import write_through_writer

# role -> (unit, nominal, warn_high, crit_high)
ROLES = {
    "vibration": ("mm/s", 2.2, 7.1, 11.0),
    "temperature": ("degC", 72.0, 95.0, 110.0),
    "power": ("kW", 850.0, 1100.0, 1250.0),
    "flow": ("m3/h", 340.0, None, None),
}


@dataclass
class Monitored:
    integration_id: int
    signals: dict[str, int] = field(default_factory=dict)     # role -> signal id


def add_integration(conn: psycopg.Connection, tenant_id: UUID, name: str | None = None,
                    config: dict | None = None, kind: str = "opcua") -> int:
    return conn.execute("INSERT INTO integrations (tenant_id, kind, name, config) VALUES (%s, %s, %s, %s) RETURNING id",
                        [tenant_id, kind, name or f"src-{uuid.uuid4().hex[:6]}", Jsonb(config or {})]).fetchone()[0]


def monitor(conn: psycopg.Connection, tenant_id: UUID, asset_id: int, *, integration_id: int | None = None,
            minutes: int = 120, vibration_now: float | None = None, ramp_minutes: int = 0,
            roles: tuple[str, ...] = ("vibration", "temperature", "power", "flow")) -> Monitored:
    """Map ``roles`` of the asset to new signals with ``minutes`` of flat minutes at nominal (three
    samples a minute: 0.99, 1.01 and 1 × the minute's value, so its average is the value); the last
    ``ramp_minutes`` of vibration rise linearly to ``vibration_now`` (also its latest value)."""
    integration_id = integration_id or add_integration(conn, tenant_id)
    out = Monitored(integration_id)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    for role in roles:
        unit, nominal, warn, crit = ROLES[role]
        sid = conn.execute("INSERT INTO signals (tenant_id, integration_id, external_id, name, eng_unit) "
                           "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                           [tenant_id, integration_id, f"ns=2;s={uuid.uuid4().hex[:8]}.{role}", f"{role}-{asset_id}",
                            unit]).fetchone()[0]
        conn.execute("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, unit, warn_high, "
                     "crit_high) VALUES (%s, %s, %s, %s, %s, %s, %s)", [tenant_id, sid, asset_id, role, unit, warn, crit])
        rows = []
        for i in range(minutes, 0, -1):
            value = nominal + 0.01 * ((i * 7) % 5 - 2) * max(nominal, 1)
            if role == "vibration" and vibration_now is not None and i <= ramp_minutes:
                value = nominal + (vibration_now - nominal) * (ramp_minutes - i + 1) / ramp_minutes
            minute = now - timedelta(minutes=i)
            rows += [Sample(tenant_id, sid, minute, value * 0.99, GOOD),
                     Sample(tenant_id, sid, minute + timedelta(seconds=20), value * 1.01, GOOD),
                     Sample(tenant_id, sid, minute + timedelta(seconds=40), value, GOOD)]
        write_through_writer(conn, rows)
        latest = vibration_now if role == "vibration" and vibration_now is not None else nominal
        conn.execute("INSERT INTO signal_latest (tenant_id, signal_id, time, value) VALUES (%s, %s, now(), %s) "
                     "ON CONFLICT (tenant_id, signal_id) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value",
                     [tenant_id, sid, latest])
        out.signals[role] = sid
    return out
