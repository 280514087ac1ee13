"""Collectors: read a source incrementally, turn each record into an event, store it idempotently.

Each collector runs as an ingest-service job (see :mod:`optria.blackbox.jobs`), beside the
workers and never in the sample write path. One round is one transaction in the explicit
``platform("blackbox")`` scope: lock the collector's cursor row (``FOR UPDATE SKIP LOCKED``,
so when two ingest processes run the same collector one of them simply skips the round),
read what is new, write events with their tenant_id (``ON CONFLICT DO NOTHING`` on
tenant, source system, source id and event time), save the cursor or per-source state,
commit. A crash anywhere rolls the whole round back, so nothing is lost or doubled.

=================  ======================================================================
collector          reads
=================  ======================================================================
blackbox.alerts    ``alert_history`` after the cursor, in (xact_id, id) order, stopping below
                   the oldest transaction in flight (raised, acknowledged, cleared)
blackbox.work_     ``work_order_history`` the same way (opened, status changes, closed)
orders
blackbox.limits    the ingest commit log (``sample_batches``) in commit order, (xid, id) below
                   the oldest transaction in flight; the rows each entry stored for mapped
                   signals with limits, scale/offset applied, through the hysteresis machine
                   of :mod:`optria.blackbox.limits`; state in ``blackbox_signal_state``.
                   Rows newer than the signal's last evaluated time continue its state; rows
                   arriving late (backfill after an outage, spool replay) are evaluated as
                   their own stretch of history, so a breach inside an outage is recorded
                   once, at its source time; while a source reads its history back, its
                   signals' newest rows wait (see LimitCollector)
blackbox.quality   ``signal_latest`` rows of mapped signals whose good/bad quality (3 bad,
                   4 stale) differs from ``blackbox_signal_state.quality_bad``
blackbox.          ``ingest_health`` rows whose state (or reconnect counter) differs from
integrations       ``blackbox_integration_state``
blackbox.          ``optimization_runs`` from the lowest run that may still change (started,
optimization       finished or failed, recommendations); skipped while the table is absent
=================  ======================================================================
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from optria.blackbox import store
from optria.blackbox.events import EventRecord, fmt_value
from optria.blackbox.messages import limit_message, message, scope_params
from optria.blackbox.limits import Transition, side, step
from optria.blackbox.recording import record
from optria.blackbox.rounds import RoundsJob
from optria.blackbox.severity import alert_severity, limit_severity, work_order_severity
from optria.blackbox.store import Conn
from optria.db import Database
from optria.timeseries import store as timeseries
from optria.timeseries.limits import Limits, raw_level

log = logging.getLogger("optria.blackbox.collectors")

PLATFORM_REASON = "blackbox"


class Collector(RoundsJob):
    """Base: a named job whose ``run_once`` drains its source in rounds of ``batch`` records."""

    name = "blackbox.collector"

    async def round(self) -> tuple[int, bool]:
        async with self.db.platform(PLATFORM_REASON, cached_plans=True) as conn:
            cursor = await store.lock_cursor(conn, self.name)
            if cursor is None:
                return 0, False  # another process is running this collector right now
            before = (cursor["position"], cursor["position_xid"])
            processed, more = await self.collect(conn, cursor)
            if processed or (cursor["position"], cursor["position_xid"]) != before:
                await store.save_cursor(conn, cursor, processed)
        if processed:
            log.debug("blackbox.collected", extra={"collector": self.name, "records": processed})
        return processed, more

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- alerts and work orders


def alert_event(row: dict[str, Any]) -> EventRecord:
    action = row["action"]
    payload = {"alert_id": row["alert_id"], "from_status": row["from_status"], "to_status": row["to_status"],
               "alert_severity": row["severity"], "alert_source": row["source"], "source_ref": row["source_ref"]}
    if row["note"]:
        payload["note"] = row["note"]
    common = dict(tenant_id=row["tenant_id"], source_system="alerts", source_id=f"alert_history:{row['id']}",
                  event_time=row["at"], summary=row["title"], payload=payload, asset_id=row["asset_id"],
                  site_id=row["site_id"], unit_id=row["unit_id"], actor=row["actor_name"],
                  correlation_id=f"alert:{row['alert_id']}")
    if action == "raised":
        return EventRecord(source_type="alert_raised", severity=alert_severity(row["severity"]), event_category="alarm",
                           alarm_key=row["alarm_key"], **common)
    return EventRecord(source_type=f"alert_{action}", severity="info", event_category="operator_action", **common)


def work_order_event(row: dict[str, Any]) -> EventRecord:
    action = row["action"]
    payload = {"work_order_id": row["work_order_id"], "from_status": row["from_status"], "to_status": row["to_status"],
               "priority": row["priority"], "alert_id": row["alert_id"]}
    if row["note"]:
        payload["note"] = row["note"]
    severity = work_order_severity(row["priority"]) if action == "opened" else "info"
    return EventRecord(tenant_id=row["tenant_id"], source_system="work_orders", source_type=f"work_order_{action}",
                       source_id=f"work_order_history:{row['id']}", event_time=row["at"], severity=severity,
                       event_category="maintenance", summary=row["title"], payload=payload, asset_id=row["asset_id"],
                       site_id=row["site_id"], unit_id=row["unit_id"], actor=row["actor_name"],
                       correlation_id=f"work_order:{row['work_order_id']}")


class HistoryCollector(Collector):
    """Follows an append-only history table by (xact_id, id)."""

    query = ""

    def normalize(self, row: dict[str, Any]) -> EventRecord:
        raise NotImplementedError

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        rows = await store.fetch_all(conn, self.query, {"xid": cursor["position_xid"], "id": cursor["position"],
                                                        "limit": self.batch})
        if not rows:
            return 0, False
        await record(conn, (self.normalize(r) for r in rows))
        last = rows[-1]
        cursor.update(position=last["id"], position_xid=last["xid"], position_time=datetime.now(timezone.utc))
        return len(rows), len(rows) == self.batch


class AlertCollector(HistoryCollector):
    name = "blackbox.alerts"
    query = store.ALERT_HISTORY_AFTER

    def normalize(self, row: dict[str, Any]) -> EventRecord:
        return alert_event(row)


class WorkOrderCollector(HistoryCollector):
    name = "blackbox.work_orders"
    query = store.WORK_ORDER_HISTORY_AFTER

    def normalize(self, row: dict[str, Any]) -> EventRecord:
        return work_order_event(row)


# ----------------------------------------------------------------------------- limits


def limit_event(c: dict[str, Any], t: Transition, when: datetime, value: float, raw: float | None,
                quality: int, deadband: float) -> EventRecord:
    sid = c["signal_id"]
    unit = f" {c['unit']}" if c["unit"] else ""
    high = t.level.endswith("_high")
    if t.kind == "breach":
        summary = f"{c['signal_name']}: {fmt_value(value)}{unit} {'>' if high else '<'} {fmt_value(t.limit)}"
        severity, source_type, alarm_key = limit_severity(t.level), "limit_breach", f"limit:{sid}:{t.level}"
    else:
        summary = f"{c['signal_name']}: {fmt_value(value)}{unit} {'≤' if high else '≥'} {fmt_value(t.limit)}"
        severity, source_type, alarm_key = "info", "limit_return", None
    payload = {"value": value, "raw_value": raw, "limit": t.limit, "level": t.level, "state_after": t.to_state,
               "deadband": round(deadband, 6), "unit": c["unit"], "quality": quality, "metric_role": c["metric_role"],
               "msg": limit_message(t.kind, t.level, c["signal_name"], value, t.limit, c["unit"])}
    return EventRecord(tenant_id=c["tenant_id"], source_system="limits", source_type=source_type,
                       source_id=f"signal:{sid}:{t.kind}:{t.level}", event_time=when, severity=severity,
                       event_category="limit", summary=summary, payload=payload, asset_id=c["asset_id"],
                       site_id=c["site_id"], unit_id=c["unit_id"], integration_id=c["integration_id"], signal_id=sid,
                       correlation_id=f"limit:{sid}", alarm_key=alarm_key)


def _usable(s: dict[str, Any]) -> bool:
    return s["value"] is not None and s["quality"] not in (3, 4)   # bad or stale data says nothing


def evaluate_signal(c: dict[str, Any], samples: list[dict[str, Any]]) -> tuple[str, datetime | None, list[EventRecord]]:
    """Run one signal's new samples through the hysteresis machine: (state, since, events)."""
    limits = Limits(c["warn_low"], c["warn_high"], c["crit_low"], c["crit_high"])
    state, since = c["limit_state"], c["limit_since"]
    events: list[EventRecord] = []
    scale, offset = c["scale"], c["offset"]
    for s in samples:
        if not _usable(s):
            continue
        raw = s["value"]
        value = raw * scale + offset
        new_state, transitions = step(limits, state, value)
        for t in transitions:
            events.append(limit_event(c, t, s["time"], value, raw, s["quality"], limits.deadband))
        if new_state != state:
            if new_state == "normal":
                since = None
            elif state == "normal" or side(state) != side(new_state):
                since = s["time"]
            # an escalation or de-escalation on the same side: standing since the band was first entered
            state = new_state
    return state, since, events


def evaluate_late(c: dict[str, Any], samples: list[dict[str, Any]], before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> list[EventRecord]:
    """Events of rows that arrived after newer ones were evaluated (a backfilled outage).

    They are a stretch of history of their own: the machine starts in the band of the stored
    row just before them (``before``), runs through them, and is closed by the stored row just
    after them (``after``), which may only record a return — what happened from there on was
    evaluated when it arrived. The signal's current state is not touched."""
    limits = Limits(c["warn_low"], c["warn_high"], c["crit_low"], c["crit_high"])
    scale, offset = c["scale"], c["offset"]
    state = "normal"
    if before is not None and before["before_value"] is not None:
        state = raw_level(limits, before["before_value"] * scale + offset)
    events: list[EventRecord] = []
    for s in samples:
        if not _usable(s):
            continue
        value = s["value"] * scale + offset
        state, transitions = step(limits, state, value)
        events.extend(limit_event(c, t, s["time"], value, s["value"], s["quality"], limits.deadband)
                      for t in transitions)
    if state != "normal" and after is not None and after["after_value"] is not None:
        value = after["after_value"] * scale + offset
        _, transitions = step(limits, state, value)
        events.extend(limit_event(c, t, after["after_time"], value, after["after_value"], after["after_quality"],
                                  limits.deadband) for t in transitions if t.kind == "return")
    return events


class LimitCollector(Collector):
    """Follows the ingest commit log; see the module docstring.

    Rows that follow a gap are not judged while their source is still reading the gap back (its
    worker connecting, backfilling or just started, see ``store.INTEGRATIONS_CATCHING_UP``): the
    signal is held, and once the source has caught up (or after ``hold_max_s``) its stored rows
    after the last one judged are read in time order and judged as one stretch. Otherwise the
    newest rows would be judged first, from the state before the outage, and a breach that began
    in the outage and lasted past it would be recorded twice: where live data resumed, and again
    at its source time when the backfill arrived."""

    name = "blackbox.limits"
    batch = 500                 # commit-log entries per round at most
    max_rows = 200_000          # and about this many stored rows
    hold_max_s = 300.0          # a source that cannot read its history back for this long is judged as it is
    fresh_lease_s = 15.0        # a lease this new: its worker has not said yet whether it is backfilling
    catch_up_rows = 20_000      # stored rows per held signal read per round
    catch_up_signals = 500      # held signals looked at per round
    first_catch_up = timedelta(hours=24)   # a held signal never judged before: rows this far back

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        events: list[EventRecord] = []
        states: list[tuple] = []
        now = datetime.now(timezone.utc)
        processed, more = 0, False
        known: dict[Any, set[int]] = {}
        entries = await timeseries.batches_after(conn, cursor["position_xid"], cursor["position"], self.batch)
        if entries:
            processed, more = await self._follow(conn, cursor, entries, events, states, now, known)
        caught_up, more_held = await self._release(conn, events, states, now, known)
        if events:
            await record(conn, events)
        if states:
            cols = list(zip(*states))
            await conn.execute(store.SAVE_LIMIT_STATE, {"tenants": list(cols[0]), "signals": list(cols[1]),
                                                        "states": list(cols[2]), "since": list(cols[3]),
                                                        "times": list(cols[4]), "held": list(cols[5])})
        return processed + caught_up, more or more_held

    async def _catching_up(self, conn: Conn, tenants: list[Any], known: dict[Any, set[int]]) -> set[tuple[Any, int]]:
        """(tenant, integration) still catching up, for these tenants; ``known`` keeps what this
        round has already asked, so the entries and the release pass ask once per tenant."""
        asking = [t for t in tenants if t not in known]
        if asking:
            for t in asking:
                known[t] = set()
            for r in await store.fetch_all(conn, store.INTEGRATIONS_CATCHING_UP,
                                           {"tenants": asking, "fresh_lease_s": self.fresh_lease_s}):
                known[r["tenant_id"]].add(r["integration_id"])
        return {(t, i) for t in tenants for i in known[t]}

    async def _follow(self, conn: Conn, cursor: dict[str, Any], entries: list[dict[str, Any]],
                      events: list[EventRecord], states: list[tuple], now: datetime,
                      known: dict[Any, set[int]]) -> tuple[int, bool]:
        """The rows of the commit-log entries after the cursor: new rows continue each signal's
        state (or hold it, see the class docstring); rows older than its last judged one are a
        stretch of history of their own (``evaluate_late``)."""
        more = len(entries) == self.batch
        total = 0
        for i, e in enumerate(entries):
            total += e["rows"]
            if total > self.max_rows and i > 0:
                entries, more = entries[:i], True
                break
        last = entries[-1]
        cursor.update(position=last["id"], position_xid=last["xid"], position_time=now)
        tenants = list({e["tenant_id"] for e in entries})
        watched = {(c["tenant_id"], c["signal_id"]): c
                   for c in await store.fetch_all(conn, store.LIMIT_WATCHED, {"tenants": tenants})}
        if not watched:
            return 0, more
        catching_up = await self._catching_up(conn, tenants, known)
        by_tenant: dict[Any, list[int]] = defaultdict(list)
        for tenant, sid in watched:
            by_tenant[tenant].append(sid)
        ranges: dict[tuple, tuple[datetime, datetime]] = {}

        def cover(key: tuple, lo: datetime, hi: datetime) -> None:
            cur = ranges.get(key)
            ranges[key] = (lo, hi) if cur is None else (min(cur[0], lo), max(cur[1], hi))

        for e in entries:
            if e["signal_ids"] is None:      # a live entry: every watched signal of its tenant
                for sid in by_tenant.get(e["tenant_id"], ()):
                    cover((e["tenant_id"], sid), e["min_time"], e["max_time"])
            else:                            # a wide entry lists its signals with their own ranges
                for sid, lo, hi in zip(e["signal_ids"], e["first_times"], e["last_times"]):
                    if (e["tenant_id"], sid) in watched:
                        cover((e["tenant_id"], sid), lo, hi)
        rows = await timeseries.batch_rows(conn, ranges, [e["ingest_time"] for e in entries])
        by_signal: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_signal[(r["tenant_id"], r["signal_id"])].append(r)
        late: dict[tuple, list[dict[str, Any]]] = {}
        hold: list[tuple] = []
        for key, samples in by_signal.items():
            c = watched[key]
            frontier = c["limit_time"]
            fresh = [s for s in samples if frontier is None or s["time"] > frontier]
            older = [s for s in samples if frontier is not None and s["time"] <= frontier]
            if older:
                late[key] = older
            if not fresh:
                continue
            if c["limit_held_at"] is not None or (key[0], c["integration_id"]) in catching_up:
                hold.append(key)             # judged from storage once its source has caught up
                continue
            state, since, found = evaluate_signal(c, fresh)
            events.extend(found)
            states.append((key[0], key[1], state, since, fresh[-1]["time"], None))
        if late:
            around = await timeseries.neighbours(conn, {k: (v[0]["time"], v[-1]["time"]) for k, v in late.items()})
            for key, samples in late.items():
                n = around.get(key)
                events.extend(evaluate_late(watched[key], samples, n if n and n["before_time"] else None,
                                            n if n and n["after_time"] else None))
            log.info("blackbox.late_rows_evaluated", extra={"signals": len(late),
                                                            "rows": sum(len(v) for v in late.values())})
        new_holds = [k for k in hold if watched[k]["limit_held_at"] is None]
        if new_holds:
            await conn.execute(store.HOLD_LIMITS, {"tenants": [k[0] for k in new_holds],
                                                   "signals": [k[1] for k in new_holds],
                                                   "now": [now] * len(new_holds)})
        return len(rows), more

    async def _release(self, conn: Conn, events: list[EventRecord], states: list[tuple],
                       now: datetime, known: dict[Any, set[int]]) -> tuple[int, bool]:
        """Held signals whose source has caught up (or waited too long): their stored rows after
        the last one judged, in time order, continue their state; the hold ends when all are read."""
        held = await store.fetch_all(conn, store.LIMIT_HELD, {"limit": self.catch_up_signals})
        if not held:
            return 0, False
        catching_up = await self._catching_up(conn, list({c["tenant_id"] for c in held}), known)
        due = {(c["tenant_id"], c["signal_id"]): c for c in held
               if (c["tenant_id"], c["integration_id"]) not in catching_up
               or (now - c["limit_held_at"]).total_seconds() >= self.hold_max_s}
        if not due:
            return 0, False
        after = {k: c["limit_time"] or c["limit_held_at"] - self.first_catch_up for k, c in due.items()}
        rows = await timeseries.rows_after(conn, after, self.catch_up_rows)
        by_signal: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_signal[(r["tenant_id"], r["signal_id"])].append(r)
        more = False
        for key, c in due.items():
            samples = by_signal.get(key, [])
            unfinished = len(samples) >= self.catch_up_rows
            more |= unfinished
            state, since, found = evaluate_signal(c, samples)
            events.extend(found)
            states.append((key[0], key[1], state, since, samples[-1]["time"] if samples else c["limit_time"],
                           c["limit_held_at"] if unfinished else None))
        log.info("blackbox.limits_caught_up", extra={"signals": len(due), "rows": len(rows)})
        return len(rows), more


# ----------------------------------------------------------------------------- data quality


def quality_event(row: dict[str, Any]) -> tuple[EventRecord, bool, datetime | None]:
    """The event for one quality change, the new bad flag and since when it has been bad."""
    bad = row["quality"] in (3, 4)
    if bad:
        source_type = "quality_stale" if row["quality"] == 4 else "quality_bad"
        # a stale mark keeps the last sample's time; the change happened when it was marked
        when = row["ingest_time"] if row["quality"] == 4 else row["time"]
        severity = "medium"
    else:
        source_type, when, severity = "quality_good", row["time"], "info"
    sid = row["signal_id"]
    payload = {"quality": row["quality"], "value": row["value"], "sample_time": row["time"].isoformat(),
               "msg": message(source_type, signal=row["signal_name"])}
    event = EventRecord(tenant_id=row["tenant_id"], source_system="quality", source_type=source_type,
                        source_id=f"signal:{sid}:{source_type}", event_time=when, severity=severity,
                        event_category="quality", summary=row["signal_name"], payload=payload,
                        asset_id=row["asset_id"], site_id=row["site_id"], unit_id=row["unit_id"],
                        integration_id=row["integration_id"], signal_id=sid, correlation_id=f"quality:{sid}")
    return event, bad, (when if bad else None)


class QualityCollector(Collector):
    name = "blackbox.quality"
    batch = 2_000

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        rows = await store.fetch_all(conn, store.QUALITY_CHANGES, {"limit": self.batch})
        if not rows:
            return 0, False
        events, states = [], []
        for row in rows:
            event, bad, since = quality_event(row)
            events.append(event)
            states.append((row["tenant_id"], row["signal_id"], bad, since))
        await record(conn, events)
        cols = list(zip(*states))
        await conn.execute(store.SAVE_QUALITY_STATE, {"tenants": list(cols[0]), "signals": list(cols[1]),
                                                      "bad": list(cols[2]), "since": list(cols[3])})
        cursor["position_time"] = datetime.now(timezone.utc)
        return len(rows), len(rows) == self.batch


# ----------------------------------------------------------------------------- integrations

CONNECTED_STATES = frozenset({"streaming", "backfilling"})
INTEGRATION_SEVERITY = {"integration_connected": "info", "integration_disconnected": "high",
                        "integration_error": "high", "integration_stopped": "low",
                        "integration_backfill_started": "low", "integration_backfilled": "info"}


def integration_transitions(prev: str | None, new: str, prev_reconnects: int | None, reconnects: int) -> list[str]:
    """Event source types for a change of an integration's ingest state (prev None: first seen)."""
    if prev == new:
        if new in CONNECTED_STATES and prev_reconnects is not None and reconnects > prev_reconnects:
            return ["integration_disconnected", "integration_connected"]  # dropped and came back between polls
        return []
    if new == "error":
        return ["integration_error"]
    if new == "stopped":
        return ["integration_stopped"] if prev is not None else []
    if new == "backfilling":
        return (["integration_connected"] if prev not in CONNECTED_STATES else []) + ["integration_backfill_started"]
    if new == "streaming":
        return ["integration_backfilled"] if prev == "backfilling" else ["integration_connected"]
    # starting, connecting, reconnecting, or a state this version does not know
    return ["integration_disconnected"] if prev in CONNECTED_STATES else []


def integration_events(row: dict[str, Any]) -> list[EventRecord]:
    out = []
    for i, source_type in enumerate(integration_transitions(row["prev_state"], row["state"], row["prev_reconnects"],
                                                            row["reconnects"])):
        payload: dict[str, Any] = {"state": row["state"], "previous_state": row["prev_state"], "kind": row["kind"],
                                   "reconnects": row["reconnects"],
                                   "msg": message(source_type, integration=row["integration_name"])}
        if row["last_sample_time"] is not None:
            payload["last_sample_time"] = row["last_sample_time"].isoformat()
        if source_type == "integration_error" and row["last_error"]:
            payload["last_error"] = str(row["last_error"])[:300]
        # two events of one change share the heartbeat time; a microsecond apart keeps the order visible
        when = row["heartbeat_at"] + timedelta(microseconds=i)
        out.append(EventRecord(tenant_id=row["tenant_id"], source_system="ingest", source_type=source_type,
                               source_id=f"integration:{row['integration_id']}:{source_type}", event_time=when,
                               severity=INTEGRATION_SEVERITY[source_type], event_category="integration",
                               summary=row["integration_name"], payload=payload,
                               integration_id=row["integration_id"],
                               correlation_id=f"integration:{row['integration_id']}"))
    return out


class IntegrationCollector(Collector):
    name = "blackbox.integrations"
    interval_s = 2.0
    batch = 1_000

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        rows = await store.fetch_all(conn, store.INTEGRATION_CHANGES, {"limit": self.batch})
        if not rows:
            return 0, False
        await record(conn, (e for row in rows for e in integration_events(row)))
        for row in rows:
            await conn.execute(store.SAVE_INTEGRATION_STATE, {
                "tenant_id": row["tenant_id"], "integration_id": row["integration_id"], "state": row["state"],
                "connected": row["connected"], "reconnects": row["reconnects"], "seen_at": row["heartbeat_at"]})
        cursor["position_time"] = datetime.now(timezone.utc)
        return len(rows), len(rows) == self.batch


# ----------------------------------------------------------------------------- optimization runs

RUN_FINISHED = frozenset({"succeeded", "fallback"})
RUN_FAILED = frozenset({"failed"})
RUN_STARTED = frozenset({"running"}) | RUN_FINISHED | RUN_FAILED
RUN_COLUMNS = frozenset({"tenant_id", "id", "scope", "scope_id", "scope_label", "engine", "status", "created_at", "started_at",
                         "finished_at", "error", "fallback_reason", "recommendations"})
SETTLE = timedelta(minutes=10)   # a run created this recently may still be joined by one with a lower id


def run_events(row: dict[str, Any]) -> list[EventRecord]:
    """Events of one optimization run (started, finished or failed, recommendations), by its current status."""
    status = row["status"]
    started = row["started_at"]
    finished = row["finished_at"]
    engine = row["engine"]
    label = row["scope_label"] or engine
    scope = row["scope"]
    base = dict(tenant_id=row["tenant_id"], source_system="optimization", event_category="optimization",
                asset_id=row["asset_id"], unit_id=row["unit_id"], site_id=row["site_id"],
                integration_id=row["integration_id"], correlation_id=f"optimization_run:{row['id']}")
    info = {"run_id": row["id"], "engine": engine, "scope": scope, "scope_id": row["scope_id"]}
    where = scope_params(row)

    def said(key: str, **extra: Any) -> dict[str, Any]:
        return {"msg": message(key, run=row["id"], scope=where, **extra)}

    out = []
    if status in RUN_STARTED and started is not None:
        out.append(EventRecord(source_type="optimization_started", source_id=f"optimization_run:{row['id']}:started",
                               event_time=started, severity="info", summary=label,
                               payload={**info, **said("optimization_started")}, **base))
    if finished is not None and status in RUN_FINISHED:
        payload = {**info, "status": status, **said("optimization_finished")}
        if row["fallback_reason"]:
            payload["fallback_reason"] = str(row["fallback_reason"])[:300]
        out.append(EventRecord(source_type="optimization_finished", source_id=f"optimization_run:{row['id']}:finished",
                               event_time=finished, severity="info", summary=label, payload=payload, **base))
        recs = row["recommendations"]
        if isinstance(recs, list) and recs:
            first = recs[0] if isinstance(recs[0], dict) else {}
            title = str(first.get("title") or label)[:200]
            out.append(EventRecord(source_type="optimization_recommendations",
                                   source_id=f"optimization_run:{row['id']}:recommendations", event_time=finished,
                                   severity="info", summary=title,
                                   payload={**info, "count": len(recs),
                                            **said("optimization_recommendations", count=len(recs))}, **base))
    if finished is not None and status in RUN_FAILED:
        payload = {**info, "status": status, **said("optimization_failed")}
        if row["error"]:
            payload["error"] = str(row["error"])[:300]
        out.append(EventRecord(source_type="optimization_failed", source_id=f"optimization_run:{row['id']}:failed",
                               event_time=finished, severity="low", summary=label, payload=payload, **base))
    return out


class OptimizationCollector(Collector):
    """Optimization runs (``optimization_runs``, 0007_optimization.sql): started, finished or failed, recommendations.

    Skipped while the table does not exist (or lacks a column read here). The cursor is the
    lowest run id that may still change (queued, running, or created within ``SETTLE``): runs
    from there on are re-read each round and their events deduplicated by the uniqueness rule.
    """

    name = "blackbox.optimization"
    interval_s = 2.0
    batch = 1_000
    table = "optimization_runs"

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._ready = False

    async def _table_ready(self, conn: Conn) -> bool:
        present = await store.fetch_one(conn, store.TABLE_EXISTS, {"name": self.table})
        if not present or not present["present"]:
            return False
        columns = {r["column_name"] for r in await store.fetch_all(conn, store.TABLE_COLUMNS, {"name": self.table})}
        if not RUN_COLUMNS <= columns:
            log.warning("blackbox.optimization_runs_unreadable", extra={"missing": sorted(RUN_COLUMNS - columns)})
            return False
        return True

    async def collect(self, conn: Conn, cursor: dict[str, Any]) -> tuple[int, bool]:
        if not self._ready:
            self._ready = await self._table_ready(conn)
            if not self._ready:
                return 0, False
        rows = await store.fetch_all(conn, store.OPTIMIZATION_RUNS_FROM, {"position": cursor["position"],
                                                                          "limit": self.batch})
        if not rows:
            return 0, False
        await record(conn, (e for row in rows for e in run_events(row)))
        now = datetime.now(timezone.utc)
        unsettled = [r["id"] for r in rows if r["status"] not in RUN_FINISHED | RUN_FAILED
                     or r["created_at"] > now - SETTLE]
        new_position = min(unsettled) if unsettled else rows[-1]["id"] + 1
        moved = new_position != cursor["position"]
        cursor.update(position=new_position, position_time=now)
        return (len(rows) if moved else 0), len(rows) == self.batch and moved


def all_collectors(db: Database) -> list[Collector]:
    return [AlertCollector(db), WorkOrderCollector(db), LimitCollector(db), QualityCollector(db),
            IntegrationCollector(db), OptimizationCollector(db)]
