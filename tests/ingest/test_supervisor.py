"""The supervisor follows configuration changes within seconds and shuts down cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import psycopg

from optria.demo.opcua_server import NONE_ONLY, bench_node_id
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
