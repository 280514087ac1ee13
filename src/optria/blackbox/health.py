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

These are figures over hours and days, so each web process computes them at most once per
``CACHE_TTL_S`` for a given tenant, asset and period (with the 24-hour event count) and
serves them from memory in between: page views cost a look-up, not a scan of the period.
"""

from __future__ import annotations

import time
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
CACHE_TTL_S = 30.0
CACHE_MAX = 2_000
_cache: dict[tuple, tuple[float, "AlarmHealth"]] = {}


@dataclass
class AlarmHealth:
    hours: int
    total: int = 0
    average_per_10_min: float = 0.0
    peak_per_10_min: int = 0
    intervals: int = 0
    flood_intervals: int = 0
    status: str = "normal"
    events_24h: int = 0
    computed_at: datetime | None = None
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


def clear_cache() -> None:
    _cache.clear()


async def cached_alarm_health(conn: Conn, tenant_id: UUID, *, asset_id: int | None = None,
                              hours: int = 24) -> AlarmHealth:
    """:func:`alarm_health`, reused for ``CACHE_TTL_S`` seconds in this process."""
    key = (tenant_id, asset_id, hours)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    h = await alarm_health(conn, tenant_id, asset_id=asset_id, hours=hours)
    if len(_cache) >= CACHE_MAX:
        for stale in [k for k, (exp, _) in _cache.items() if exp <= now] or list(_cache)[: CACHE_MAX // 10]:
            _cache.pop(stale, None)
    _cache[key] = (now + CACHE_TTL_S, h)
    return h


async def alarm_health(conn: Conn, tenant_id: UUID, *, asset_id: int | None = None, hours: int = 24,
                       now: datetime | None = None) -> AlarmHealth:
    now = now or datetime.now(timezone.utc)
    start = now - timedelta(hours=hours)
    params = {"tenant_id": tenant_id, "asset_id": asset_id, "start": start, "end": now,
              "chatter_count": CHATTER_COUNT, "before": now - STANDING_AFTER}
    buckets = await store.fetch_all(conn, store.with_asset(store.ALARM_BUCKETS, "e.asset_id", asset_id), params)
    h = AlarmHealth(hours=hours, intervals=hours * 6, computed_at=now)
    h.events_24h = int((await store.fetch_one(conn, store.with_asset(store.EVENTS_24H, "e.asset_id", asset_id),
                                              params) or {"n": 0})["n"])
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
