"""Retention per storage tier, run as an ingest background job, driven by ``retention_settings``.

- ``timescale``: whole chunks dropped (``drop_chunks``) from the samples, the health history
  and both continuous aggregates, through ``optria_drop_chunks`` — the narrow SECURITY
  DEFINER door of sql/timescale/0004 (only a hypertable's owner may drop its chunks); the
  compression delay follows ``compress_after_days`` through ``optria_set_compression_after``.
- ``timescale-apache``: chunks dropped the same way from the samples and the health history;
  the rollup tables are trimmed like the ``postgres`` tier's.
- ``postgres``: deletes by time window. Each run finds the oldest row past the cut-off and
  deletes forward in windows sized to about ``batch`` rows (the BRIN indexes on time find
  them without a scan), until caught up or ``budget_s`` is spent; a run that did not catch
  up is followed at once by the next. Deleting in time order never revisits dead rows, so
  the rate stays flat however large the backlog (``scripts/bench_retention.py`` prints it
  against the ingest rate).
- every tier: the ``sample_batches`` commit log is kept as long as the samples it points to.

Days come from the ``retention_settings`` row (null keeps forever).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from optria.db import Database

log = logging.getLogger("optria.timeseries.retention")

SETTINGS = ("SELECT samples_days, rollup_1m_days, rollup_1h_days, health_history_days, compress_after_days "
            "FROM retention_settings")
TIER = "SELECT tier FROM storage_capabilities"
BATCH = 50_000
BUDGET_S = 20.0


@dataclass(frozen=True)
class Target:
    relation: str      # table, hypertable or continuous aggregate
    column: str        # its time column
    setting: str       # the retention_settings column giving its days
    chunked: dict      # tier -> True when whole chunks are dropped there
    cap_days: int | None = None   # kept at most this long whatever the setting says


TARGETS = (
    Target("signal_samples", "time", "samples_days", {"timescale": True, "timescale-apache": True}),
    Target("sample_batches", "ingest_time", "samples_days", {}, cap_days=7),   # consumed within seconds
    Target("signal_1m_rollup", "bucket", "rollup_1m_days", {}),
    Target("signal_1h_rollup", "bucket", "rollup_1h_days", {}),
    Target("signal_1m_cagg", "bucket", "rollup_1m_days", {"timescale": True}),
    Target("signal_1h_cagg", "bucket", "rollup_1h_days", {"timescale": True}),
    Target("ingest_health_history", "time", "health_history_days", {"timescale": True, "timescale-apache": True}),
)
# What each tier trims (rollup tables stay empty in the `timescale` tier; aggregates exist only there).
TIER_TARGETS = {
    "timescale": ("signal_samples", "sample_batches", "signal_1m_cagg", "signal_1h_cagg", "ingest_health_history"),
    "timescale-apache": ("signal_samples", "sample_batches", "signal_1m_rollup", "signal_1h_rollup",
                         "ingest_health_history"),
    "postgres": ("signal_samples", "sample_batches", "signal_1m_rollup", "signal_1h_rollup", "ingest_health_history"),
}

DROP_CHUNKS = "SELECT optria_drop_chunks(%(relation)s, %(days)s) AS n"
SET_COMPRESSION = "SELECT optria_set_compression_after(%(days)s) AS changed"
# Identifiers below come from TARGETS only, never from input.
OLDEST = "SELECT min({column}) AS t FROM {relation} WHERE {column} < %(cutoff)s"
DELETE_WINDOW = "DELETE FROM {relation} WHERE {column} >= %(lo)s AND {column} < %(hi)s"


def _sql(template: str, target: Target) -> str:
    return template.format(relation=target.relation, column=target.column)


class RetentionJob:
    name = "retention"

    def __init__(self, db: Database, interval_s: float = 60.0, batch: int = BATCH, budget_s: float = BUDGET_S) -> None:
        self.db = db
        self.base_interval_s = interval_s
        self.interval_s = interval_s
        self.batch = batch
        self.budget_s = budget_s
        self._window: dict[str, timedelta] = {}     # per relation: the window that held about `batch` rows
        self._compression_days: object = ...        # the compress_after_days last applied (... = never)
        self.removed_total = 0
        self.last_rate = 0.0                        # rows per second of the last run that deleted rows

    async def run_once(self) -> int:
        async with self.db.platform("retention") as conn:
            tier = (await (await conn.execute(TIER)).fetchone() or {"tier": "postgres"})["tier"]
            days = await (await conn.execute(SETTINGS)).fetchone()
        if days is None:
            return 0
        started = time.monotonic()
        deadline = started + self.budget_s
        removed, caught_up = 0, True
        for target in TARGETS:
            keep = days[target.setting]
            if target.cap_days is not None:
                keep = min(keep or target.cap_days, target.cap_days)
            if target.relation not in TIER_TARGETS.get(tier, ()) or keep is None:
                continue
            if target.chunked.get(tier):
                removed += await self._drop_chunks(target, keep)
            else:
                n, done = await self._delete(target, keep, deadline)
                removed += n
                caught_up = caught_up and done
        if tier == "timescale" and days["compress_after_days"] != self._compression_days:
            async with self.db.platform("retention") as conn:
                await conn.execute(SET_COMPRESSION, {"days": days["compress_after_days"]})
            self._compression_days = days["compress_after_days"]
        # not caught up within the budget: go again at once rather than fall further behind
        self.interval_s = self.base_interval_s if caught_up else 0.0
        elapsed = time.monotonic() - started
        self.removed_total += removed
        if removed:
            self.last_rate = removed / max(elapsed, 1e-6)
            log.info("retention.removed", extra={"rows_or_chunks": removed, "tier": tier, "seconds": round(elapsed, 2),
                                                  "caught_up": caught_up})
        return removed

    async def _drop_chunks(self, target: Target, keep_days: int) -> int:
        async with self.db.platform("retention") as conn:
            row = await (await conn.execute(DROP_CHUNKS, {"relation": target.relation, "days": keep_days})).fetchone()
        return int(row["n"] or 0)

    async def _delete(self, target: Target, keep_days: int, deadline: float) -> tuple[int, bool]:
        """Delete rows older than ``keep_days`` window by window; (rows, caught up)."""
        cutoff = datetime.now(timezone.utc) - timedelta(days=keep_days)
        async with self.db.platform("retention") as conn:
            row = await (await conn.execute(_sql(OLDEST, target), {"cutoff": cutoff})).fetchone()
        lo = row["t"] if row else None
        if lo is None:
            return 0, True
        window = self._window.get(target.relation, timedelta(minutes=1))
        removed = 0
        while lo < cutoff:
            if time.monotonic() > deadline:
                return removed, False
            hi = min(lo + window, cutoff)
            async with self.db.platform("retention") as conn:
                cur = await conn.execute(_sql(DELETE_WINDOW, target), {"lo": lo, "hi": hi})
                n = cur.rowcount
            removed += n
            # aim each window at about `batch` rows: short transactions, few round trips
            if n > self.batch * 1.5:
                window = max(window / 2, timedelta(milliseconds=10))
            elif n < self.batch / 2:
                window = min(window * 2, timedelta(days=7))
            lo = hi
        self._window[target.relation] = window
        return removed, True


def jobs(db: Database, settings) -> list:
    return [RetentionJob(db)]
