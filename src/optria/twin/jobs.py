"""The health-scoring job of the ingest service (see ingest/jobs.py for how jobs run).

Each run rescores only the assets that need it: a mapped signal got new data
(``signal_latest.ingest_time``), a mapping changed, a signal's newest sample just crossed
its staleness limit or its ingest worker's heartbeat lapsed (so an asset whose data stops
turns "nodata" without any new row arriving), or — for values a live source vouches for
without sending them again (OPC-UA and PI report by exception) — the asset's score is
about to age out for readers (older than one expected interval). The cursor is the database time of the previous run, kept in memory, read
back ``RESCAN_WINDOW_S`` seconds to catch batches that committed late or came from a
writer with a slightly different clock; the change keys already handled inside that
window are remembered, so the overlap costs a read, not a rescore. The first run after a
start scores every mapped asset.

Writes are idempotent, so two ingest processes may both run the job: a result's time is
the data's time (not the clock's), snapshots use ``ON CONFLICT (tenant, asset, time)``, and
``asset_health_latest`` never moves back in time. A snapshot row is appended when the
status, source, score (±5) or probability (±0.05) changed, or every ``SNAPSHOT_EVERY_S`` of
data time; the latest row moves with every rescore. When what a reader sees changed, the
job sends ``NOTIFY optria_live`` for the tenant, so open twin pages recolour. Every rescore
also writes the asset's signal summary for the card grid (optria.twin.summary).
"""

from __future__ import annotations

import json
import logging
import math
import time as clock
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from optria.db import Database
from optria.timeseries.limits import Limits
from optria.twin import store
from optria.twin.summary import summarize
from optria.twin.scoring import (
    DRIFT_ROLES,
    AiScore,
    AssetScore,
    SignalInput,
    Trend,
    baseline_from_aggregates,
    score_asset,
    trend_from_figures,
)

log = logging.getLogger("optria.twin.jobs")

JOB_NAME = "twin-scoring"
INTERVAL_S = 2.0   # a streaming asset is rescored every 2 s; its values themselves reach readers every second
RESCAN_WINDOW_S = 30.0
CHUNK_ASSETS = 1000
SNAPSHOT_EVERY_S = 300
SNAPSHOT_SCORE_STEP = 5.0
SNAPSHOT_PROBABILITY_STEP = 0.05
AI_REFRESH_S = 60.0
TREND_REFRESH_S = 60.0   # a signal's trend (slope and scatter of hours of minute means) moves slowly

Pair = tuple[UUID, int]


def snapshot_due(previous: dict[str, Any] | None, result: AssetScore) -> bool:
    """Whether ``result`` deserves a row in the health history (see the module docstring)."""
    if previous is None:
        return True
    if previous["status"] != result.status or previous["source"] != result.source:
        return True
    for key, new, step in (("health_score", result.health_score, SNAPSHOT_SCORE_STEP),
                           ("failure_probability", result.failure_probability, SNAPSHOT_PROBABILITY_STEP)):
        old = previous[key]
        if (old is None) != (new is None) or (old is not None and abs(old - new) >= step - 1e-9):
            return True
    bucket = lambda t: math.floor(t.timestamp() / SNAPSHOT_EVERY_S)  # noqa: E731
    return bucket(result.time) != bucket(previous["time"])


def visible_change(previous: dict[str, Any] | None, result: AssetScore) -> bool:
    """Whether a reader of the twin would see a difference (worth a NOTIFY)."""
    if previous is None:
        return True
    return (previous["status"], previous["health_score"], previous["failure_probability"], previous["source"]) \
        != result.key()


def signal_input(row: dict[str, Any], baseline, trend: Trend | None = None) -> SignalInput:
    return SignalInput(
        signal_id=row["signal_id"], name=row["name"], role=row["metric_role"], unit=row["unit"],
        scale=row["scale"], offset=row["offset"],
        limits=Limits.of_mapping(row),
        expected_interval_s=row["expected_interval_s"], time=row["time"], value=row["value"],
        quality=row["quality"], since=row["updated_at"], baseline=baseline, marked_at=row["ingest_time"],
        source_connected=row["source_connected"], source_seen=row["source_seen"], trend=trend)


class ScoringJob:
    """``run_once`` rescored what changed since the previous run; returns how many assets."""

    name = JOB_NAME

    def __init__(self, db: Database, *, interval_s: float = INTERVAL_S, rescan_window_s: float = RESCAN_WINDOW_S,
                 notify: bool = True) -> None:
        self.db = db
        self.interval_s = interval_s
        self.rescan_window = timedelta(seconds=rescan_window_s)
        self.notify = notify
        self._since: datetime | None = None
        self._done: dict[tuple, datetime] = {}
        self._ai: dict[Pair, tuple[float, AiScore | None]] = {}
        self._trends: dict[Pair, tuple[float, Trend | None]] = {}
        self.rescored_total = 0
        self.written_total = 0

    async def run_once(self) -> int:
        async with self.db.platform("scoring", cached_plans=True) as conn:
            now = await store.now(conn)
            rows = await store.scoring_changes(conn, self._since)
        pending: dict[Pair, list[tuple]] = defaultdict(list)
        for r in rows:
            key = (r["kind"], r["ref"], r["at"])
            if r["kind"] == "r":
                pending[(r["tenant_id"], r["asset_id"])]  # a refresh is rescored while it is due
            elif key not in self._done:
                pending[(r["tenant_id"], r["asset_id"])].append(key)
        pairs = sorted(pending, key=lambda p: (str(p[0]), p[1]))
        for start in range(0, len(pairs), CHUNK_ASSETS):
            chunk = pairs[start:start + CHUNK_ASSETS]
            await self.score(chunk, now)
            for pair in chunk:
                for key in pending[pair]:
                    self._done[key] = key[2]
        self._since = now - self.rescan_window
        self._done = {k: t for k, t in self._done.items() if t > self._since}
        self.rescored_total += len(pairs)
        if pairs:
            log.debug("twin.scoring_run", extra={"assets": len(pairs)})
        return len(pairs)

    async def score(self, pairs: list[Pair], now: datetime) -> list[tuple[Pair, AssetScore]]:
        """Score ``pairs`` from the current data and write what changed, in one transaction."""
        async with self.db.platform("scoring", cached_plans=True) as conn:
            signal_rows = await store.scoring_signals(conn, pairs)
            baselines = {}
            watched = [(r["tenant_id"], r["signal_id"]) for r in signal_rows if r["metric_role"] in DRIFT_ROLES]
            if watched:
                for b in await store.scoring_baselines(conn, watched):
                    baselines[b["signal_id"]] = baseline_from_aggregates(
                        level=b["level"], hour_buckets=b["h_buckets"], hour_mean=b["h_mean"], hour_sd=b["h_sd"],
                        hour_range=b["h_range"], minute_buckets=b["m_buckets"], minute_mean=b["m_mean"],
                        minute_sd=b["m_sd"], minute_range=b["m_range"])
            previous = {(r["tenant_id"], r["asset_id"]): r for r in await store.scoring_previous(conn, pairs)}
            ai = await self._ai_scores(conn, pairs)
            trends = await self._trends_of(conn, [(r["tenant_id"], r["signal_id"]) for r in signal_rows
                                                  if r["crit_high"] is not None or r["crit_low"] is not None])
            signals: dict[Pair, list[SignalInput]] = defaultdict(list)
            rows_of: dict[Pair, list[dict[str, Any]]] = defaultdict(list)
            for r in signal_rows:
                signals[(r["tenant_id"], r["asset_id"])].append(
                    signal_input(r, baselines.get(r["signal_id"]), trends.get((r["tenant_id"], r["signal_id"]))))
                rows_of[(r["tenant_id"], r["asset_id"])].append(r)

            results, latest, snapshots = [], [], []
            changed: dict[UUID, int] = defaultdict(int)
            for pair in pairs:
                result = score_asset(signals.get(pair, []), now, ai.get(pair))
                results.append((pair, result))
                prev = previous.get(pair)
                if prev is not None and result.time <= prev["time"]:
                    if not visible_change(prev, result):
                        continue  # already written (by us or another process), or newer data is there
                    # what readers see changed, from data no newer than the row's time (limits were
                    # edited, a source was marked stale): a new row just after it, never one back in time
                    result = replace(result, time=prev["time"] + timedelta(milliseconds=1))
                row = {"tenant_id": pair[0], "asset_id": pair[1], "time": result.time, "status": result.status,
                       "health_score": result.health_score, "failure_probability": result.failure_probability,
                       "source": result.source, "contributing": result.contributing}
                latest.append(row)
                if snapshot_due(prev, result):
                    snapshots.append({**row, "source": "rules"})  # 'ai' rows are the optimization module's own
                if visible_change(prev, result):
                    changed[pair[0]] += 1
            await store.write_health(conn, latest, snapshots)
            await store.write_summaries(conn, [summarize(p[0], p[1], rows_of.get(p, []), now) for p in pairs])
            if self.notify:
                for tenant_id, n in changed.items():
                    await store.notify_live(conn, json.dumps({"t": str(tenant_id), "n": 0, "health": n,
                                                              "at": now.isoformat()}))
        self.written_total += len(latest)
        return results

    async def _trends_of(self, conn, signals: list[Pair]) -> dict[Pair, Trend]:
        """The trend of each signal (rule 5 of optria.twin.scoring), re-read at most every TREND_REFRESH_S."""
        mono = clock.monotonic()
        due = sorted({s for s in signals if s not in self._trends or mono - self._trends[s][0] > TREND_REFRESH_S},
                     key=lambda s: (str(s[0]), s[1]))
        if due:
            found = {(r["tenant_id"], r["signal_id"]): trend_from_figures(buckets=r["buckets"], sxx=r["sxx"],
                                                                          syy=r["syy"], sxy=r["sxy"], rng=r["rng"],
                                                                          span_h=r["span_h"])
                     for r in await store.scoring_trends(conn, due)}
            for s in due:
                self._trends[s] = (mono, found.get(s))
        return {s: self._trends[s][1] for s in signals if self._trends[s][1] is not None}

    async def _ai_scores(self, conn, pairs: list[Pair]) -> dict[Pair, AiScore]:
        """The newest AI score per asset, re-read at most every AI_REFRESH_S per asset."""
        mono = clock.monotonic()
        due = [p for p in pairs if p not in self._ai or mono - self._ai[p][0] > AI_REFRESH_S]
        if due:
            found = {(r["tenant_id"], r["asset_id"]): AiScore(r["time"], r["health_score"], r["failure_probability"],
                                                              r["status"])
                     for r in await store.scoring_ai(conn, due)}
            for p in due:
                self._ai[p] = (mono, found.get(p))
        return {p: self._ai[p][1] for p in pairs if self._ai[p][1] is not None}


def jobs(db: Database, settings) -> list[ScoringJob]:
    """Entry point read by ingest.jobs.default_jobs."""
    return [ScoringJob(db)]
