"""Trend and latest-value queries over the time-series tables (the same in every storage tier).

Pages read trends through these helpers only, so a tier change (views over rollup tables,
or TimescaleDB continuous aggregates) never reaches them. Every query takes the tenant id
and filters by it, on top of row-level security.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql

# (resolution, table) by the span asked for: minute buckets up to a day, hour buckets beyond.
RESOLUTIONS = {"1m": "signal_1m", "1h": "signal_1h"}

TREND = """
SELECT signal_id, bucket, n, avg, min, max, last
FROM {table}
WHERE tenant_id = %(tenant)s AND signal_id = ANY(%(signals)s::int8[]) AND bucket >= %(since)s AND bucket < %(until)s
ORDER BY signal_id, bucket
"""

LATEST = """
SELECT signal_id, time, value, quality, ingest_time
FROM signal_latest
WHERE tenant_id = %(tenant)s AND signal_id = ANY(%(signals)s::int8[])
"""

RAW = """
SELECT signal_id, time, value, quality
FROM signal_samples_tenant
WHERE tenant_id = %(tenant)s AND signal_id = ANY(%(signals)s::int8[]) AND time >= %(since)s AND time < %(until)s
ORDER BY signal_id, time
LIMIT %(limit)s
"""

TIER = "SELECT tier FROM storage_capabilities"


def resolution_for(span: timedelta) -> str:
    return "1m" if span <= timedelta(hours=24) else "1h"


async def trend(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], *, hours: float,
                resolution: str | None = None, until: datetime | None = None) -> dict[int, list[dict[str, Any]]]:
    """The last ``hours`` of 1-minute or 1-hour buckets per signal, oldest first."""
    until = until or datetime.now(timezone.utc)
    since = until - timedelta(hours=hours)
    res = resolution or resolution_for(timedelta(hours=hours))
    out: dict[int, list[dict[str, Any]]] = {sid: [] for sid in signal_ids}
    if not signal_ids:
        return out
    query = sql.SQL(TREND).format(table=sql.Identifier(RESOLUTIONS[res]))
    cur = await conn.execute(query, {"tenant": tenant_id, "signals": list(signal_ids), "since": since,
                                     "until": until + timedelta(minutes=1)})
    for row in await cur.fetchall():
        out.setdefault(row["signal_id"], []).append(row)
    return out


async def latest(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not signal_ids:
        return {}
    cur = await conn.execute(LATEST, {"tenant": tenant_id, "signals": list(signal_ids)})
    return {r["signal_id"]: r for r in await cur.fetchall()}


async def raw(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], since: datetime, until: datetime,
              limit: int = 100_000) -> list[dict[str, Any]]:
    cur = await conn.execute(RAW, {"tenant": tenant_id, "signals": list(signal_ids), "since": since, "until": until,
                                   "limit": limit})
    return await cur.fetchall()


async def storage_tier(conn: AsyncConnection) -> str:
    row = await (await conn.execute(TIER)).fetchone()
    return row["tier"] if row else "postgres"
