"""Ingest processes share integrations through leases: a second process takes its share from a
busy first one, killing one hands its work to the other, and the split follows what each may run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from ingest.supervisor import fair_share
from optria.demo.opcua_server import NONE_ONLY, bench_node_id
from tests.fix_ingest import (INGEST_SECRET, arrange_integration, count_samples, ingest_settings, running_supervisor,
                               wait_for)

LEASE_TTL = 3.0
STARTED = 90.0   # a new process's start (imports, migration check, first scan) on a busy 2-core runner


def _start_ingest(db_dsn: str, data_dir) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": INGEST_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--lease-ttl", str(LEASE_TTL),
                             "--metrics-port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _lease_holder(db_dsn: str, integration_id: int) -> str | None:
    return _holders(db_dsn, [integration_id]).get(integration_id)


def _stop(*procs: subprocess.Popen | None) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def _assert_whole(db_dsn: str, signal_ids: list[int]) -> None:
    """No sample stored twice, and no hole of a second or more in the given signals' data."""
    with psycopg.connect(db_dsn) as conn:
        dupes = conn.execute("SELECT count(*) - count(DISTINCT (signal_id, time)) FROM signal_samples").fetchone()[0]
        gaps = conn.execute("""SELECT max(d) FROM (SELECT time - lag(time) OVER (PARTITION BY signal_id ORDER BY time) AS d
                               FROM signal_samples WHERE signal_id = ANY(%s)) x""", [signal_ids]).fetchone()[0]
    assert dupes == 0
    assert gaps.total_seconds() < 1.0, f"a hole of {gaps} in the data"


async def test_killed_process_lease_is_taken_over(opcua_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=10, bench_hz=5.0)
    arranged = arrange_integration(owner_conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 200},
                                   [f"ns=2;s={bench_node_id(i)}" for i in range(10)])
    ids = list(arranged.signals.values())
    a = _start_ingest(db_dsn, tmp_path / "a")
    b = None
    try:
        first = await wait_for(lambda: _lease_holder(db_dsn, arranged.integration_id), timeout=STARTED, what="a lease")
        await wait_for(lambda: count_samples(db_dsn, ids) > 50, timeout=30, what="data from the first process")
        b = _start_ingest(db_dsn, tmp_path / "b")
        await asyncio.sleep(LEASE_TTL + 1)
        assert _lease_holder(db_dsn, arranged.integration_id) == first   # a held lease is not stolen
        a.send_signal(signal.SIGKILL)                                     # no goodbye, no release
        a.wait(10)
        killed_at = time.monotonic()
        second = await wait_for(lambda: (h := _lease_holder(db_dsn, arranged.integration_id)) not in (None, first) and h,
                                timeout=30, what="the second process to take the lease")
        took = time.monotonic() - killed_at
        assert took <= LEASE_TTL + 3.0, f"takeover took {took:.1f} s"
        before = count_samples(db_dsn, ids)
        await wait_for(lambda: count_samples(db_dsn, ids) > before + 50, timeout=30, what="data from the second process")
        assert second != first
    finally:
        _stop(a, b)
    # the gap between the kill and the takeover was read back from the server's history
    _assert_whole(db_dsn, ids)


def _holders(db_dsn: str, integration_ids: list[int]) -> dict[int, str]:
    with psycopg.connect(db_dsn) as conn:
        return dict(conn.execute("SELECT integration_id, worker_id FROM ingest_leases WHERE integration_id = ANY(%s) "
                                 "AND expires_at > now()", [integration_ids]).fetchall())


async def test_a_second_process_takes_its_share_from_a_busy_one(opcua_sim_factory, db_dsn, owner_conn,
                                                                 tmp_path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=20, bench_hz=5.0)
    config = {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 200}
    first = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(10)])
    second = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}" for i in range(10, 20)],
                                 tenant_id=first.tenant_id)
    integrations = [first.integration_id, second.integration_id]
    ids = [*first.signals.values(), *second.signals.values()]
    a = _start_ingest(db_dsn, tmp_path / "a")
    b = None
    try:
        held = await wait_for(lambda: len(h := _holders(db_dsn, integrations)) == 2 and h, timeout=STARTED,
                              what="the first process to take both integrations")
        assert len(set(held.values())) == 1
        await wait_for(lambda: count_samples(db_dsn, ids) > 200, timeout=30, what="data from the first process")
        b = _start_ingest(db_dsn, tmp_path / "b")
        shared = await wait_for(lambda: len(set((h := _holders(db_dsn, integrations)).values())) == 2 and h,
                                timeout=STARTED, what="the second process to take its share")
        handed = next(i for i, w in shared.items() if w != next(iter(held.values())))
        moved = list((first if handed == first.integration_id else second).signals.values())
        before = count_samples(db_dsn, moved)
        await wait_for(lambda: count_samples(db_dsn, moved) > before + 50, timeout=30,
                       what="data of the handed-over integration from the second process")
        await asyncio.sleep(LEASE_TTL * 2)
        assert _holders(db_dsn, integrations) == shared          # settled: nobody hands back and forth
    finally:
        _stop(a, b)
    _assert_whole(db_dsn, moved)


async def test_a_process_that_may_run_fewer_leaves_the_rest_to_the_others(opcua_sim_factory, db_dsn, owner_conn,
                                                                         tmp_path) -> None:
    """Capacities, not headcount, split the work: beside a process that may run one integration
    (``--max-leases 1``) and one that runs only the jobs (``--max-leases 0``), the third takes the
    other three of four; an even split (2 each) would leave one integration unread."""
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=8, bench_hz=2.0)
    config = {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 500}
    first = arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(0)}"])
    integrations = [first.integration_id] + [
        arrange_integration(owner_conn, "opcua", config, [f"ns=2;s={bench_node_id(i)}"],
                            tenant_id=first.tenant_id).integration_id for i in range(1, 4)]
    async with (running_supervisor(ingest_settings(tmp_path / "one"), db_dsn, max_leases=1,
                                   lease_ttl_s=LEASE_TTL) as one,
                running_supervisor(ingest_settings(tmp_path / "none"), db_dsn, max_leases=0,
                                   lease_ttl_s=LEASE_TTL) as none,
                running_supervisor(ingest_settings(tmp_path / "many"), db_dsn, lease_ttl_s=LEASE_TTL) as many):
        held = await wait_for(lambda: len(h := _holders(db_dsn, integrations)) == 4 and h, timeout=STARTED,
                              what="every integration leased")
        await asyncio.sleep(LEASE_TTL * 2)
        settled = _holders(db_dsn, integrations)
        assert len(settled) == 4
        by_worker = {w: sum(1 for v in settled.values() if v == w) for w in (one.worker_id, none.worker_id,
                                                                             many.worker_id)}
        assert by_worker == {one.worker_id: 1, none.worker_id: 0, many.worker_id: 3}, (held, settled)


@pytest.mark.parametrize(("capacities", "integrations", "level"), [
    ([200, 200], 5, 3), ([200, 200, 200], 6, 2), ([1, 200], 4, 3), ([0, 200, 200], 6, 3), ([0, 1, 200], 4, 3),
    ([2, 2], 7, 2), ([200], 0, 0), ([], 3, 0), ([0], 3, 0),
])
def test_fair_share_is_a_water_level_over_the_capacities(capacities, integrations, level) -> None:
    assert fair_share(capacities, integrations) == level
