"""The supervisor follows configuration changes within seconds and shuts down cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg

from ingest.spool import Spool
from ingest.writer import Writer
from optria.demo.opcua_server import NONE_ONLY, bench_node_id
from optria.embedded_pg import ensure_server
from tests.ingest.test_opcua_ingest import private_pg  # noqa: F401  (fixture)
from tests.fix_ingest import INGEST_SECRET, arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for


async def test_mapping_and_enable_changes_are_picked_up(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=6, bench_hz=2.0)
    arranged = arrange_integration(owner_conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 200},
                                   [f"ns=2;s={bench_node_id(i)}" for i in range(3)])
    async with running_supervisor(ingest_settings(tmp_path), db_dsn, scan_interval_s=30) as sup:
        # the long scan interval proves the NOTIFY path, not polling, picks changes up
        await wait_for(lambda: arranged.integration_id in sup.running, timeout=40, what="the worker")
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > 6, what="data")
        new_signal = owner_conn.execute(
            "INSERT INTO signals (tenant_id, integration_id, external_id, name) VALUES (%s, %s, %s, 'new') RETURNING id",
            [arranged.tenant_id, arranged.integration_id, f"ns=2;s={bench_node_id(4)}"]).fetchone()[0]
        owner_conn.execute("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role) "
                           "VALUES (%s, %s, %s, 'other')", [arranged.tenant_id, new_signal, arranged.asset_id])
        await wait_for(lambda: count_samples(db_dsn, [new_signal]) > 2, timeout=15, what="the new mapping to stream")
        owner_conn.execute("UPDATE integrations SET enabled = false WHERE id = %s", [arranged.integration_id])
        await wait_for(lambda: arranged.integration_id not in sup.running, timeout=15, what="the worker to stop")
        lease = owner_conn.execute("SELECT count(*) FROM ingest_leases WHERE integration_id = %s",
                                   [arranged.integration_id]).fetchone()[0]
        assert lease == 0


async def test_sigterm_flushes_and_releases(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=5, bench_hz=5.0)
    arranged = arrange_integration(owner_conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100},
                                   [f"ns=2;s={bench_node_id(i)}" for i in range(5)])
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": INGEST_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for(lambda: count_samples(db_dsn, list(arranged.signals.values())) > 20, timeout=40, what="data")
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM ingest_leases").fetchone()[0] == 0
        assert conn.execute("SELECT state FROM ingest_health WHERE integration_id = %s",
                            [arranged.integration_id]).fetchone()[0] == "stopped"


async def test_sigterm_with_the_database_gone_exits_in_time_and_spools_what_was_queued(opcua_sim_factory, private_pg,
                                                                                       tmp_path) -> None:
    """A deployment stopped database first: ingest still ends within 15 s, and what it held is
    spooled and replayed by the next process, so the record has no hole."""
    server, dsn = private_pg
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=5, bench_hz=10.0, allow_anonymous=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        arranged = arrange_integration(conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100},
                                       [f"ns=2;s={bench_node_id(i)}" for i in range(5)])
    ids = list(arranged.signals.values())
    env = {**os.environ, "DATABASE_URL": dsn, "SESSION_SECRET": INGEST_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for(lambda: count_samples(dsn, ids) > 50, timeout=40, what="data")
        start = datetime.now(timezone.utc)
        server.stop()                                   # the database goes first
        await asyncio.sleep(3)                          # values keep arriving: queued, then spooled
        signalled = datetime.now(timezone.utc)          # what the server wrote before this was received
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    end = signalled - timedelta(seconds=0.5)
    assert rc == 0 and took < 15, f"exit code {rc} after {took:.1f} s"
    spooled = list((tmp_path / "spool").glob("*.spool*"))
    assert any(p.stat().st_size for p in spooled if not p.name.endswith(".lock")), "nothing was spooled"
    await asyncio.to_thread(ensure_server, server.data_dir, fast_unsafe=True)
    spool = Spool(tmp_path / "spool" / "next-process.spool")
    writer = Writer(dsn, spool=spool)
    writer.start()                                      # the next process adopts the orphaned spool
    await wait_for(lambda: writer.stats.committed > 0 and not any(
        p.stat().st_size for p in (tmp_path / "spool").glob("*.spool*") if not p.name.endswith(".lock")),
        timeout=30, what="the orphaned spool replayed")
    await writer.stop()
    for ext, sid in arranged.signals.items():
        written = [t for t, _ in sim.written_samples(ext, start, end)]
        with psycopg.connect(dsn) as conn:
            stored = [r[0] for r in conn.execute(
                "SELECT time FROM signal_samples WHERE signal_id = %s AND time BETWEEN %s AND %s ORDER BY time",
                [sid, start, end]).fetchall()]
        assert stored == written, f"{ext}: written {len(written)}, stored {len(stored)}"


async def test_a_second_signal_ends_ingest_at_once_with_the_queue_spooled(opcua_sim_factory, private_pg,
                                                                          tmp_path) -> None:
    server, dsn = private_pg
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=5, bench_hz=10.0, allow_anonymous=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        arranged = arrange_integration(conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100},
                                       [f"ns=2;s={bench_node_id(i)}" for i in range(5)])
    env = {**os.environ, "DATABASE_URL": dsn, "SESSION_SECRET": INGEST_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for(lambda: count_samples(dsn, list(arranged.signals.values())) > 50, timeout=40, what="data")
        server.stop()
        await asyncio.sleep(2)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)                 # the impatient operator
        rc = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 2, f"the second signal took {took:.1f} s"
    rows = sum(len(batch) for p in (tmp_path / "spool").glob("*.spool*") if not p.name.endswith(".lock")
               for batch in Spool.read_batches(p))
    assert rows > 0, "what was queued is in the spool"
