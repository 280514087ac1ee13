"""Retention per storage tier, run as an ingest background job.

- ``timescale``: policies created by the migration do the work; nothing to do here.
- ``timescale-apache``: ``drop_chunks`` on a schedule (Apache-licensed), rollups trimmed by delete.
- ``postgres``: batched deletes, a bounded number of rows per run, so a large backlog never
  holds long locks or bloats one transaction.

Days come from the ``retention_settings`` row (null keeps forever).
"""

from __future__ import annotations

import logging

from optria.db import Database

log = logging.getLogger("optria.timeseries.retention")

SETTINGS = "SELECT samples_days, rollup_1m_days, rollup_1h_days, health_history_days FROM retention_settings"
TIER = "SELECT tier FROM storage_capabilities"
BATCH = 50_000

DELETE_OLD = {
    "signal_samples": """DELETE FROM signal_samples WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM signal_samples WHERE time < now() - make_interval(days => %(days)s) LIMIT %(batch)s))""",
    "signal_1m_rollup": """DELETE FROM signal_1m_rollup WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM signal_1m_rollup WHERE bucket < now() - make_interval(days => %(days)s) LIMIT %(batch)s))""",
    "signal_1h_rollup": """DELETE FROM signal_1h_rollup WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM signal_1h_rollup WHERE bucket < now() - make_interval(days => %(days)s) LIMIT %(batch)s))""",
    "ingest_health_history": """DELETE FROM ingest_health_history WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM ingest_health_history WHERE time < now() - make_interval(days => %(days)s) LIMIT %(batch)s))""",
}
DROP_CHUNKS = "SELECT count(*) AS n FROM drop_chunks(%(table)s::regclass, older_than => now() - make_interval(days => %(days)s))"


class RetentionJob:
    name = "retention"

    def __init__(self, db: Database, interval_s: float = 300.0, batch: int = BATCH) -> None:
        self.db = db
        self.interval_s = interval_s
        self.batch = batch

    async def run_once(self) -> int:
        async with self.db.platform("retention") as conn:
            tier = (await (await conn.execute(TIER)).fetchone() or {"tier": "postgres"})["tier"]
            days = await (await conn.execute(SETTINGS)).fetchone()
        if tier == "timescale" or days is None:
            return 0
        removed = 0
        plan = [("signal_samples", days["samples_days"]), ("signal_1m_rollup", days["rollup_1m_days"]),
                ("signal_1h_rollup", days["rollup_1h_days"]), ("ingest_health_history", days["health_history_days"])]
        for table, keep in plan:
            if keep is None:
                continue
            async with self.db.platform("retention") as conn:
                if tier == "timescale-apache" and table in ("signal_samples", "ingest_health_history"):
                    row = await (await conn.execute(DROP_CHUNKS, {"table": table, "days": keep})).fetchone()
                    removed += row["n"]
                else:
                    cur = await conn.execute(DELETE_OLD[table], {"days": keep, "batch": self.batch})
                    removed += cur.rowcount
        if removed:
            log.info("retention.removed", extra={"rows_or_chunks": removed, "tier": tier})
        return removed


def jobs(db: Database, settings) -> list:
    return [RetentionJob(db)]
