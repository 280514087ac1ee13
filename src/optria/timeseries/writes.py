"""Every write of samples, latest values and rollups, in one place for all storage tiers.

The ingest writer (``ingest/writer.py``) owns the queue, batching and retries; the SQL it
runs, and what differs by tier, is here:

- samples: binary COPY straight into ``signal_samples`` (the common case of fresh data), or,
  when a row may already exist (a replayed backfill) or the session may not COPY under row
  security, COPY into a staging table and ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so
  a replay never duplicates and the caller learns exactly which rows are new;
- ``sample_batches``: one commit-log row per tenant per transaction, which derived data
  (Black Box limits, rollup repair) follows in commit order;
- ``signal_latest`` and rollups are *folded*: the writer accumulates, per signal, the newest row
  and the 1-minute / 1-hour partial aggregates of the rows it actually inserted, and writes the
  latest values once a second and the rollups every ten seconds (:func:`fold`) — one upsert per
  signal and fold instead of three per sample and batch. In the ``timescale`` tier continuous aggregates do the rollups. A fold
  claims the commit-log entries it covers (``rolled_up``); entries a dead writer never folded
  are folded from the stored rows by the rollup repair job (:mod:`optria.timeseries.repair`),
  so the rollups stay exact;
- stale marks: a source went away, its signals' latest values are no longer current.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from psycopg import sql

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS _optria_staging (
    tenant_id uuid, signal_id bigint, time timestamptz, value double precision, quality smallint,
    ingest_time timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _optria_latest (
    tenant_id uuid, signal_id bigint, time timestamptz, value double precision, quality smallint,
    ingest_time timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _optria_rollup (
    width integer, tenant_id uuid, signal_id bigint, bucket timestamptz, n integer, sum double precision,
    min double precision, max double precision, last double precision, last_time timestamptz
) ON COMMIT DELETE ROWS
"""
COPY_COLUMNS = "(tenant_id, signal_id, time, value, quality, ingest_time)"
COPY_TYPES = ["uuid", "int8", "timestamptz", "float8", "int2", "timestamptz"]
ROLLUP_TYPES = ["int4", "uuid", "int8", "timestamptz", "int4", "float8", "float8", "float8", "float8", "timestamptz"]

INSERT_FROM_STAGING = """
INSERT INTO signal_samples (tenant_id, signal_id, time, value, quality, ingest_time)
SELECT tenant_id, signal_id, time, value, quality, ingest_time FROM _optria_staging
ON CONFLICT DO NOTHING
RETURNING tenant_id, signal_id, time, value, quality
"""

UPSERT_LATEST = """
INSERT INTO signal_latest AS l (tenant_id, signal_id, time, value, quality, ingest_time)
SELECT tenant_id, signal_id, time, value, quality, ingest_time FROM _optria_latest
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET time = EXCLUDED.time, value = EXCLUDED.value, quality = EXCLUDED.quality, ingest_time = EXCLUDED.ingest_time
WHERE EXCLUDED.time > l.time OR (EXCLUDED.time = l.time AND l.quality = 4)
"""

UPSERT_ROLLUP = """
INSERT INTO {table} AS r (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
SELECT tenant_id, signal_id, bucket, n, sum, min, max, last, last_time FROM _optria_rollup WHERE width = %(width)s
ON CONFLICT (tenant_id, signal_id, bucket) DO UPDATE
SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),
    max = greatest(r.max, EXCLUDED.max),
    last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
    last_time = greatest(r.last_time, EXCLUDED.last_time)
"""
ROLLUP_TABLES = {60: "signal_1m_rollup", 3600: "signal_1h_rollup"}

RECORD_BATCH = """
INSERT INTO sample_batches (tenant_id, ingest_time, min_time, max_time, rows, signal_ids, first_times, last_times,
                            rolled_up)
VALUES (%(tenant)s, %(ingest_time)s, %(min_time)s, %(max_time)s, %(rows)s, %(signals)s, %(firsts)s, %(lasts)s,
        %(rolled_up)s)
RETURNING tenant_id, id
"""

# A fold claims the entries it covers; fewer claimed than asked means the repair job took some.
CLAIM_BATCHES = """
UPDATE sample_batches b SET rolled_up = true
FROM unnest(%(tenants)s::uuid[], %(ids)s::int8[]) AS c(tenant_id, id)
WHERE b.tenant_id = c.tenant_id AND b.id = c.id AND NOT b.rolled_up
"""

KNOWN_SIGNALS = "SELECT id, tenant_id FROM signals WHERE id = ANY(%(ids)s::int8[])"

MARK_STALE = """
UPDATE signal_latest SET quality = 4, ingest_time = now()
WHERE tenant_id = %(tenant)s AND signal_id = ANY(%(signals)s::int8[]) AND quality <> 4
"""

TIER = "SELECT tier FROM storage_capabilities"
RETENTION_HORIZON = "SELECT samples_days FROM retention_settings"

# A batch spanning more source time than this lists its signals with their own ranges (see
# sample_batches in 0008_ingest_integrity.sql); a live batch does not.
WIDE_BATCH = timedelta(minutes=5)


class Row(NamedTuple):
    """The sample row as the writer stores it (the same shape as ingest.samples.Sample)."""

    tenant_id: UUID
    signal_id: int
    time: datetime
    value: float | None
    quality: int


def writer_maintains_rollups(tier: str) -> bool:
    """Whether the writer folds rows into rollup tables (no continuous aggregates in the tier)."""
    return tier != "timescale"


async def prepare_session(conn: psycopg.AsyncConnection) -> str:
    """Create the session's staging tables; returns the storage tier."""
    await conn.execute(STAGING_DDL)
    row = await (await conn.execute(TIER)).fetchone()
    return row[0] if row else "postgres"


async def samples_horizon(conn: psycopg.AsyncConnection) -> datetime | None:
    """The oldest source time worth storing: retention would drop anything older at its next run,
    and in the ``timescale`` tier a refresh over a region whose raw chunks are gone would replace
    its aggregates with those of the few late rows."""
    row = await (await conn.execute(RETENTION_HORIZON)).fetchone()
    if not row or row[0] is None:
        return None
    return datetime.now(timezone.utc) - timedelta(days=row[0])


async def known_signals(conn: psycopg.AsyncConnection, ids: Sequence[int]) -> dict[int, UUID]:
    cur = await conn.execute(KNOWN_SIGNALS, {"ids": list(ids)})
    return {row[0]: row[1] for row in await cur.fetchall()}


async def copy_rows(conn: psycopg.AsyncConnection, table: str, columns: str, types: list[str],
                    rows: Iterable[tuple]) -> None:
    async with conn.cursor().copy(f"COPY {table} {columns} FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(types)
        for row in rows:
            await cp.write_row(row)


async def copy_samples(conn: psycopg.AsyncConnection, rows: Sequence[Row], ingest_time: datetime) -> None:
    """Binary COPY into the samples table; raises UniqueViolation when a row already exists."""
    await copy_rows(conn, "signal_samples", COPY_COLUMNS, COPY_TYPES,
                    ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, ingest_time) for s in rows))


async def insert_new_samples(conn: psycopg.AsyncConnection, rows: Sequence[Row], ingest_time: datetime) -> list[Row]:
    """Insert through staging, skipping rows already stored; returns the rows actually inserted."""
    await copy_rows(conn, "_optria_staging", COPY_COLUMNS, COPY_TYPES,
                    ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, ingest_time) for s in rows))
    cur = await conn.execute(INSERT_FROM_STAGING)
    inserted = [Row(r[0], r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]
    await conn.execute("TRUNCATE _optria_staging")
    return inserted


def batch_summaries(rows: Sequence[Row], ingest_time: datetime) -> list[dict[str, Any]]:
    """One commit-log entry per tenant: row count and source-time range, plus per-signal ranges
    when the batch is wide (backfill or replay)."""
    tenants = {s.tenant_id for s in rows}
    if len(tenants) == 1:               # the common case: no per-row Python beyond these passes
        per = {tenants.pop(): rows}
    else:
        per = {}
        for s in rows:
            per.setdefault(s.tenant_id, []).append(s)
    out = []
    for tenant, tenant_rows in per.items():
        times = [s.time for s in tenant_rows]
        lo, hi = min(times), max(times)
        entry = {"tenant": tenant, "ingest_time": ingest_time, "min_time": lo, "max_time": hi,
                 "rows": len(tenant_rows), "signals": None, "firsts": None, "lasts": None}
        if hi - lo > WIDE_BATCH:
            spans: dict[int, list] = {}
            for s in tenant_rows:
                span = spans.get(s.signal_id)
                if span is None:
                    spans[s.signal_id] = [s.time, s.time]
                elif s.time < span[0]:
                    span[0] = s.time
                elif s.time > span[1]:
                    span[1] = s.time
            entry.update(signals=list(spans), firsts=[v[0] for v in spans.values()],
                         lasts=[v[1] for v in spans.values()])
        out.append(entry)
    return out


async def record_batches(conn: psycopg.AsyncConnection, rows: Iterable[Row], ingest_time: datetime, *,
                         rolled_up: bool = False) -> list[tuple[UUID, int]]:
    """Add the commit-log entries of a transaction; returns their (tenant, id) keys."""
    keys = []
    for entry in batch_summaries(rows, ingest_time):
        cur = await conn.execute(RECORD_BATCH, {**entry, "rolled_up": rolled_up}, prepare=True)
        keys.append(tuple(await cur.fetchone()))
    return keys


class Fold:
    """What the writer has stored but not yet folded into latest values and rollups."""

    __slots__ = ("latest", "partials", "batches")

    def __init__(self) -> None:
        self.latest: dict[int, Row] = {}          # newest row per signal
        self.partials: dict[tuple, list] = {}     # (tenant, signal, minute) -> [n, sum, min, max, last, last_time]
        self.batches: list[tuple[UUID, int]] = []  # commit-log entries the partials cover

    def __bool__(self) -> bool:
        return bool(self.latest or self.partials or self.batches)

    def add(self, rows: Iterable[Row], batches: list[tuple[UUID, int]], *, rollups: bool) -> None:
        latest, minute = self.latest, self.partials
        for s in rows:
            cur = latest.get(s.signal_id)
            if cur is None or s.time > cur.time:
                latest[s.signal_id] = s
            v = s.value
            if not rollups or v is None:
                continue
            key = (s.tenant_id, s.signal_id, int(s.time.timestamp() // 60))
            a = minute.get(key)
            if a is None:
                minute[key] = [1, v, v, v, v, s.time]
            else:
                a[0] += 1
                a[1] += v
                if v < a[2]:
                    a[2] = v
                elif v > a[3]:
                    a[3] = v
                if s.time >= a[5]:
                    a[4] = v
                    a[5] = s.time
        self.batches.extend(batches)   # claimed by the fold in every tier: the latest values need it too

    def take(self, *, rollups: bool = True) -> Fold:
        """What is pending, to be folded now: the latest values, and the rollups too when ``rollups``."""
        out = Fold()
        out.latest, self.latest = self.latest, {}
        if rollups:
            out.partials, out.batches = self.partials, self.batches
            self.partials, self.batches = {}, []
        return out

    def forget_rollups(self) -> None:
        """A fold that failed leaves its entries to the repair job (which reads the stored rows)."""
        self.partials, self.batches = {}, []


def partial_rows(minute: dict[tuple, list]) -> list[tuple]:
    """1-minute partials as COPY rows, and 1-hour partials folded from them."""
    hour: dict[tuple, list] = {}
    out: list[tuple] = []
    for (tenant, signal, m), (n, total, mn, mx, last, last_time) in minute.items():
        out.append((60, tenant, signal, datetime.fromtimestamp(m * 60, timezone.utc), n, total, mn, mx, last, last_time))
        key = (tenant, signal, m // 60)
        h = hour.get(key)
        if h is None:
            hour[key] = [n, total, mn, mx, last, last_time]
        else:
            h[0] += n
            h[1] += total
            h[2] = min(h[2], mn)
            h[3] = max(h[3], mx)
            if last_time >= h[5]:
                h[4], h[5] = last, last_time
    for (tenant, signal, hr), (n, total, mn, mx, last, last_time) in hour.items():
        out.append((3600, tenant, signal, datetime.fromtimestamp(hr * 3600, timezone.utc), n, total, mn, mx, last, last_time))
    return out


async def fold(conn: psycopg.AsyncConnection, pending: Fold, *, notify: bool = True) -> bool:
    """Write folded latest values and rollups in the open transaction; NOTIFY each tenant whose latest
    values moved. Returns False when the repair job had claimed some entries first (the rollups
    of this fold are then left out: the repair job folds those entries from the stored rows)."""
    now = datetime.now(timezone.utc)
    if pending.latest:
        await copy_rows(conn, "_optria_latest", COPY_COLUMNS, COPY_TYPES,
                        ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, now) for s in pending.latest.values()))
        await conn.execute(UPSERT_LATEST, prepare=True)
    claimed = True
    if pending.batches:
        try:
            async with conn.transaction():   # savepoint: the rollups go in only if every entry is still ours
                cur = await conn.execute(CLAIM_BATCHES, {"tenants": [b[0] for b in pending.batches],
                                                         "ids": [b[1] for b in pending.batches]}, prepare=True)
                if cur.rowcount != len(pending.batches):
                    raise _Unclaimed()
                if pending.partials:
                    await copy_rows(conn, "_optria_rollup", "", ROLLUP_TYPES, partial_rows(pending.partials))
                    for width, table in ROLLUP_TABLES.items():
                        await conn.execute(sql.SQL(UPSERT_ROLLUP).format(table=sql.Identifier(table)),
                                           {"width": width}, prepare=True)
        except _Unclaimed:
            claimed = False
    if notify and pending.latest:
        per_tenant: dict[UUID, int] = {}
        for s in pending.latest.values():
            per_tenant[s.tenant_id] = per_tenant.get(s.tenant_id, 0) + 1
        for tenant, n in per_tenant.items():
            await conn.execute("SELECT pg_notify('optria_live', %s)",
                               [json.dumps({"t": str(tenant), "n": n, "at": now.isoformat()})])
    return claimed


class _Unclaimed(Exception):
    """Rolls the savepoint of a fold back: the repair job owns some of its entries."""


async def mark_stale(conn: psycopg.AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], *,
                     notify: bool = True) -> None:
    await conn.execute(MARK_STALE, {"tenant": tenant_id, "signals": list(signal_ids)})
    if notify:
        await conn.execute("SELECT pg_notify('optria_live', %s)", [json.dumps({"t": str(tenant_id), "n": 0,
                                                                              "stale": True})])
