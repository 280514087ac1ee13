"""Alarm health in the style of ISA-18.2, for a tenant or one asset over a period.

An alarm here is an annunciation in the event log: an event with an ``alarm_key`` (alert
raised, limit breached, OPC-UA alarm active). The figures:

* rate — annunciations per 10 minutes: the average over the period and the busiest 10-minute
  interval, against the usual target of at most 1 per 10 minutes per operator position;
  an interval with more than 10 is an alarm flood, and the share of the period in flood
  should stay under 1 %;
* chattering — the same alarm 3 or more times within one minute;
* standing — alarms still active after 24 hours (alerts not cleared, signals still in a
  limit band);
* the ten most frequent alarms of the period.

Every row carries its alarm key, so the page links each to its events in the explorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.store import Conn

TARGET_PER_10_MIN = 1
FLOOD_PER_10_MIN = 10
FLOOD_SHARE_LIMIT = 0.01
CHATTER_COUNT = 3          # the same alarm this many times ...
CHATTER_WINDOW_S = 60      # ... within this many seconds (the query's window is one minute)
STANDING_AFTER = timedelta(hours=24)
PERIODS_H = (24, 168)


@dataclass
class AlarmHealth:
    hours: int
    total: int = 0
    average_per_10_min: float = 0.0
    peak_per_10_min: int = 0
    intervals: int = 0
    flood_intervals: int = 0
    status: str = "normal"
    chattering: list[dict[str, Any]] = field(default_factory=list)
    standing: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flood_share(self) -> float:
        return self.flood_intervals / self.intervals if self.intervals else 0.0

    @property
    def target(self) -> int:
        return TARGET_PER_10_MIN

    @property
    def flood_threshold(self) -> int:
        return FLOOD_PER_10_MIN


def rate_status(average: float, flood_share: float, flood_intervals: int) -> str:
    if flood_share > FLOOD_SHARE_LIMIT:
        return "critical"
    if average > TARGET_PER_10_MIN or flood_intervals:
        return "warning"
    return "normal"


async def alarm_health(conn: Conn, tenant_id: UUID, *, asset_id: int | None = None, hours: int = 24,
                       now: datetime | None = None) -> AlarmHealth:
    now = now or datetime.now(timezone.utc)
    start = now - timedelta(hours=hours)
    params = {"tenant_id": tenant_id, "asset_id": asset_id, "start": start, "end": now,
              "chatter_count": CHATTER_COUNT, "before": now - STANDING_AFTER}
    buckets = await store.fetch_all(conn, store.with_asset(store.ALARM_BUCKETS, "e.asset_id", asset_id), params)
    h = AlarmHealth(hours=hours, intervals=hours * 6)
    h.total = sum(b["n"] for b in buckets)
    h.average_per_10_min = round(h.total / h.intervals, 2) if h.intervals else 0.0
    h.peak_per_10_min = max((b["n"] for b in buckets), default=0)
    h.flood_intervals = sum(1 for b in buckets if b["n"] > FLOOD_PER_10_MIN)
    h.status = rate_status(h.average_per_10_min, h.flood_share, h.flood_intervals)
    h.chattering = await store.fetch_all(conn, store.with_asset(store.CHATTERING, "e.asset_id", asset_id), params)
    h.top = await store.fetch_all(conn, store.with_asset(store.TOP_ALARMS, "e.asset_id", asset_id), params)
    standing = await store.fetch_all(conn, store.with_asset(store.STANDING_ALERTS, "al.asset_id", asset_id), params)
    standing += await store.fetch_all(conn, store.with_asset(store.STANDING_LIMITS, "m.asset_id", asset_id), params)
    for row in standing:
        row["hours"] = int((now - row["since"]).total_seconds() // 3600)
    h.standing = sorted(standing, key=lambda r: r["since"])
    names = await _asset_names(conn, tenant_id, [r["asset_id"] for r in h.chattering + h.top + h.standing])
    for row in h.chattering + h.top + h.standing:
        row["asset"] = names.get(row["asset_id"])
    return h


async def _asset_names(conn: Conn, tenant_id: UUID, ids: list[int | None]) -> dict[int, dict[str, Any]]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await store.fetch_all(conn, store.ASSET_NAMES, {"tenant_id": tenant_id, "ids": wanted})
    return {r["id"]: r for r in rows}
