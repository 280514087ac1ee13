"""OPC-UA → ingest → database, against the asyncua simulator: nothing lost, nothing doubled.

Each test compares what the simulator wrote (its own record of every write) with what the
database holds, over a window of time.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from optria.demo.netcut import CuttableProxy
from optria.demo.opcua_server import NONE_ONLY, bench_node_id
from optria.embedded_pg import ensure_server
from optria.migrations import migrate
from tests.fix_ingest import arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for

N_SIGNALS = 20


def _db_times(dsn: str, signal_id: int, start: datetime, end: datetime) -> list[datetime]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT time FROM signal_samples WHERE signal_id = %s AND time BETWEEN %s AND %s ORDER BY time",
                            [signal_id, start, end]).fetchall()
    return [r[0] for r in rows]


def _assert_same(sim, dsn: str, arranged, start: datetime, end: datetime) -> int:
    compared = 0
    for ext, sid in arranged.signals.items():
        written = [t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t for t, _ in sim.written_samples(ext, start, end)]
        stored = _db_times(dsn, sid, start, end)
        assert stored == written, f"{ext}: simulator wrote {len(written)}, database has {len(stored)}"
        compared += len(written)
    return compared


@pytest.fixture
def private_pg():
    """A PostgreSQL of the test's own, so the test may stop and start it."""
    base = Path(tempfile.mkdtemp(prefix="optria-fault-pg-"))
    base.chmod(0o755)
    server = ensure_server(base, fast_unsafe=True)
    dsn = server.dsn("postgres")
    migrate(dsn)
    yield server, dsn
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


async def _bench_sim(opcua_sim_factory, hz: float = 5.0):
    return await opcua_sim_factory(security=NONE_ONLY, bench_signals=N_SIGNALS, bench_hz=hz, allow_anonymous=True)


def _config(sim) -> dict:
    return {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100, "sampling_interval_ms": 0}


async def test_every_change_is_stored_exactly_once(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await _bench_sim(opcua_sim_factory, hz=10.0)
    arranged = arrange_integration(owner_conn, "opcua", _config(sim), [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 10, what="data")
        start = datetime.now(timezone.utc)
        await asyncio.sleep(3)
        end = datetime.now(timezone.utc)
        await asyncio.sleep(1.0)  # let the window's last publish commit
        run = sup.running[arranged.integration_id]
        assert run.health.state == "streaming" and run.health.connected
    compared = _assert_same(sim, db_dsn, arranged, start, end)
    assert compared >= N_SIGNALS * 10 * 2.5   # ~10 Hz × 3 s per signal
    with psycopg.connect(db_dsn) as conn:
        health = conn.execute("SELECT state, lag_p99_ms, samples_total FROM ingest_health WHERE integration_id = %s",
                              [arranged.integration_id]).fetchone()
    assert health[2] > 0 and health[1] is not None


async def test_database_outage_loses_nothing(opcua_sim_factory, private_pg, tmp_path) -> None:
    server, dsn = private_pg
    sim = await _bench_sim(opcua_sim_factory)
    with psycopg.connect(dsn, autocommit=True) as conn:
        arranged = arrange_integration(conn, "opcua", _config(sim), [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    async with running_supervisor(ingest_settings(tmp_path), dsn) as sup:
        await wait_for(lambda: count_samples(dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
        start = datetime.now(timezone.utc)
        server.stop()                                   # the database goes away mid-stream
        await asyncio.sleep(4)
        assert not sup.writer.stats.db_up
        await asyncio.to_thread(ensure_server, server.data_dir, fast_unsafe=True)   # and comes back
        await wait_for(lambda: sup.writer.stats.db_up and sup.writer.depth == 0, timeout=60, what="writer recovery")
        await asyncio.sleep(2)
        end = datetime.now(timezone.utc) - timedelta(seconds=1)
    compared = _assert_same(sim, dsn, arranged, start, end)
    assert compared >= N_SIGNALS * 5 * 4   # the outage window is in the comparison


async def test_network_cut_is_backfilled_from_history(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await _bench_sim(opcua_sim_factory)
    proxy = CuttableProxy(sim.port)
    await proxy.start()
    try:
        config = {"endpoint_url": f"opc.tcp://127.0.0.1:{proxy.port}", "publishing_interval_ms": 100}
        arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
            start = datetime.now(timezone.utc)
            proxy.cut()
            await wait_for(lambda: not sup.running[arranged.integration_id].health.connected, timeout=30,
                           what="the worker to notice the cut")
            await asyncio.sleep(2)
            with psycopg.connect(db_dsn) as conn:
                latest_q = conn.execute("SELECT DISTINCT quality FROM signal_latest WHERE signal_id = ANY(%s)",
                                        [list(arranged.signals.values())]).fetchall()
            assert {r[0] for r in latest_q} == {4}   # a lost source is marked stale, not left "good"
            proxy.restore()
            await wait_for(lambda: sup.running[arranged.integration_id].health.state == "streaming", timeout=40,
                           what="reconnect")
            await asyncio.sleep(2)
            end = datetime.now(timezone.utc) - timedelta(seconds=1)
            assert sup.running[arranged.integration_id].health.reconnects >= 1
        _assert_same(sim, db_dsn, arranged, start, end)
    finally:
        await proxy.stop()


async def test_simulator_restart_reconnects_by_itself(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await _bench_sim(opcua_sim_factory)
    arranged = arrange_integration(owner_conn, "opcua", _config(sim), [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    ids = list(arranged.signals.values())
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, ids) > N_SIGNALS * 5, what="data")
        await sim.stop()
        await wait_for(lambda: not sup.running[arranged.integration_id].health.connected, timeout=30, what="disconnect")
        before = count_samples(db_dsn, ids)
        await sim.start()
        await wait_for(lambda: count_samples(db_dsn, ids) > before + N_SIGNALS * 5, timeout=60, what="data after restart")
        assert sup.running[arranged.integration_id].health.state == "streaming"
    with psycopg.connect(db_dsn) as conn:
        dupes = conn.execute("SELECT count(*) - count(DISTINCT (signal_id, time)) FROM signal_samples").fetchone()[0]
    assert dupes == 0


async def _cut_and_restore(proxy, sup, integration_id: int, *, cut_s: float = 3.0) -> datetime:
    """Cut the network until the worker notices, keep it cut ``cut_s`` more, restore; returns the cut's start."""
    start = datetime.now(timezone.utc)
    proxy.cut()
    await wait_for(lambda: not sup.running[integration_id].health.connected, timeout=30,
                   what="the worker to notice the cut")
    await asyncio.sleep(cut_s)
    proxy.restore()
    return start


def _open_gap(dsn: str, integration_id: int):
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT since FROM ingest_gaps WHERE integration_id = %s", [integration_id]).fetchone()
    return row[0] if row else None


async def test_a_failed_history_read_keeps_the_gap_until_it_is_read(opcua_sim_factory, db_dsn, owner_conn,
                                                                    tmp_path) -> None:
    """A HistoryRead refused after a reconnect (here BadSessionNotActivated, as a server busy
    re-activating sessions answers) is not "no history": the gap stays noted and is read
    again until it is in the database."""
    sim = await _bench_sim(opcua_sim_factory)
    proxy = CuttableProxy(sim.port)
    await proxy.start()
    try:
        config = {"endpoint_url": f"opc.tcp://127.0.0.1:{proxy.port}", "publishing_interval_ms": 100}
        arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
        iid = arranged.integration_id
        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
            sim.history.fail_reads = 4   # the next four node reads fail their whole HistoryRead
            start = await _cut_and_restore(proxy, sup, iid)
            await wait_for(lambda: sim.history.failed_reads >= 4, timeout=40, what="the refused history reads")
            assert _open_gap(db_dsn, iid) is not None   # noted while it is not read back
            await wait_for(lambda: _open_gap(db_dsn, iid) is None, timeout=60, what="the gap to be read back")
            assert sup.running[iid].health.state == "streaming"
            assert sup.running[iid].health.last_error is None   # the "not read back yet" error is over
            end = datetime.now(timezone.utc) - timedelta(seconds=1)
        assert sim.history.failed_reads == 4
        _assert_same(sim, db_dsn, arranged, start, end)
    finally:
        await proxy.stop()


async def test_a_gap_left_unread_is_read_by_the_next_process(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    """The ingest process stops while the server still refuses its HistoryRead: live values after
    the cut are stored, so "the newest stored row" no longer shows the gap — the next process
    finds it in ingest_gaps and reads it back."""
    sim = await _bench_sim(opcua_sim_factory)
    proxy = CuttableProxy(sim.port)
    await proxy.start()
    try:
        config = {"endpoint_url": f"opc.tcp://127.0.0.1:{proxy.port}", "publishing_interval_ms": 100}
        arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
        iid, ids = arranged.integration_id, list(arranged.signals.values())
        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            await wait_for(lambda: count_samples(db_dsn, ids) > N_SIGNALS * 5, what="data")
            sim.history.fail_reads = 10 ** 9
            start = await _cut_and_restore(proxy, sup, iid)
            await wait_for(lambda: sim.history.failed_reads >= 1, timeout=40, what="a refused history read")
            await wait_for(lambda: sup.running[iid].health.state in ("streaming", "backfilling")
                           and sup.running[iid].health.connected, timeout=40, what="the stream back")
            await asyncio.sleep(2)   # live rows after the cut are stored
        gap = _open_gap(db_dsn, iid)
        assert gap is not None and gap <= start
        sim.history.fail_reads = 0
        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            await wait_for(lambda: _open_gap(db_dsn, iid) is None, timeout=60, what="the next process to read the gap")
            await asyncio.sleep(1)
            end = datetime.now(timezone.utc) - timedelta(seconds=1)
        _assert_same(sim, db_dsn, arranged, start, end)
    finally:
        await proxy.stop()


async def test_full_history_pages_without_continuation_points_are_read_on(opcua_sim_factory, db_dsn, owner_conn,
                                                                          tmp_path, monkeypatch) -> None:
    """asyncua's own history storage cuts a read at NumValuesPerNode without a continuation
    point; a full page is therefore read on from its last timestamp, not taken as the end."""
    from ingest.workers import opcua as opcua_worker
    monkeypatch.setattr(opcua_worker, "HISTORY_VALUES", 7)   # a 3 s cut at 5 Hz holds about 15 values per node
    sim = await _bench_sim(opcua_sim_factory)
    sim.history.continuation_when_limited = False
    proxy = CuttableProxy(sim.port)
    await proxy.start()
    try:
        config = {"endpoint_url": f"opc.tcp://127.0.0.1:{proxy.port}", "publishing_interval_ms": 100}
        arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
        iid = arranged.integration_id
        async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
            await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 5, what="data")
            reads_before = sim.history.reads
            start = await _cut_and_restore(proxy, sup, iid)
            await wait_for(lambda: sim.history.reads > reads_before and _open_gap(db_dsn, iid) is None, timeout=60,
                           what="the gap to be read back")
            end = datetime.now(timezone.utc) - timedelta(seconds=1)
            assert sim.history.reads - reads_before >= 2 * N_SIGNALS   # more than one page per node
        _assert_same(sim, db_dsn, arranged, start, end)
    finally:
        await proxy.stop()


async def test_values_a_full_server_queue_dropped_are_read_back(opcua_sim_factory, db_dsn, owner_conn,
                                                                 tmp_path) -> None:
    """A server whose monitored-item queue overflows drops the oldest values and flags the
    oldest one it kept (OPC UA's Overflow bit); the worker reads what was dropped from history.
    Here a queue of 2 at 10 changes per 1 s publish overflows on every publish."""
    sim = await _bench_sim(opcua_sim_factory, hz=10.0)
    config = {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 1000, "queue_size": 2}
    arranged = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(N_SIGNALS)])
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > N_SIGNALS * 10, what="data")
        run = sup.running[arranged.integration_id]
        start = datetime.now(timezone.utc)
        flagged = run.worker.overflows
        await asyncio.sleep(3)
        end = datetime.now(timezone.utc)
        await asyncio.sleep(4)   # the next publishes flag the window's last drops; their read-back commits
        assert run.worker.overflows - flagged >= N_SIGNALS * 2   # the server did drop values
    compared = _assert_same(sim, db_dsn, arranged, start, end)
    # every change of the window, not the 2 of 10 a second the queue kept (120 in 3 s); a simulator
    # starved of CPU changes less often than 10 Hz (480 seen in one loaded run), so not 30 a signal
    assert compared >= N_SIGNALS * 2 * 3 * 2.5
