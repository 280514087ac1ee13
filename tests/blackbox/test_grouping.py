"""Incident grouping scenarios on a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from optria.blackbox.collectors import AlertCollector, LimitCollector, WorkOrderCollector
from optria.blackbox.grouping import Grouper
from optria.db import Database
from tests.blackbox.arrange import (
    add_event,
    add_signal,
    critical,
    make_plant,
    minutes,
    now,
    open_work_order,
    raise_alert,
    rows,
    write_samples,
)


def incidents(conn, tenant_id) -> list[tuple]:
    return rows(conn, "SELECT id, asset_id, title, incident_type, severity, status, started_at, last_event_at, event_count "
                      "FROM incidents WHERE tenant_id = %s ORDER BY started_at, id", tenant_id)


def timeline(conn, tenant_id, incident_id) -> list[tuple]:
    return rows(conn, "SELECT ie.relation, ie.count, e.summary, e.source_type FROM incident_events ie "
                      "JOIN industrial_events e ON e.tenant_id = ie.tenant_id AND e.id = ie.event_id "
                      "WHERE ie.tenant_id = %s AND ie.incident_id = %s ORDER BY ie.event_time, ie.id",
                tenant_id, incident_id)


async def test_a_critical_breach_opens_an_incident_with_its_lead_up(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a, other = p.assets
    t = now() - minutes(60)
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t - minutes(45), summary="too early")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t - minutes(10), summary="vibration warning",
              alarm_key="limit:1:warn_high", category="limit", source_system="limits", source_type="limit_breach")
    add_event(owner_conn, p.tenant_id, asset_id=other, event_time=t - minutes(5), summary="other asset")
    trigger = critical(owner_conn, p.tenant_id, a, t, "P-1 Vibration: 14.2 mm/s > 11")
    assert await Grouper(db).run_once() == 4
    got = incidents(owner_conn, p.tenant_id)
    assert len(got) == 1
    inc = got[0]
    assert inc[1:6] == (a, "P-1 Vibration: 14.2 mm/s > 11", "limit_breach", "critical", "open")
    assert inc[6] == t and inc[8] == 2
    assert timeline(owner_conn, p.tenant_id, inc[0]) == [
        ("related", 1, "vibration warning", "limit_breach"), ("trigger", 1, "P-1 Vibration: 14.2 mm/s > 11", "limit_breach")]
    assert rows(owner_conn, "SELECT trigger_event_id FROM incidents WHERE id = %s", inc[0])[0][0] == trigger
    # running again changes nothing
    assert await Grouper(db).run_once() == 0
    assert incidents(owner_conn, p.tenant_id) == got


async def test_extend_then_window_expiry(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a = p.assets[0]
    t = now() - minutes(180)
    critical(owner_conn, p.tenant_id, a, t, "first")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + minutes(20), summary="operator note",
              category="operator_action", source_type="alert_acknowledged")
    critical(owner_conn, p.tenant_id, a, t + minutes(45), "second")        # within 30 min of the last event: extends
    critical(owner_conn, p.tenant_id, a, t + minutes(80), "third")         # 35 min after the last event: new incident
    await Grouper(db).run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert [(g[2], g[8]) for g in got] == [("first", 3), ("third", 1)]
    assert got[0][7] == t + minutes(45)
    assert [r[0] for r in timeline(owner_conn, p.tenant_id, got[0][0])] == ["trigger", "action", "trigger"]


async def test_window_is_configurable(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    t = now() - minutes(120)
    critical(owner_conn, p.tenant_id, p.assets[0], t, "first")
    critical(owner_conn, p.tenant_id, p.assets[0], t + minutes(12), "second")
    await Grouper(db, window=timedelta(minutes=10)).run_once()
    assert [g[2] for g in incidents(owner_conn, p.tenant_id)] == ["first", "second"]


async def test_flood_of_identical_events_is_summarized(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a = p.assets[0]
    t = now() - minutes(60)
    critical(owner_conn, p.tenant_id, a, t, "P-1 trip")
    for i in range(600):
        add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + timedelta(seconds=1 + i), summary="Seal leak",
                  alarm_key="alert:seal", source_type="alert_raised")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + minutes(5), summary="Seal leak",
              alarm_key="alert:seal", repeat_count=40)   # a source that reports its own repeat counter
    grouper = Grouper(db)
    grouper.batch = 250   # several rounds: the flood spans batches
    await grouper.run_once()
    inc = incidents(owner_conn, p.tenant_id)
    assert len(inc) == 1 and inc[0][8] == 641
    assert timeline(owner_conn, p.tenant_id, inc[0][0]) == [("trigger", 1, "P-1 trip", "limit_breach"),
                                                            ("related", 640, "Seal leak", "alert_raised")]
    first, last = rows(owner_conn, "SELECT event_time, last_event_time FROM incident_events WHERE incident_id = %s "
                                   "AND relation = 'related'", inc[0][0])[0]
    assert first == t + timedelta(seconds=1) and last == t + timedelta(seconds=600)


async def test_two_assets_at_once(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a, b = p.assets
    t = now() - minutes(30)
    critical(owner_conn, p.tenant_id, a, t, "A trips")
    critical(owner_conn, p.tenant_id, b, t + timedelta(seconds=5), "B trips")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + minutes(1), summary="A follow-up")
    add_event(owner_conn, p.tenant_id, asset_id=b, event_time=t + minutes(2), summary="B follow-up")
    await Grouper(db).run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert sorted((g[1], g[2], g[8]) for g in got) == sorted([(a, "A trips", 2), (b, "B trips", 2)])
    for g in got:
        summaries = [r[2] for r in timeline(owner_conn, p.tenant_id, g[0])]
        assert all(s.startswith("A" if g[1] == a else "B") for s in summaries)


async def test_future_and_far_past_events_are_kept_but_never_grouped(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a = p.assets[0]
    t = now() - minutes(20)
    critical(owner_conn, p.tenant_id, a, now() + timedelta(days=2), "from the future", time_flag="future")
    critical(owner_conn, p.tenant_id, a, now() - timedelta(days=40), "from long ago", time_flag="far_past")
    await Grouper(db).run_once()
    assert incidents(owner_conn, p.tenant_id) == []
    critical(owner_conn, p.tenant_id, a, t, "current")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + minutes(1), summary="clock wrong",
              time_flag="future")
    await Grouper(db).run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert [g[2] for g in got] == ["current"]
    assert [r[2] for r in timeline(owner_conn, p.tenant_id, got[0][0])] == ["current"]
    assert rows(owner_conn, "SELECT count(*) FROM industrial_events WHERE tenant_id = %s", p.tenant_id)[0][0] == 4


async def test_resolved_incident_takes_no_more_events(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a = p.assets[0]
    t = now() - minutes(30)
    critical(owner_conn, p.tenant_id, a, t, "first")
    await Grouper(db).run_once()
    owner_conn.execute("UPDATE incidents SET status = 'resolved', resolved_at = now(), acknowledged_at = now()")
    add_event(owner_conn, p.tenant_id, asset_id=a, event_time=t + minutes(1), summary="after resolve")
    await Grouper(db).run_once()
    assert [g[8] for g in incidents(owner_conn, p.tenant_id)] == [1]
    critical(owner_conn, p.tenant_id, a, t + minutes(2), "again")
    await Grouper(db).run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert [(g[2], g[5]) for g in got] == [("first", "resolved"), ("again", "open")]
    # the look-back of the new incident takes the unattached event, not the old incident's trigger
    assert [r[2] for r in timeline(owner_conn, p.tenant_id, got[1][0])] == ["after resolve", "again"]


async def test_events_without_asset_and_integration_faults(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    a = p.assets[0]
    add_signal(owner_conn, p, a)   # the integration feeds asset a
    t = now() - minutes(30)
    add_event(owner_conn, p.tenant_id, asset_id=None, site_id=p.site_id, event_time=t - minutes(1),
              summary="site power dip", category="process", source_system="sql", source_type="sql_event")
    add_event(owner_conn, p.tenant_id, asset_id=None, integration_id=p.integration_id, event_time=t - minutes(2),
              summary="OPC link", category="integration", source_system="ingest", source_type="integration_disconnected",
              severity="high")
    critical(owner_conn, p.tenant_id, a, t, "trip")
    add_event(owner_conn, p.tenant_id, asset_id=None, integration_id=p.integration_id, event_time=t + minutes(1),
              summary="OPC link", category="integration", source_system="ingest", source_type="integration_connected",
              severity="info")
    await Grouper(db).run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert len(got) == 1
    assert [(r[2], r[3]) for r in timeline(owner_conn, p.tenant_id, got[0][0])] == [
        ("OPC link", "integration_disconnected"), ("trip", "limit_breach"), ("OPC link", "integration_connected")]


async def test_collectors_then_grouping_end_to_end(db: Database, owner_conn) -> None:
    """A limit breach collected from samples, an alert and a work order end on one incident timeline."""
    p = make_plant(owner_conn)
    a = p.assets[0]
    sid = add_signal(owner_conn, p, a, "Vibration", warn_high=7.1, crit_high=11.0)
    t = now() - minutes(10)
    write_samples(owner_conn, p.tenant_id, sid, [(t + timedelta(seconds=i), v) for i, v in
                                                 enumerate([3.0, 8.0, 12.5, 13.0, 12.8])])
    raise_alert(owner_conn, p.tenant_id, a, "high", "Vibration high", at=t + timedelta(seconds=3))
    open_work_order(owner_conn, p.tenant_id, a, "Check bearing", "urgent", at=t + timedelta(seconds=30))
    for job in (LimitCollector(db), AlertCollector(db), WorkOrderCollector(db), Grouper(db)):
        await job.run_once()
    got = incidents(owner_conn, p.tenant_id)
    assert len(got) == 1 and got[0][3] == "limit_breach" and got[0][4] == "critical"
    assert [(r[0], r[3]) for r in timeline(owner_conn, p.tenant_id, got[0][0])] == [
        ("related", "limit_breach"), ("trigger", "limit_breach"), ("related", "alert_raised"),
        ("action", "work_order_opened")]


async def test_grouping_in_two_processes_groups_each_event_once(db_dsn: str, owner_conn) -> None:
    p = make_plant(owner_conn)
    t = now() - minutes(50)
    for i in range(40):
        critical(owner_conn, p.tenant_id, p.assets[i % 2], t + minutes(i), f"trip {i % 3}")
    one, two = Database(db_dsn, name="g-1"), Database(db_dsn, name="g-2")
    await one.open()
    await two.open()
    try:
        g1, g2 = Grouper(one), Grouper(two)
        g1.batch = g2.batch = 7
        await asyncio.gather(g1.run_once(), g2.run_once(), g1.run_once(), g2.run_once())
        await g1.run_once()
    finally:
        await one.close()
        await two.close()
    got = incidents(owner_conn, p.tenant_id)
    assert len(got) == 2 and sum(g[8] for g in got) == 40
