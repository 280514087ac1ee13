"""Collectors against a real database: incremental, idempotent, hysteresis, tenant-safe, safe in two processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest

from optria.blackbox.collectors import (
    AlertCollector,
    IntegrationCollector,
    LimitCollector,
    OptimizationCollector,
    QualityCollector,
    WorkOrderCollector,
)
from optria.db import Database
from tests.blackbox.arrange import (
    add_signal,
    change_alert,
    change_work_order,
    make_plant,
    mark_stale,
    now,
    open_work_order,
    raise_alert,
    rows,
    set_health,
    write_samples,
)


def events(conn, tenant_id, source_system: str) -> list[tuple]:
    return rows(conn, "SELECT source_type, severity, event_category, summary, asset_id, actor, alarm_key, payload, site_id "
                      "FROM industrial_events WHERE tenant_id = %s AND source_system = %s ORDER BY event_time, id",
                tenant_id, source_system)


# ----------------------------------------------------------------------------- alerts / work orders


async def test_alert_collector_is_incremental_and_idempotent(db: Database, owner_conn) -> None:
    a = make_plant(owner_conn)
    b = make_plant(owner_conn, tag="B")
    t0 = now() - timedelta(minutes=5)
    alert = raise_alert(owner_conn, a.tenant_id, a.assets[0], "critical", "Bearing temperature high", at=t0, actor="sara")
    raise_alert(owner_conn, b.tenant_id, b.assets[0], "low", "Filter dirty", at=t0)
    collector = AlertCollector(db)

    assert await collector.run_once() == 2
    got = events(owner_conn, a.tenant_id, "alerts")
    assert [(g[0], g[1], g[2], g[3], g[4], g[5]) for g in got] == [
        ("alert_raised", "critical", "alarm", "Bearing temperature high", a.assets[0], "sara")]
    assert got[0][6] == f"alert:{a.assets[0]}:manual:None" or got[0][6] == f"alert:{a.assets[0]}:bearing temperature high"
    assert got[0][8] == a.site_id  # shown under its site
    assert [g[0] for g in events(owner_conn, b.tenant_id, "alerts")] == ["alert_raised"]

    assert await collector.run_once() == 0  # nothing new: nothing read, nothing written
    change_alert(owner_conn, a.tenant_id, alert, "acknowledged", at=t0 + timedelta(minutes=1), actor="omar")
    change_alert(owner_conn, a.tenant_id, alert, "cleared", at=t0 + timedelta(minutes=2), note="bearing greased")
    assert await collector.run_once() == 2
    got = events(owner_conn, a.tenant_id, "alerts")
    assert [(g[0], g[1], g[2]) for g in got] == [("alert_raised", "critical", "alarm"),
                                                 ("alert_acknowledged", "info", "operator_action"),
                                                 ("alert_cleared", "info", "operator_action")]
    assert got[1][5] == "omar" and got[1][6] is None
    assert got[2][7]["note"] == "bearing greased"

    # a cursor reset (or a second process replaying) adds nothing: the uniqueness rule holds
    owner_conn.execute("UPDATE blackbox_cursors SET position = 0, position_xid = '0' WHERE collector = 'blackbox.alerts'")
    assert await collector.run_once() == 4
    assert rows(owner_conn, "SELECT count(*) FROM industrial_events WHERE source_system = 'alerts'")[0][0] == 4


async def test_alert_collector_never_skips_a_row_committed_late(db: Database, owner_conn, db_dsn) -> None:
    """A history row whose id was taken first but committed last is still collected."""
    p = make_plant(owner_conn)
    collector = AlertCollector(db)
    slow = psycopg.connect(db_dsn)
    try:
        slow.execute("INSERT INTO alerts (tenant_id, asset_id, severity, title) VALUES (%s, %s, 'high', 'Slow one') "
                     "RETURNING id", [p.tenant_id, p.assets[0]])
        slow_alert = slow.execute("SELECT max(id) FROM alerts").fetchone()[0]
        slow.execute("INSERT INTO alert_history (tenant_id, alert_id, asset_id, action, to_status, actor_name) "
                     "VALUES (%s, %s, %s, 'raised', 'open', 'x')", [p.tenant_id, slow_alert, p.assets[0]])
        raise_alert(owner_conn, p.tenant_id, p.assets[1], "high", "Fast one",   # larger id, committed first
                    wait_visible=False)
        await collector.run_once()
        assert [g[3] for g in events(owner_conn, p.tenant_id, "alerts")] == []  # waits for the older transaction
        slow.commit()
    finally:
        slow.close()
    await collector.run_once()
    assert sorted(g[3] for g in events(owner_conn, p.tenant_id, "alerts")) == ["Fast one", "Slow one"]


async def test_work_order_collector(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    t0 = now() - timedelta(minutes=10)
    wo = open_work_order(owner_conn, p.tenant_id, p.assets[0], "Replace seal", "urgent", at=t0)
    collector = WorkOrderCollector(db)
    assert await collector.run_once() == 1
    change_work_order(owner_conn, p.tenant_id, wo, "in_progress", at=t0 + timedelta(minutes=1))
    change_work_order(owner_conn, p.tenant_id, wo, "closed", at=t0 + timedelta(minutes=2))
    assert await collector.run_once() == 2
    assert await collector.run_once() == 0
    got = events(owner_conn, p.tenant_id, "work_orders")
    assert [(g[0], g[1], g[2]) for g in got] == [("work_order_opened", "high", "maintenance"),
                                                 ("work_order_status_changed", "info", "maintenance"),
                                                 ("work_order_closed", "info", "maintenance")]
    assert got[0][7]["priority"] == "urgent"


# ----------------------------------------------------------------------------- limits


def series(start, values, step_s: float = 1.0):
    return [(start + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)]


async def test_limit_breaches_with_hysteresis(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    sid = add_signal(owner_conn, p, p.assets[0], "Vibration", warn_high=7.1, crit_high=11.0)
    t0 = now() - timedelta(minutes=20)
    # deadband = 2 % of 11 = 0.22: back below critical needs ≤ 10.78, back to normal ≤ 6.88
    write_samples(owner_conn, p.tenant_id, sid, series(t0, [5.0, 8.0, 11.5, 10.9, 11.2, 10.7, 7.0, 6.0]))
    collector = LimitCollector(db)
    assert await collector.run_once() == 8
    got = events(owner_conn, p.tenant_id, "limits")
    assert [(g[0], g[1], g[7]["level"]) for g in got] == [
        ("limit_breach", "medium", "warn_high"), ("limit_breach", "critical", "crit_high"),
        ("limit_return", "info", "crit_high"), ("limit_return", "info", "warn_high")]
    assert got[1][3] == "Vibration: 11.5 mm/s > 11"
    assert got[1][6] == f"limit:{sid}:crit_high" and got[2][6] is None   # only breaches are alarm annunciations
    state = rows(owner_conn, "SELECT limit_state, limit_since FROM blackbox_signal_state WHERE signal_id = %s", sid)[0]
    assert state == ("normal", None)
    assert await collector.run_once() == 0  # idempotent: nothing new to evaluate


async def test_value_hovering_on_a_limit_does_not_flood(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    sid = add_signal(owner_conn, p, p.assets[0], "Temperature", unit="degC", crit_high=110.0)
    t0 = now() - timedelta(minutes=10)
    write_samples(owner_conn, p.tenant_id, sid, series(t0, [109.9, 110.1] * 50))
    await LimitCollector(db).run_once()
    got = events(owner_conn, p.tenant_id, "limits")
    assert [(g[0], g[7]["level"]) for g in got] == [("limit_breach", "crit_high")]
    state = rows(owner_conn, "SELECT limit_state, limit_since FROM blackbox_signal_state WHERE signal_id = %s", sid)[0]
    assert state[0] == "crit_high" and state[1] == t0 + timedelta(seconds=1)


async def test_limit_state_survives_a_restart_and_is_incremental(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    # raw counts scaled to bar: value = raw * 0.01 - 1; limits on the engineering value
    sid = add_signal(owner_conn, p, p.assets[0], "Pressure", unit="bar", scale=0.01, offset=-1.0, crit_low=2.0,
                     crit_high=18.0)
    t0 = now() - timedelta(minutes=10)
    write_samples(owner_conn, p.tenant_id, sid, series(t0, [1300, 2000, 2050]))      # 12, 19, 19.5 bar
    assert await LimitCollector(db).run_once() == 3
    write_samples(owner_conn, p.tenant_id, sid, series(t0 + timedelta(seconds=10), [1950, 1300, 250, 250], 1))
    fresh = LimitCollector(db)   # a restarted process: the state comes from the table
    assert await fresh.run_once() == 4
    got = events(owner_conn, p.tenant_id, "limits")
    assert [(g[0], g[7]["level"]) for g in got] == [("limit_breach", "crit_high"), ("limit_return", "crit_high"),
                                                    ("limit_breach", "crit_low")]
    assert got[0][7]["value"] == pytest.approx(19.0) and got[0][7]["raw_value"] == 2000
    assert got[2][3] == "Pressure: 1.5 bar < 2"


async def test_limit_collector_skips_bad_quality_and_other_tenants_stay_apart(db: Database, owner_conn) -> None:
    a = make_plant(owner_conn)
    b = make_plant(owner_conn, tag="B")
    sa = add_signal(owner_conn, a, a.assets[0], crit_high=10.0)
    sb = add_signal(owner_conn, b, b.assets[0], crit_high=10.0)
    t0 = now() - timedelta(minutes=5)
    write_samples(owner_conn, a.tenant_id, sa, [(t0, 50.0, 3), (t0 + timedelta(seconds=1), 5.0, 0)])  # bad sample ignored
    write_samples(owner_conn, b.tenant_id, sb, [(t0, 50.0, 0)])
    await LimitCollector(db).run_once()
    assert events(owner_conn, a.tenant_id, "limits") == []
    got = events(owner_conn, b.tenant_id, "limits")
    assert len(got) == 1 and got[0][4] == b.assets[0]


# ----------------------------------------------------------------------------- quality


async def test_quality_going_bad_and_good_again(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    sid = add_signal(owner_conn, p, p.assets[0], "Flow", unit="m3/h")
    t0 = now() - timedelta(minutes=5)
    write_samples(owner_conn, p.tenant_id, sid, [(t0, 340.0, 0)])
    collector = QualityCollector(db)
    assert await collector.run_once() == 0          # good from the start: nothing to say
    write_samples(owner_conn, p.tenant_id, sid, [(t0 + timedelta(seconds=1), None, 3)])
    assert await collector.run_once() == 1
    assert await collector.run_once() == 0          # still bad: no second event
    write_samples(owner_conn, p.tenant_id, sid, [(t0 + timedelta(seconds=2), 341.0, 0)])
    assert await collector.run_once() == 1
    mark_stale(owner_conn, p.tenant_id, sid)         # the source went away
    assert await collector.run_once() == 1
    got = events(owner_conn, p.tenant_id, "quality")
    assert [(g[0], g[1]) for g in got] == [("quality_bad", "medium"), ("quality_good", "info"),
                                           ("quality_stale", "medium")]
    state = rows(owner_conn, "SELECT quality_bad, quality_since FROM blackbox_signal_state WHERE signal_id = %s", sid)
    assert state[0][0] is True and state[0][1] is not None


# ----------------------------------------------------------------------------- integrations


async def test_integration_state_changes(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    collector = IntegrationCollector(db)
    t0 = now() - timedelta(minutes=5)
    set_health(owner_conn, p.tenant_id, p.integration_id, "connecting", at=t0)
    assert await collector.run_once() == 1          # first seen, not connected yet: state recorded, no event
    steps = [("streaming", 0), ("reconnecting", 1), ("backfilling", 1), ("streaming", 1), ("streaming", 2),
             ("error", 2), ("stopped", 2)]
    for i, (state, reconnects) in enumerate(steps, start=1):
        set_health(owner_conn, p.tenant_id, p.integration_id, state, reconnects=reconnects,
                   error="connection refused" if state == "error" else None, at=t0 + timedelta(seconds=i))
        assert await collector.run_once() == 1
    assert await collector.run_once() == 0
    got = events(owner_conn, p.tenant_id, "ingest")
    assert [(g[0], g[1]) for g in got] == [
        ("integration_connected", "info"), ("integration_disconnected", "high"), ("integration_connected", "info"),
        ("integration_backfill_started", "low"), ("integration_backfilled", "info"),
        ("integration_disconnected", "high"), ("integration_connected", "info"),   # a reconnect between two polls
        ("integration_error", "high"), ("integration_stopped", "low")]
    assert all(g[4] is None for g in got)          # no asset: shown under the integration
    assert got[7][7]["last_error"] == "connection refused"


# ----------------------------------------------------------------------------- optimization runs


async def test_optimization_collector_skips_a_missing_table(db: Database) -> None:
    collector = OptimizationCollector(db)
    collector.table = "optimization_runs_not_there"   # as before the optimization migration landed
    assert await collector.run_once() == 0


async def test_optimization_runs_become_events(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    t0 = now() - timedelta(hours=1)

    def run(scope: str, scope_id, engine: str, status: str, finished=None, recs: str = "[]", reason=None) -> int:
        return owner_conn.execute(
            "INSERT INTO optimization_runs (tenant_id, scope, scope_id, scope_label, engine, status, requested_by_name, "
            "created_at, started_at, finished_at, recommendations, fallback_reason) "
            "VALUES (%s, %s, %s, 'P-1', %s, %s, 'sara', %s, %s, %s, %s, %s) RETURNING id",
            [p.tenant_id, scope, scope_id, engine, status, t0, t0 if status != "queued" else None, finished, recs,
             reason]).fetchone()[0]

    run("asset", p.assets[0], "analytics", "succeeded", t0 + timedelta(seconds=30), '[{"title": "خفض السرعة"}]')
    running = run("integration", p.integration_id, "ai", "running")
    run("tenant", None, "ai", "queued")
    collector = OptimizationCollector(db)
    await collector.run_once()
    got = rows(owner_conn, "SELECT source_type, asset_id, integration_id, summary FROM industrial_events "
                           "WHERE tenant_id = %s AND source_system = 'optimization' ORDER BY id", p.tenant_id)
    assert sorted(g[0] for g in got) == ["optimization_finished", "optimization_recommendations",
                                         "optimization_started", "optimization_started"]
    assert {g[1] for g in got if g[0] == "optimization_finished"} == {p.assets[0]}
    assert ("optimization_recommendations", p.assets[0], None, "خفض السرعة") in got
    assert any(g[2] == p.integration_id for g in got)
    owner_conn.execute("UPDATE optimization_runs SET status = 'fallback', finished_at = now(), "
                       "fallback_reason = 'no API key' WHERE id = %s", [running])
    await collector.run_once()
    await collector.run_once()
    got = rows(owner_conn, "SELECT source_type, payload FROM industrial_events WHERE tenant_id = %s AND "
                           "source_system = 'optimization' ORDER BY id", p.tenant_id)
    assert [g[0] for g in got].count("optimization_finished") == 2 and len(got) == 5
    assert got[-1][1]["fallback_reason"] == "no API key"


# ----------------------------------------------------------------------------- two processes


async def test_two_processes_running_the_same_collectors_store_each_event_once(db_dsn: str, owner_conn) -> None:
    p = make_plant(owner_conn)
    sid = add_signal(owner_conn, p, p.assets[0], crit_high=10.0)
    t0 = now() - timedelta(minutes=5)
    for i in range(30):
        raise_alert(owner_conn, p.tenant_id, p.assets[i % 2], "high", f"Alarm {i}", at=t0 + timedelta(seconds=i))
    write_samples(owner_conn, p.tenant_id, sid, series(t0, [5.0, 12.0, 5.0, 12.0, 5.0] * 4))
    first, second = Database(db_dsn, name="proc-1"), Database(db_dsn, name="proc-2")
    await first.open()
    await second.open()
    try:
        for _ in range(3):
            await asyncio.gather(AlertCollector(first).run_once(), AlertCollector(second).run_once(),
                                 LimitCollector(first).run_once(), LimitCollector(second).run_once())
    finally:
        await first.close()
        await second.close()
    assert rows(owner_conn, "SELECT count(*) FROM industrial_events WHERE source_system = 'alerts'")[0][0] == 30
    breaches = rows(owner_conn, "SELECT count(*) FROM industrial_events WHERE source_type = 'limit_breach'")[0][0]
    assert breaches == 8
