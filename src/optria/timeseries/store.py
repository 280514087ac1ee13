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

_BASELINE_AGG = ("count(*) AS buckets, sum(r.avg * r.n) / nullif(sum(r.n), 0) AS mean, stddev_pop(r.avg) AS sd, "
                 "avg(r.max - r.min) AS rng")

# Drift baselines per (tenant, signal): completed hours of the last day, the last hour without its
# newest minutes, and the recent level (raw units).
BASELINES = f"""
SELECT sig.signal_id, hr.buckets AS h_buckets, hr.mean AS h_mean, hr.sd AS h_sd, hr.rng AS h_range,
       mn.buckets AS m_buckets, mn.mean AS m_mean, mn.sd AS m_sd, mn.rng AS m_range, lv.level
FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[]) AS sig(tenant_id, signal_id)
LEFT JOIN LATERAL (
    SELECT {_BASELINE_AGG} FROM signal_1h r
    WHERE r.tenant_id = sig.tenant_id AND r.signal_id = sig.signal_id
      AND r.bucket >= date_trunc('hour', now()) - interval '24 hours' AND r.bucket < date_trunc('hour', now())
) hr ON true
LEFT JOIN LATERAL (
    SELECT {_BASELINE_AGG} FROM signal_1m r
    WHERE r.tenant_id = sig.tenant_id AND r.signal_id = sig.signal_id
      AND r.bucket >= now() - interval '60 minutes' AND r.bucket < now() - make_interval(mins => %(gap)s)
) mn ON true
LEFT JOIN LATERAL (
    SELECT sum(r.avg * r.n) / nullif(sum(r.n), 0) AS level FROM signal_1m r
    WHERE r.tenant_id = sig.tenant_id AND r.signal_id = sig.signal_id
      AND r.bucket >= now() - make_interval(mins => %(level)s)
) lv ON true
"""

LAST_STORED = "SELECT signal_id, time FROM signal_latest WHERE signal_id = ANY(%(ids)s::int8[])"

# The commit log (sample_batches) after a cursor, below the oldest transaction in flight: every
# transaction with a smaller id has ended, so nothing can later appear behind the cursor.
BATCHES_AFTER = """
SELECT tenant_id, id, xid::text AS xid, ingest_time, min_time, max_time, rows, signal_ids, first_times, last_times
FROM sample_batches
WHERE (xid, id) > (%(xid)s::xid8, %(id)s) AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, id
LIMIT %(limit)s
"""

# The rows the given commit-log entries stored for the given signals: in each signal's range,
# stamped with one of the entries' ingest times.
BATCH_ROWS = """
SELECT r.tenant_id, r.signal_id, x.time, x.value, x.quality
FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(lo)s::timestamptz[], %(hi)s::timestamptz[])
     AS r(tenant_id, signal_id, lo, hi)
CROSS JOIN LATERAL (
    SELECT s.time, s.value, s.quality FROM signal_samples_tenant s
    WHERE s.tenant_id = r.tenant_id AND s.signal_id = r.signal_id AND s.time >= r.lo AND s.time <= r.hi
      AND s.ingest_time = ANY(%(stamps)s::timestamptz[])
) x
ORDER BY r.tenant_id, r.signal_id, x.time
"""

# For each (signal, after): its stored rows after ``after``, in time order, at most ``limit`` each.
ROWS_AFTER = """
SELECT r.tenant_id, r.signal_id, x.time, x.value, x.quality
FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(after)s::timestamptz[]) AS r(tenant_id, signal_id, after)
CROSS JOIN LATERAL (
    SELECT s.time, s.value, s.quality FROM signal_samples_tenant s
    WHERE s.tenant_id = r.tenant_id AND s.signal_id = r.signal_id AND s.time > r.after
    ORDER BY s.time LIMIT %(limit)s
) x
ORDER BY r.tenant_id, r.signal_id, x.time
"""

# For each (signal, first, last): the usable stored row just before ``first`` and just after ``last``.
NEIGHBOURS = """
SELECT r.tenant_id, r.signal_id, b.time AS before_time, b.value AS before_value,
       a.time AS after_time, a.value AS after_value, a.quality AS after_quality
FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(first)s::timestamptz[], %(last)s::timestamptz[])
     AS r(tenant_id, signal_id, first, last)
LEFT JOIN LATERAL (
    SELECT s.time, s.value FROM signal_samples_tenant s
    WHERE s.tenant_id = r.tenant_id AND s.signal_id = r.signal_id AND s.time < r.first
      AND s.value IS NOT NULL AND s.quality < 3
    ORDER BY s.time DESC LIMIT 1
) b ON true
LEFT JOIN LATERAL (
    SELECT s.time, s.value, s.quality FROM signal_samples_tenant s
    WHERE s.tenant_id = r.tenant_id AND s.signal_id = r.signal_id AND s.time > r.last
      AND s.value IS NOT NULL AND s.quality < 3
    ORDER BY s.time LIMIT 1
) a ON true
"""


def resolution_for(span: timedelta) -> str:
    return "1m" if span <= timedelta(hours=24) else "1h"


async def trend(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], *, hours: float,
                resolution: str | None = None, until: datetime | None = None) -> dict[int, list[dict[str, Any]]]:
    """The last ``hours`` of 1-minute or 1-hour buckets per signal, oldest first."""
    until = until or datetime.now(timezone.utc)
    since = until - timedelta(hours=hours)
    res = resolution or resolution_for(timedelta(hours=hours))
    return await window(conn, tenant_id, signal_ids, since, until + timedelta(minutes=1), resolution=res)


async def window(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], since: datetime, until: datetime,
                 *, resolution: str) -> dict[int, list[dict[str, Any]]]:
    """1-minute ("1m") or 1-hour ("1h") buckets per signal with since <= bucket < until, oldest first."""
    out: dict[int, list[dict[str, Any]]] = {sid: [] for sid in signal_ids}
    if not signal_ids:
        return out
    query = sql.SQL(TREND).format(table=sql.Identifier(RESOLUTIONS[resolution]))
    cur = await conn.execute(query, {"tenant": tenant_id, "signals": list(signal_ids), "since": since, "until": until})
    for row in await cur.fetchall():
        out.setdefault(row["signal_id"], []).append(row)
    return out


async def baselines(conn: AsyncConnection, signals: Sequence[tuple[UUID, int]], *, gap_minutes: int,
                    level_minutes: int) -> list[dict[str, Any]]:
    """Drift baselines from the aggregates (platform scope): per signal, hour statistics of the
    last day, minute statistics of the last hour without its newest ``gap_minutes``, and the
    mean of the last ``level_minutes``."""
    if not signals:
        return []
    cur = await conn.execute(BASELINES, {"tenants": [s[0] for s in signals], "signals": [s[1] for s in signals],
                                         "gap": gap_minutes, "level": level_minutes})
    return await cur.fetchall()


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


async def last_stored(conn: AsyncConnection, signal_ids: Sequence[int]) -> dict[int, datetime]:
    """Each signal's newest stored source time (platform scope: the ingest service's backfill start)."""
    if not signal_ids:
        return {}
    cur = await conn.execute(LAST_STORED, {"ids": list(signal_ids)})
    return {r["signal_id"]: r["time"] for r in await cur.fetchall()}


async def batches_after(conn: AsyncConnection, xid: str | int, batch_id: int, limit: int) -> list[dict[str, Any]]:
    """Commit-log entries after the cursor (xid, id), in commit order, none still in flight."""
    cur = await conn.execute(BATCHES_AFTER, {"xid": str(xid), "id": batch_id, "limit": limit})
    return await cur.fetchall()


async def batch_rows(conn: AsyncConnection, ranges: dict[tuple[UUID, int], tuple[datetime, datetime]],
                     stamps: Sequence[datetime]) -> list[dict[str, Any]]:
    """The rows stored by the commit-log entries stamped ``stamps``, for each (tenant, signal)
    in its source-time range; ordered by tenant, signal and time."""
    if not ranges or not stamps:
        return []
    keys = list(ranges)
    cur = await conn.execute(BATCH_ROWS, {
        "tenants": [k[0] for k in keys], "signals": [k[1] for k in keys],
        "lo": [ranges[k][0] for k in keys], "hi": [ranges[k][1] for k in keys], "stamps": list(set(stamps))})
    return await cur.fetchall()


async def rows_after(conn: AsyncConnection, after: dict[tuple[UUID, int], datetime], limit: int
                     ) -> list[dict[str, Any]]:
    """Per (tenant, signal): its stored rows after a time, oldest first, at most ``limit`` each;
    ordered by tenant, signal and time."""
    if not after:
        return []
    keys = list(after)
    cur = await conn.execute(ROWS_AFTER, {"tenants": [k[0] for k in keys], "signals": [k[1] for k in keys],
                                          "after": [after[k] for k in keys], "limit": limit})
    return await cur.fetchall()


async def neighbours(conn: AsyncConnection, spans: dict[tuple[UUID, int], tuple[datetime, datetime]]
                     ) -> dict[tuple[UUID, int], dict[str, Any]]:
    """Per (tenant, signal): the usable stored rows just before and just after a span of time."""
    if not spans:
        return {}
    keys = list(spans)
    cur = await conn.execute(NEIGHBOURS, {
        "tenants": [k[0] for k in keys], "signals": [k[1] for k in keys],
        "first": [spans[k][0] for k in keys], "last": [spans[k][1] for k in keys]})
    return {(r["tenant_id"], r["signal_id"]): r for r in await cur.fetchall()}
