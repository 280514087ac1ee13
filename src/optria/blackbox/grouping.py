"""Incident grouping: turn the event log into per-asset incidents.

Rules (the grouping window W defaults to 30 minutes):

* A **trigger** — a critical alarm annunciation (critical alert raised, critical limit
  breach, critical OPC-UA alarm) or any event of category ``failure`` — opens a new
  incident for its asset, or extends that asset's unresolved incident when the trigger lies
  within W of it (``started_at − W ≤ t ≤ last_event_at + W``). The title is the trigger's
  summary (English) and its message key and parameters (``title_key`` / ``title_params``, so
  pages show it in the reader's language); the type follows its category.
* A new incident looks back W before its trigger and attaches the asset's events found there
  (the lead-up: warnings, operator actions, work orders, and integration events of the
  integrations feeding the asset), but nothing already belonging to the asset's previous incident.
* Any later event of the asset (or of an integration feeding it) inside an unresolved
  incident's window is attached as ``related`` — or ``action`` for operator and maintenance
  actions — and moves ``last_event_at``. A resolved incident takes nothing more; the next
  trigger opens a new one.
* Flood summarization: identical events (same source, type, alarm, signal and summary — the
  flood key) are attached once per incident with a count and their first and last times.
* Events flagged ``future`` or ``far_past`` are kept in the log but never grouped. Events the
  black box wrote itself (incident actions) are attached when they are written.

The job follows ``industrial_events`` by (xact_id, id) below the oldest transaction in
flight, so it runs after the events commit and sees each exactly once; a round is one
transaction with its cursor (locked ``SKIP LOCKED``), so running it twice, or in two
processes, changes nothing. Severity of an incident is the worst of its events.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.blackbox import store
from optria.blackbox.events import flood_key
from optria.blackbox.messages import MESSAGES
from optria.blackbox.rounds import RoundsJob
from optria.blackbox.severity import worst
from optria.blackbox.store import Conn
from optria.db import Database

log = logging.getLogger("optria.blackbox.grouping")

DEFAULT_WINDOW = timedelta(minutes=30)
ACTION_CATEGORIES = frozenset({"operator_action", "maintenance"})
INCIDENT_TYPES = {"alarm": "critical_alarm", "limit": "limit_breach", "failure": "equipment_failure"}
NEG_INF = datetime(1, 1, 1, tzinfo=timezone.utc)


def is_trigger(e: dict[str, Any]) -> bool:
    if e["source_system"] == "blackbox" or e.get("asset_id") is None:
        return False
    return e["event_category"] == "failure" or (e["severity"] == "critical" and e.get("alarm_key") is not None)


def relation_of(e: dict[str, Any]) -> str:
    if is_trigger(e):
        return "trigger"
    return "action" if e["event_category"] in ACTION_CATEGORIES else "related"


def incident_type_of(e: dict[str, Any]) -> str:
    return INCIDENT_TYPES.get(e["event_category"], "critical_event")


@dataclass
class Link:
    relation: str
    event_id: int
    event_time: datetime
    last_id: int
    last_time: datetime
    count: int


@dataclass
class Incident:
    tenant_id: UUID
    asset_id: int
    id: int | None
    status: str
    severity: str
    started_at: datetime
    last_event_at: datetime
    title: str = ""
    title_msg: dict[str, Any] | None = None
    incident_type: str = ""
    trigger_event_id: int | None = None
    added: int = 0
    links: dict[str, Link] = field(default_factory=dict)

    @property
    def is_new(self) -> bool:
        return self.id is None

    def covers(self, t: datetime, window: timedelta) -> bool:
        return self.status != "resolved" and self.started_at - window <= t <= self.last_event_at + window

    def attach(self, e: dict[str, Any], relation: str) -> None:
        key = flood_key(e["source_system"], e["source_type"], e.get("alarm_key"), e.get("signal_id"), e["summary"])
        n = e.get("repeat_count") or 1
        t = e["event_time"]
        link = self.links.get(key)
        if link is None:
            self.links[key] = Link(relation, e["id"], t, e["id"], t, n)
        else:
            link.count += n
            if t < link.event_time:
                link.event_id, link.event_time = e["id"], t
            if t >= link.last_time:
                link.last_id, link.last_time = e["id"], t
            if relation == "trigger":
                link.relation = "trigger"
        self.added += n
        self.last_event_at = max(self.last_event_at, t)
        if relation == "trigger" and t < self.started_at:
            self.started_at = t
        self.severity = worst(self.severity, e["severity"])


class Grouper(RoundsJob):
    """The grouping job (``blackbox.grouping``)."""

    name = "blackbox.grouping"
    batch = 5_000

    def __init__(self, db: Database, window: timedelta = DEFAULT_WINDOW) -> None:
        super().__init__(db)
        self.window = window

    async def round(self) -> tuple[int, bool]:
        async with self.db.platform("blackbox", cached_plans=True) as conn:
            cursor = await store.lock_cursor(conn, self.name)
            if cursor is None:
                return 0, False
            rows = await store.fetch_all(conn, store.NEXT_EVENTS, {"xid": cursor["position_xid"],
                                                                   "id": cursor["position"], "limit": self.batch})
            if not rows:
                return 0, False
            touched = await self.group(conn, rows, (cursor["position_xid"], cursor["position"]))
            last = rows[-1]
            cursor.update(position=last["id"], position_xid=last["xid"], position_time=datetime.now(timezone.utc))
            await store.save_cursor(conn, cursor, len(rows))
        if touched:
            log.info("blackbox.grouped", extra={"events": len(rows), "incidents_touched": touched})
        return len(rows), len(rows) == self.batch

    async def group(self, conn: Conn, rows: list[dict[str, Any]], before: tuple[str, int]) -> int:
        """Group one batch; ``before`` is the cursor position ahead of it (the look-back reads up to there)."""
        events = [e for e in rows if e["time_flag"] is None and e["source_system"] != "blackbox"
                  and (e["asset_id"] is not None or e["integration_id"] is not None)]
        if not events:
            return 0
        events.sort(key=lambda e: (e["event_time"], e["id"]))
        feeds = await self._assets_of_integrations(conn, events)

        def targets(e: dict[str, Any]) -> list[int]:
            if e["asset_id"] is not None:
                return [e["asset_id"]]
            return feeds.get((e["tenant_id"], e["integration_id"]), [])

        keys = {(e["tenant_id"], a) for e in events for a in targets(e)}
        if not keys:
            return 0
        current = await self._latest_incidents(conn, keys)
        touched: dict[tuple, Incident] = {}
        pending: dict[tuple, deque] = defaultdict(deque)   # this batch's unattached events per asset, oldest first
        w = self.window
        for e in events:
            for asset_id in targets(e):
                key = (e["tenant_id"], asset_id)
                inc = current.get(key)
                trigger = is_trigger(e)
                if inc is not None and inc.covers(e["event_time"], w):
                    inc.attach(e, relation_of(e))
                    touched[(key, id(inc))] = inc
                elif trigger:
                    new = await self._open(conn, e, inc, pending[key], before)
                    touched[(key, id(new))] = new
                    if inc is None or new.last_event_at >= inc.last_event_at:
                        current[key] = new
                else:
                    queue = pending[key]
                    queue.append(e)
                    while queue and queue[0]["event_time"] < e["event_time"] - w:
                        queue.popleft()
        await self._write(conn, list(touched.values()))
        return len(touched)

    async def _open(self, conn: Conn, trigger: dict[str, Any], previous: Incident | None, pending: deque,
                    before: tuple[str, int]) -> Incident:
        t = trigger["event_time"]
        msg = trigger.get("msg")
        inc = Incident(trigger["tenant_id"], trigger["asset_id"], None, "open", trigger["severity"], t, t,
                       title=trigger["summary"][:200],
                       title_msg=msg if isinstance(msg, dict) and msg.get("key") in MESSAGES else None,
                       incident_type=incident_type_of(trigger), trigger_event_id=trigger["id"])
        inc.attach(trigger, "trigger")
        after = previous.last_event_at if previous is not None and previous.last_event_at < t else NEG_INF
        start = t - self.window
        integrations = [r["integration_id"] for r in await store.fetch_all(
            conn, store.INTEGRATIONS_OF_ASSET, {"tenant_id": inc.tenant_id, "asset_id": inc.asset_id})]
        earlier = await store.fetch_all(conn, store.LOOKBACK, {
            "tenant_id": inc.tenant_id, "asset_id": inc.asset_id, "integrations": integrations, "start": start,
            "end": t, "after": after, "xid": before[0], "id": before[1], "limit": self.batch})
        for e in earlier:
            inc.attach(e, relation_of(e) if relation_of(e) != "trigger" else "related")
        for e in pending:
            if e["event_time"] >= start and e["event_time"] > after:
                inc.attach(e, relation_of(e) if relation_of(e) != "trigger" else "related")
        pending.clear()
        return inc

    async def _assets_of_integrations(self, conn: Conn, events: list[dict[str, Any]]) -> dict[tuple, list[int]]:
        pairs = {(e["tenant_id"], e["integration_id"]) for e in events if e["asset_id"] is None}
        if not pairs:
            return {}
        tenants, integrations = zip(*pairs)
        rows = await store.fetch_all(conn, store.ASSETS_OF_INTEGRATIONS, {"tenants": list(tenants),
                                                                          "integrations": list(integrations)})
        out: dict[tuple, list[int]] = defaultdict(list)
        for r in rows:
            out[(r["tenant_id"], r["integration_id"])].append(r["asset_id"])
        return out

    async def _latest_incidents(self, conn: Conn, keys: set[tuple]) -> dict[tuple, Incident]:
        tenants, assets = zip(*keys)
        rows = await store.fetch_all(conn, store.LATEST_INCIDENTS, {"tenants": list(tenants), "assets": list(assets)})
        return {(r["tenant_id"], r["asset_id"]): Incident(r["tenant_id"], r["asset_id"], r["id"], r["status"],
                                                          r["severity"], r["started_at"], r["last_event_at"])
                for r in rows}

    async def _write(self, conn: Conn, incidents: list[Incident]) -> None:
        for inc in incidents:
            if inc.is_new:
                row = await store.fetch_one(conn, store.INSERT_INCIDENT, {
                    "tenant_id": inc.tenant_id, "asset_id": inc.asset_id, "title": inc.title,
                    "incident_type": inc.incident_type, "severity": inc.severity, "started_at": inc.started_at,
                    "last_event_at": inc.last_event_at, "trigger_event_id": inc.trigger_event_id,
                    "title_key": inc.title_msg["key"] if inc.title_msg else None,
                    "title_params": Jsonb(inc.title_msg.get("params") or {}) if inc.title_msg else None})
                inc.id = row["id"] if row else None
                log.info("blackbox.incident_opened", extra={"tenant_id": str(inc.tenant_id), "incident_id": inc.id,
                                                            "asset_id": inc.asset_id, "type": inc.incident_type})
        links = [(inc.tenant_id, inc.id, key, link) for inc in incidents for key, link in inc.links.items()]
        if links:
            await conn.execute(store.UPSERT_INCIDENT_EVENTS, {
                "tenants": [t for t, _, _, _ in links], "incidents": [i for _, i, _, _ in links],
                "event_ids": [lk.event_id for *_, lk in links], "event_times": [lk.event_time for *_, lk in links],
                "relations": [lk.relation for *_, lk in links], "flood_keys": [k for _, _, k, _ in links],
                "counts": [lk.count for *_, lk in links], "last_ids": [lk.last_id for *_, lk in links],
                "last_times": [lk.last_time for *_, lk in links]})
        await conn.execute(store.UPDATE_INCIDENTS, {
            "tenants": [i.tenant_id for i in incidents], "ids": [i.id for i in incidents],
            "started": [i.started_at for i in incidents], "last": [i.last_event_at for i in incidents],
            "severities": [i.severity for i in incidents], "added": [i.added for i in incidents]})
