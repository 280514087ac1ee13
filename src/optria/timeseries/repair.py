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
from optria.timeseries.writes import FOLD_LATEST, FOLD_ROLLUPS_AND_LATEST, fold_params

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

CLAIM = """
UPDATE sample_batches b SET rolled_up = true
FROM unnest(%(tenants)s::uuid[], %(ids)s::int8[]) AS c(tenant_id, id)
WHERE b.tenant_id = c.tenant_id AND b.id = c.id
"""


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
                query = FOLD_LATEST if tier == "timescale" else FOLD_ROLLUPS_AND_LATEST   # aggregates fold themselves there
                result = await (await conn.execute(query, fold_params(entries))).fetchone()
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
