"""Ingest under faults, against the asyncua simulator and a real PostgreSQL.

A crash of the writer or of a worker is restarted, shown in ingest health and loses nothing;
stale marks from workers never share the writer's connection; an outage containing a limit
breach is reconstructed into exactly one event at the breach's source time and an incident;
a cut connection is read back across the re-subscribe edge and leaves one session on the server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from ingest import metrics
from ingest.samples import GOOD, Sample
from ingest.supervision import supervise
from ingest.workers.opcua import OpcUaWorker
from ingest.writer import Writer
from optria.blackbox.collectors import LimitCollector
from optria.blackbox.grouping import Grouper
from optria.db import Database
from optria.demo.netcut import CuttableProxy
from optria.demo.opcua_server import NONE_ONLY, bench_node_id
from optria.demo.plant import TAGS, Plant
from optria.timeseries import writes
from tests.fix_ingest import arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for
from tests.ingest.test_opcua_ingest import _assert_same

N_SIGNALS = 10


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _bench(opcua_sim_factory, hz: float = 10.0):
    return await opcua_sim_factory(security=NONE_ONLY, bench_signals=N_SIGNALS, bench_hz=hz, allow_anonymous=True)


def _restarts(task: str) -> float:
    return metrics.TASK_RESTARTS.labels(task)._value.get()


async def test_writer_crash_is_restarted_reported_and_loses_nothing(opcua_sim_factory, db_dsn, owner_conn, tmp_path,
                                                                    monkeypatch) -> None:
    sim = await _bench(opcua_sim_factory)
    config = {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100}
    arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    real = writes.copy_samples
    armed = [1]

    async def faulty(*args, **kwargs):
        if armed[0]:
            armed[0] -= 1
            raise RuntimeError("injected writer fault")
        return await real(*args, **kwargs)

    before = _restarts("writer")
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
        start = _now()
        monkeypatch.setattr(writes, "copy_samples", faulty)
        run = sup.running[arranged.integration_id]
        await wait_for(lambda: run.health.restarts >= 1, what="the writer's restart in health")
        await asyncio.sleep(3)
        end = _now() - timedelta(seconds=1)
        await asyncio.sleep(1)
        assert "writer" in run.health.last_restart_reason and "injected writer fault" in run.health.last_restart_reason
        assert not sup.writer_task.done()                     # the supervised writer runs again
        await wait_for(lambda: _health_row(db_dsn, arranged.integration_id)[0] >= 1, what="the restart stored")
    assert armed == [0] and _restarts("writer") == before + 1
    assert _assert_same(sim, db_dsn, arranged, start, end) >= N_SIGNALS * 10 * 2
    restarts, reason = _health_row(db_dsn, arranged.integration_id)
    assert restarts >= 1 and "injected writer fault" in reason


def _health_row(dsn: str, integration_id: int) -> tuple[int, str | None]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT restarts, last_restart_reason FROM ingest_health WHERE integration_id = %s",
                           [integration_id]).fetchone()
    return row if row else (0, None)


async def test_worker_crash_restarts_with_one_session_and_loses_nothing(opcua_sim_factory, db_dsn, owner_conn,
                                                                        tmp_path, monkeypatch) -> None:
    sim = await _bench(opcua_sim_factory)
    config = {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100}
    arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    real = OpcUaWorker._watch
    armed = [1]

    async def faulty(self, client, *tasks):
        if armed[0]:
            armed[0] -= 1
            await asyncio.sleep(0.5)
            raise RuntimeError("injected worker fault")
        return await real(self, client, *tasks)

    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
        assert sim.session_count() == 1
        start = _now()
        monkeypatch.setattr(OpcUaWorker, "_watch", faulty)
        # the worker in flight crashes at its next session: force one by cutting nothing but the session
        run = sup.running[arranged.integration_id]
        run.worker._lost.set()
        await wait_for(lambda: run.health.restarts >= 1, what="the worker's restart in health")
        await wait_for(lambda: run.health.state == "streaming" and run.health.connected, what="streaming again")
        await asyncio.sleep(3)
        end = _now() - timedelta(seconds=1)
        await asyncio.sleep(1)
        assert "injected worker fault" in run.health.last_restart_reason
        assert sim.session_count() == 1                       # the crashed run's session was closed
    assert armed == [0]
    assert _assert_same(sim, db_dsn, arranged, start, end) >= N_SIGNALS * 10 * 2


async def test_stale_marks_never_share_the_writer_connection(db_dsn, owner_conn) -> None:
    """The original race: a worker's stale mark on the writer's connection in the middle of a batch."""
    arranged = arrange_integration(owner_conn, "opcua", {}, [f"ns=2;s=R{i}" for i in range(40)])
    ids = list(arranged.signals.values())
    crashes: list[str] = []
    writer = Writer(db_dsn)
    task = asyncio.create_task(supervise("writer", writer.run, on_crash=crashes.append))
    t0 = _now() - timedelta(minutes=5)
    produced = 0

    async def produce() -> None:
        nonlocal produced
        for k in range(50):                                   # 4,000 rows/s for 5 s
            rows = [Sample(arranged.tenant_id, sid, t0 + timedelta(milliseconds=100 * k + j), float(j), GOOD)
                    for sid in ids for j in range(10)]
            await writer.put(rows)
            produced += len(rows)
            await asyncio.sleep(0.1)

    async def mark() -> None:
        for _ in range(40):
            await writer.mark_stale(arranged.tenant_id, ids[:20])
            await asyncio.sleep(0.125)

    await asyncio.gather(produce(), mark())
    await writer.stop()
    await asyncio.wait_for(task, 30)
    assert crashes == []
    assert writer.stats.committed == produced == count_samples(db_dsn, ids)


@pytest.mark.parametrize("lasting", [False, True], ids=["over-before-reconnect", "lasting-past-reconnect"])
async def test_outage_with_a_breach_becomes_one_event_and_an_incident(opcua_sim_factory, db_dsn, owner_conn,
                                                                      tmp_path, lasting: bool) -> None:
    """A breach inside an outage is one event at its source time, whether it ended before the
    source came back or lasted past it (then live rows resume in breach before the backfill
    arrives: judging them first would record the breach a second time, where live data resumed)."""
    plant = Plant()
    sim = await opcua_sim_factory(plant=plant, security=NONE_ONLY, allow_anonymous=True, update_hz=5.0)
    proxy = CuttableProxy(sim.port)
    await proxy.start()
    vib = next(t for t in TAGS if t.asset == "P-101" and t.role == "vibration")
    node = f"ns=2;s={vib.path}"
    config = {"endpoint_url": f"opc.tcp://127.0.0.1:{proxy.port}", "publishing_interval_ms": 100,
              "session_timeout_s": 5}
    arranged = arrange_integration(owner_conn, "opcua", config, [node])
    sid = arranged.signals[node]
    owner_conn.execute("UPDATE external_signal_mappings SET metric_role = 'vibration', warn_high = 7.1, crit_high = 11.0 "
                       "WHERE signal_id = %s", [sid])
    db = Database(db_dsn)
    await db.open()
    try:
        async def collect_forever() -> None:                 # as the ingest service runs the collector
            collector = LimitCollector(db)
            while True:
                await collector.run_once()
                await asyncio.sleep(0.05)

        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            collecting = asyncio.create_task(collect_forever())
            await wait_for(lambda: count_samples(db_dsn, [sid]) > 10, what="data")
            run = sup.running[arranged.integration_id]
            start = _now()
            proxy.cut()
            await wait_for(lambda: not run.health.connected, timeout=30, what="the worker to notice the cut")
            plant.start_fault("P-101", "bearing", ramp_s=0.5)  # the breach happens while nobody listens
            await asyncio.sleep(3)
            if not lasting:
                plant.clear_faults("P-101")
            await asyncio.sleep(2)
            proxy.restore()
            await wait_for(lambda: run.health.state == "streaming" and run.health.connected, timeout=30,
                           what="reconnect")
            await asyncio.sleep(3)                            # backfill, then some live rows
            if lasting:
                plant.clear_faults("P-101")
                await asyncio.sleep(2)
            end = _now() - timedelta(seconds=1)
            await wait_for(lambda: sim.session_count() == 1, timeout=20,
                           what="the cut session to time out on the server, leaving one")
            collecting.cancel()
        for _ in range(3):
            await LimitCollector(db).run_once()
        await Grouper(db).run_once()
    finally:
        await db.close()
        await proxy.stop()
    _assert_same(sim, db_dsn, arranged, start, end)        # nothing lost across the re-subscribe edge
    written = sim.written_samples(node, start, end)
    first_breach = next(t for t, v in written if v > 11.0)
    with psycopg.connect(db_dsn) as conn:
        breaches = conn.execute("SELECT event_time, payload->>'level' FROM industrial_events WHERE source_system = 'limits' "
                                "AND source_type = 'limit_breach' AND signal_id = %s AND payload->>'level' = 'crit_high'",
                                [sid]).fetchall()
        incidents = conn.execute("SELECT severity, incident_type, started_at FROM incidents WHERE asset_id = %s",
                                 [arranged.asset_id]).fetchall()
    assert [b[0] for b in breaches] == [first_breach.replace(tzinfo=timezone.utc) if first_breach.tzinfo is None
                                        else first_breach]
    assert len(incidents) == 1 and incidents[0][:2] == ("critical", "limit_breach")


async def test_a_stray_cancellation_is_a_crash_not_an_end() -> None:
    """A library's request cancelled under a task (not the task itself) must not end it silently."""
    runs, crashes = [], []

    async def work() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise asyncio.CancelledError()   # as asyncua's wait_for re-raises for a request of a dead session
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise("stray", work, on_crash=crashes.append, first_delay=0.01))
    await wait_for(lambda: len(runs) == 2, timeout=5, what="the restart")
    assert crashes == ["CancelledError escaped the task"] and not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()                  # a real cancellation still ends it
