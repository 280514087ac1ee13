"""The rollup repair job: folds commit-log entries that no writer folded (the latest values in
every tier; the rollups in the ``postgres`` and ``timescale-apache`` tiers — continuous
aggregates do that in the ``timescale`` tier).

The ingest writer folds latest values and 1-minute / 1-hour rollups of what it stored once a
second and claims the commit-log entries it covered (``sample_batches.rolled_up``). A writer
that dies, or whose fold fails, leaves entries unclaimed; this job takes entries unclaimed for
longer than ``SETTLE`` — a minute, well past a live writer's fold — (under row locks, ``SKIP LOCKED``), folds the rows they stored — read
back from the samples by their ingest stamp — into the rollups and the latest values, and
claims them, in one transaction: each stored row counts in the rollups exactly once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from optria.db import Database

log = logging.getLogger("optria.timeseries.repair")

SETTLE = timedelta(seconds=60)   # well past the writer's rollup fold (every 10 s)
TIER = "SELECT tier FROM storage_capabilities"

UNCLAIMED = """
SELECT tenant_id, id, ingest_time, min_time, max_time, signal_ids, first_times, last_times
FROM sample_batches
WHERE NOT rolled_up AND ingest_time < now() - %(settle)s
ORDER BY ingest_time
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

# The rows of the given entries: for live entries every signal of the tenant in the entry's range,
# for wide ones each listed signal in its own range; stamped with the entry's ingest time.
_PICKED = """
picked AS (
    SELECT s.tenant_id, s.signal_id, s.time, s.value, s.quality
    FROM unnest(%(n_tenants)s::uuid[], %(n_stamps)s::timestamptz[], %(n_lo)s::timestamptz[], %(n_hi)s::timestamptz[])
         AS e(tenant_id, stamp, lo, hi)
    JOIN signal_samples_tenant s ON s.tenant_id = e.tenant_id AND s.time >= e.lo AND s.time <= e.hi
                                AND s.ingest_time = e.stamp
    UNION ALL
    SELECT s.tenant_id, s.signal_id, s.time, s.value, s.quality
    FROM unnest(%(w_tenants)s::uuid[], %(w_signals)s::int8[], %(w_stamps)s::timestamptz[], %(w_lo)s::timestamptz[],
                %(w_hi)s::timestamptz[]) AS e(tenant_id, signal_id, stamp, lo, hi)
    JOIN signal_samples_tenant s ON s.tenant_id = e.tenant_id AND s.signal_id = e.signal_id
                                AND s.time >= e.lo AND s.time <= e.hi AND s.ingest_time = e.stamp
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

REPAIR_LATEST = f"""
WITH {_PICKED},
{_LATEST}
SELECT (SELECT count(*) FROM picked) AS rows, (SELECT count(*) FROM up_l) AS latest
"""

REPAIR = f"""
WITH {_PICKED},
m AS (
    SELECT tenant_id, signal_id, date_bin(interval '1 minute', time, timestamptz 'epoch') AS bucket,
           count(*)::integer AS n, sum(value) AS sum, min(value) AS min, max(value) AS max,
           (array_agg(value ORDER BY time DESC))[1] AS last, max(time) AS last_time
    FROM picked WHERE value IS NOT NULL GROUP BY 1, 2, 3
),
up_m AS (
    INSERT INTO signal_1m_rollup AS r (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
    SELECT * FROM m
    ON CONFLICT (tenant_id, signal_id, bucket) DO UPDATE
    SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),
        max = greatest(r.max, EXCLUDED.max),
        last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
        last_time = greatest(r.last_time, EXCLUDED.last_time)
    RETURNING 1
),
h AS (
    SELECT tenant_id, signal_id, date_bin(interval '1 hour', bucket, timestamptz 'epoch') AS bucket,
           sum(n)::integer AS n, sum(sum) AS sum, min(min) AS min, max(max) AS max,
           (array_agg(last ORDER BY last_time DESC))[1] AS last, max(last_time) AS last_time
    FROM m GROUP BY 1, 2, 3
),
up_h AS (
    INSERT INTO signal_1h_rollup AS r (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
    SELECT * FROM h
    ON CONFLICT (tenant_id, signal_id, bucket) DO UPDATE
    SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),
        max = greatest(r.max, EXCLUDED.max),
        last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
        last_time = greatest(r.last_time, EXCLUDED.last_time)
    RETURNING 1
),
{_LATEST}
SELECT (SELECT count(*) FROM picked) AS rows, (SELECT count(*) FROM up_m) AS minutes,
       (SELECT count(*) FROM up_h) AS hours, (SELECT count(*) FROM up_l) AS latest
"""

CLAIM = """
UPDATE sample_batches b SET rolled_up = true
FROM unnest(%(tenants)s::uuid[], %(ids)s::int8[]) AS c(tenant_id, id)
WHERE b.tenant_id = c.tenant_id AND b.id = c.id
"""


def repair_params(entries: list[dict]) -> dict:
    narrow = [e for e in entries if e["signal_ids"] is None]
    wide = [(e["tenant_id"], sid, e["ingest_time"], lo, hi) for e in entries if e["signal_ids"] is not None
            for sid, lo, hi in zip(e["signal_ids"], e["first_times"], e["last_times"])]
    return {
        "n_tenants": [e["tenant_id"] for e in narrow], "n_stamps": [e["ingest_time"] for e in narrow],
        "n_lo": [e["min_time"] for e in narrow], "n_hi": [e["max_time"] for e in narrow],
        "w_tenants": [w[0] for w in wide], "w_signals": [w[1] for w in wide], "w_stamps": [w[2] for w in wide],
        "w_lo": [w[3] for w in wide], "w_hi": [w[4] for w in wide],
    }


class RollupRepairJob:
    name = "rollup-repair"

    def __init__(self, db: Database, interval_s: float = 10.0, batch: int = 200, settle: timedelta = SETTLE) -> None:
        self.db = db
        self.interval_s = interval_s
        self.batch = batch
        self.settle = settle
        self.repaired_total = 0

    async def run_once(self) -> int:
        """Fold the unclaimed entries older than ``settle``; returns how many stored rows were folded."""
        total = 0
        while True:
            async with self.db.platform("rollup-repair") as conn:
                tier = (await (await conn.execute(TIER)).fetchone() or {"tier": "postgres"})["tier"]
                entries = await (await conn.execute(UNCLAIMED, {"settle": self.settle, "limit": self.batch})).fetchall()
                if not entries:
                    break
                query = REPAIR_LATEST if tier == "timescale" else REPAIR   # aggregates fold themselves there
                result = await (await conn.execute(query, repair_params(entries))).fetchone()
                await conn.execute(CLAIM, {"tenants": [e["tenant_id"] for e in entries],
                                           "ids": [e["id"] for e in entries]})
            total += result["rows"]
            log.info("rollup.repaired", extra={"entries": len(entries), "rows": result["rows"]})
            if len(entries) < self.batch:
                break
        self.repaired_total += total
        return total


def jobs(db: Database, settings) -> list:
    return [RollupRepairJob(db)]
