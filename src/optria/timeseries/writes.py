"""Every write of samples, latest values and rollups, in one place for all storage tiers.

The ingest writer (``ingest/writer.py``) owns the queue, batching and retries; the SQL it
runs, and what differs by tier, is here:

- samples: binary COPY straight into ``signal_samples`` (the common case of fresh data), or,
  when a row may already exist (a replayed backfill) or the session may not COPY under row
  security, COPY into a staging table and ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so
  a replay never duplicates and the caller learns exactly which rows are new;
- ``sample_batches``: one commit-log row per tenant per transaction, which derived data
  (Black Box limits, rollup repair) follows in commit order;
- ``signal_latest`` and rollups are *folded*: the writer keeps the newest row per signal and
  writes it once a second, and every ten seconds it claims the commit-log entries it wrote
  (``rolled_up``) and, where the tier has no continuous aggregates, merges the per-minute
  partial aggregates of their rows into the 1-minute / 1-hour rollups (:func:`fold`) — one upsert
  per signal and minute instead of three per sample and batch. The partials are summed in memory
  as the rows are committed (a few operations per row, where reading ten seconds of rows back cost
  PostgreSQL more than storing them). Entries a dead writer never folded are folded by the rollup
  repair job (:mod:`optria.timeseries.repair`) from the stored rows, in one statement that reads
  them back, so the rollups stay exact;
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
) ON COMMIT DELETE ROWS
"""
COPY_COLUMNS = "(tenant_id, signal_id, time, value, quality, ingest_time)"
COPY_TYPES = ["uuid", "int8", "timestamptz", "float8", "int2", "timestamptz"]

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
    if not rows:
        return []
    first = rows[0].tenant_id
    if all(s.tenant_id is first for s in rows):   # the common case (one worker's rows share one UUID
        per = {first: rows}                       # object): no UUID hashing or comparing, which is Python code
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


async def record_batches(conn: psycopg.AsyncConnection, rows: Sequence[Row], ingest_time: datetime) -> list[dict]:
    """Add the commit-log entries of a transaction; returns them, each with its ``id``."""
    entries = []
    for e in batch_summaries(rows, ingest_time):
        cur = await conn.execute(RECORD_BATCH, {**e, "rolled_up": False}, prepare=True)
        entries.append({"tenant_id": e["tenant"], "id": (await cur.fetchone())[1], "ingest_time": ingest_time,
                        "min_time": e["min_time"], "max_time": e["max_time"], "signal_ids": e["signals"],
                        "first_times": e["firsts"], "last_times": e["lasts"]})
    return entries


class Fold:
    """What the writer has stored but not yet folded: the newest row per signal, the commit-log
    entries whose rows are not yet in the rollups and, when ``summing`` (the writer maintains the
    rollups), those rows' partial aggregates per (signal, minute) — signal ids are unique across
    tenants, and integers hash far faster than a tenant's UUID: ``[n, sum, min, max, last,
    last_time, tenant]``."""

    __slots__ = ("latest", "entries", "minutes", "summing")

    def __init__(self, *, summing: bool = True) -> None:
        self.latest: dict[int, Row] = {}
        self.entries: list[dict] = []
        self.minutes: dict[tuple[int, int], list] = {}
        self.summing = summing

    def __bool__(self) -> bool:
        return bool(self.latest or self.entries)

    def add(self, rows: Iterable[Row], entries: list[dict]) -> None:
        latest = self.latest
        minutes = self.minutes if self.summing else None
        for s in rows:
            sid, t = s.signal_id, s.time
            cur = latest.get(sid)
            if cur is None or t > cur.time:
                latest[sid] = s
            v = s.value
            if minutes is None or v is None:
                continue
            key = (sid, int(t.timestamp() // 60))
            a = minutes.get(key)
            if a is None:
                minutes[key] = [1, v, v, v, v, t, s.tenant_id]
                continue
            a[0] += 1
            a[1] += v
            if v < a[2]:
                a[2] = v
            elif v > a[3]:
                a[3] = v
            if t > a[5]:
                a[4] = v
                a[5] = t
        self.entries.extend(entries)

    def take(self, *, rollups: bool = True) -> Fold:
        """What is pending, to be folded now: the latest values, and the entries (with their partial
        aggregates) too when ``rollups``."""
        out = Fold(summing=self.summing)
        out.latest, self.latest = self.latest, {}
        if rollups:
            out.entries, self.entries = self.entries, []
            out.minutes, self.minutes = self.minutes, {}
        return out

    def minute_params(self) -> dict[str, list]:
        """The partial aggregates as the arrays of :data:`FOLD_PARTIALS`."""
        cols: dict[str, list] = {k: [] for k in ("tenants", "signals", "buckets", "n", "sum", "min", "max", "last",
                                                  "last_time")}
        for (signal, minute), (n, total, lo, hi, last, last_time, tenant) in self.minutes.items():
            cols["tenants"].append(tenant)
            cols["signals"].append(signal)
            cols["buckets"].append(datetime.fromtimestamp(minute * 60, timezone.utc))
            cols["n"].append(n)
            cols["sum"].append(total)
            cols["min"].append(lo)
            cols["max"].append(hi)
            cols["last"].append(last)
            cols["last_time"].append(last_time)
        return cols


# The rows of commit-log entries, read back to aggregate them: live entries of a tenant are merged
# into source-time ranges (one scan reads each row once), wide entries (backfill) are read per signal
# by primary-key range; a row belongs to an entry through its tenant and ingest stamp.
_PICKED = """
keys AS MATERIALIZED (
    SELECT DISTINCT * FROM unnest(%(k_tenants)s::uuid[], %(k_stamps)s::timestamptz[]) AS k(tenant_id, stamp)
),
picked AS (
    SELECT s.tenant_id, s.signal_id, s.time, s.value, s.quality
    FROM unnest(%(g_tenants)s::uuid[], %(g_lo)s::timestamptz[], %(g_hi)s::timestamptz[]) AS g(tenant_id, lo, hi)
    JOIN signal_samples_tenant s ON s.tenant_id = g.tenant_id AND s.time >= g.lo AND s.time <= g.hi
    WHERE EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = s.tenant_id AND k.stamp = s.ingest_time)
    UNION ALL
    SELECT s.tenant_id, s.signal_id, s.time, s.value, s.quality
    FROM unnest(%(w_tenants)s::uuid[], %(w_signals)s::int8[], %(w_stamps)s::timestamptz[], %(w_lo)s::timestamptz[],
                %(w_hi)s::timestamptz[]) AS e(tenant_id, signal_id, stamp, lo, hi)
    JOIN signal_samples_tenant s ON s.tenant_id = e.tenant_id AND s.signal_id = e.signal_id
                                AND s.time >= e.lo AND s.time <= e.hi AND s.ingest_time = e.stamp
)"""

# A partial aggregate merged into its rollup row: counts and sums add up, min and max widen, the
# value of the newest sample stays last. The same for both rollups ({table}, fed by the CTE {source}).
_MERGE_INTO_ROLLUP = """
    INSERT INTO {table} AS r (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
    SELECT * FROM {source}
    ON CONFLICT (tenant_id, signal_id, bucket) DO UPDATE
    SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),
        max = greatest(r.max, EXCLUDED.max),
        last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
        last_time = greatest(r.last_time, EXCLUDED.last_time)
    RETURNING 1"""

_MINUTES_OF_PICKED = """
m AS (
    SELECT tenant_id, signal_id, date_bin(interval '1 minute', time, timestamptz 'epoch') AS bucket,
           count(*)::integer AS n, sum(value) AS sum, min(value) AS min, max(value) AS max,
           (array_agg(value ORDER BY time DESC))[1] AS last, max(time) AS last_time
    FROM picked WHERE value IS NOT NULL GROUP BY 1, 2, 3
),"""

# The writer's own partial aggregates (Fold.minutes), one row per tenant, signal and minute.
_MINUTES_GIVEN = """
m AS (
    SELECT * FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[], %(buckets)s::timestamptz[], %(n)s::int4[],
                         %(sum)s::float8[], %(min)s::float8[], %(max)s::float8[], %(last)s::float8[],
                         %(last_time)s::timestamptz[])
        AS x(tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
),"""

# Minutes (CTE m) merged into the 1-minute rollup, and their hours into the 1-hour one.
_MERGE_MINUTES_AND_HOURS = f"""
up_m AS ({_MERGE_INTO_ROLLUP.format(table="signal_1m_rollup", source="m")}
),
h AS (
    SELECT tenant_id, signal_id, date_bin(interval '1 hour', bucket, timestamptz 'epoch') AS bucket,
           sum(n)::integer AS n, sum(sum) AS sum, min(min) AS min, max(max) AS max,
           (array_agg(last ORDER BY last_time DESC))[1] AS last, max(last_time) AS last_time
    FROM m GROUP BY 1, 2, 3
),
up_h AS ({_MERGE_INTO_ROLLUP.format(table="signal_1h_rollup", source="h")}
)"""

_LATEST = """
newest AS (
    SELECT DISTINCT ON (tenant_id, signal_id) tenant_id, signal_id, time, value, quality
    FROM picked ORDER BY tenant_id, signal_id, time DESC
),
up_l AS (
    INSERT INTO signal_latest AS l (tenant_id, signal_id, time, value, quality, ingest_time)
    SELECT tenant_id, signal_id, time, value, quality, now() FROM newest
    ON CONFLICT (tenant_id, signal_id) DO UPDATE
    SET time = EXCLUDED.time, value = EXCLUDED.value, quality = EXCLUDED.quality, ingest_time = EXCLUDED.ingest_time
    WHERE EXCLUDED.time > l.time
    RETURNING 1
)"""

# Rollups of the stored rows of the entries picked (CTE picked).
_ROLLUPS = _MINUTES_OF_PICKED + _MERGE_MINUTES_AND_HOURS
# The rows of entries a dead writer left, read back into both rollups and the latest values (its
# newest rows may never have been folded): the rollup repair job's statement.
FOLD_ROLLUPS_AND_LATEST = (f"WITH {_PICKED},{_ROLLUPS},{_LATEST} SELECT (SELECT count(*) FROM picked) AS rows, "
                           "(SELECT count(*) FROM up_m) AS minutes, (SELECT count(*) FROM up_l) AS latest")
# The writer's partial aggregates of what it just committed, merged into both rollups.
FOLD_PARTIALS = f"WITH {_MINUTES_GIVEN}{_MERGE_MINUTES_AND_HOURS} SELECT (SELECT count(*) FROM up_m) AS minutes"
FOLD_LATEST = f"WITH {_PICKED},{_LATEST} SELECT (SELECT count(*) FROM picked) AS rows, (SELECT count(*) FROM up_l) AS latest"

MERGE_SPAN = timedelta(minutes=10)   # live entries of a tenant closer than this are read in one range


def fold_params(entries: list[dict]) -> dict:
    """Parameters of the fold queries for ``entries`` (commit-log rows or the writer's own)."""
    groups: list[list] = []   # [tenant, lo, hi]
    keys_t, keys_s = [], []
    wide = []
    for e in sorted(entries, key=lambda e: (str(e["tenant_id"]), e["min_time"])):
        if e.get("signal_ids"):
            wide += [(e["tenant_id"], sid, e["ingest_time"], lo, hi)
                     for sid, lo, hi in zip(e["signal_ids"], e["first_times"], e["last_times"])]
            continue
        keys_t.append(e["tenant_id"])
        keys_s.append(e["ingest_time"])
        g = groups[-1] if groups else None
        if g is not None and g[0] == e["tenant_id"] and e["min_time"] <= g[2] + MERGE_SPAN:
            g[2] = max(g[2], e["max_time"])
        else:
            groups.append([e["tenant_id"], e["min_time"], e["max_time"]])
    return {"k_tenants": keys_t, "k_stamps": keys_s,
            "g_tenants": [g[0] for g in groups], "g_lo": [g[1] for g in groups], "g_hi": [g[2] for g in groups],
            "w_tenants": [w[0] for w in wide], "w_signals": [w[1] for w in wide], "w_stamps": [w[2] for w in wide],
            "w_lo": [w[3] for w in wide], "w_hi": [w[4] for w in wide]}


async def fold(conn: psycopg.AsyncConnection, pending: Fold, *, rollups: bool, notify: bool = True) -> bool:
    """Write folded latest values, and claim the pending entries (merging their rows' partial
    aggregates into the rollups when ``rollups``: the tier has no continuous aggregates), in the
    open transaction; NOTIFY each tenant whose latest values moved. Returns False when the repair job had claimed some entries
    first: they are then all left to it (it folds them from the stored rows)."""
    now = datetime.now(timezone.utc)
    if pending.latest:
        await copy_rows(conn, "_optria_latest", COPY_COLUMNS, COPY_TYPES,
                        ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, now) for s in pending.latest.values()))
        await conn.execute(UPSERT_LATEST, prepare=True)
    claimed = True
    if pending.entries:
        try:
            async with conn.transaction():   # savepoint: the rollups go in only if every entry is still ours
                cur = await conn.execute(CLAIM_BATCHES, {"tenants": [e["tenant_id"] for e in pending.entries],
                                                         "ids": [e["id"] for e in pending.entries]}, prepare=True)
                if cur.rowcount != len(pending.entries):
                    raise _Unclaimed()
                if rollups and pending.minutes:
                    await conn.execute(FOLD_PARTIALS, pending.minute_params())
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
