"""Arranging optimization inputs: an integration, mapped signals with limits, minute rollups and latest values.

Written straight into the tables the readers use (owner connection), so a test states exactly
the data a run sees. Not the code under test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

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
    """Map ``roles`` of the asset to new signals with ``minutes`` of flat minute rollups at nominal;
    the last ``ramp_minutes`` of vibration rise linearly to ``vibration_now`` (also its latest value)."""
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
            rows.append((tenant_id, sid, now - timedelta(minutes=i), 60, value * 60, value * 0.99, value * 1.01, value,
                         now - timedelta(minutes=i) + timedelta(seconds=59)))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO signal_1m_rollup (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        latest = vibration_now if role == "vibration" and vibration_now is not None else nominal
        conn.execute("INSERT INTO signal_latest (tenant_id, signal_id, time, value) VALUES (%s, %s, now(), %s)",
                     [tenant_id, sid, latest])
        out.signals[role] = sid
    return out
