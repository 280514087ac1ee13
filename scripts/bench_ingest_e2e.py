"""Part 2 and 3 of scripts/bench_ingest.py: OPC-UA simulator → ``optria ingest`` → database.

The simulator runs in this process (so its exact write record is at hand); the ingest
service and the bare reference client run as separate processes whose CPU time is read
with psutil over the same measurement window.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]

BARE_CLIENT = r"""
import asyncio, resource, sys, time
from asyncua import Client, ua
endpoint, n, seconds, warmup = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
count = 0
def on_publish(result):
    global count
    for notif in result.NotificationMessage.NotificationData or []:
        if isinstance(notif, ua.DataChangeNotification):
            count += len(notif.MonitoredItems)
async def main():
    global count
    async with Client(endpoint, timeout=30) as client:
        params = ua.CreateSubscriptionParameters(RequestedPublishingInterval=100, RequestedLifetimeCount=10000,
            RequestedMaxKeepAliveCount=50, MaxNotificationsPerPublish=0, PublishingEnabled=True, Priority=0)
        res = await client.uaclient.create_subscription(params, on_publish)
        for start in range(0, n, 1000):
            items = []
            for i in range(start, min(n, start + 1000)):
                rv = ua.ReadValueId(NodeId=ua.NodeId.from_string(f"ns=2;s=Bench.S{i:05d}"), AttributeId=ua.AttributeIds.Value)
                mp = ua.MonitoringParameters(ClientHandle=i + 1, SamplingInterval=0, QueueSize=40, DiscardOldest=True)
                items.append(ua.MonitoredItemCreateRequest(ItemToMonitor=rv, MonitoringMode=ua.MonitoringMode.Reporting,
                                                           RequestedParameters=mp))
            await client.uaclient.create_monitored_items(ua.CreateMonitoredItemsParameters(
                SubscriptionId=res.SubscriptionId, TimestampsToReturn=ua.TimestampsToReturn.Both, ItemsToCreate=items))
        await asyncio.sleep(warmup)
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), count
        await asyncio.sleep(seconds)
        r1, c1 = resource.getrusage(resource.RUSAGE_SELF), count
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        print(f"{c1 - c0} {cpu}", flush=True)
asyncio.run(main())
"""


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def pg_cpu(postmaster_pid: int | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster, its live backends and workers, and
    (through the postmaster's children times) those that already exited."""
    if not postmaster_pid:
        return 0.0
    pm = psutil.Process(postmaster_pid)
    t = pm.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in pm.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


def postmaster_pid(admin_dsn: str) -> int | None:
    with psycopg.connect(admin_dsn) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    try:
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, PermissionError):
        return None


async def _case(admin: str, signals: int, hz: float, seconds: float, publishing_ms: float,
                warmup_s: float) -> dict:
    from optria.demo.opcua_server import NONE_ONLY, OpcUaSimulator, bench_node_id
    from optria.demo.plant import Plant
    from scripts.bench_ingest import drop_db, make_signals, scratch_db

    scratch = Path(tempfile.mkdtemp(prefix="optria-bench-e2e-"))   # the simulator's PKI and the ingest's data dir
    (scratch / "data").mkdir()
    sim = OpcUaSimulator(Plant(), port=0, cert_dir=scratch / "pki", security=NONE_ONLY, update_hz=0.2, bench_signals=signals,
                         bench_hz=hz, bench_history_s=int(seconds * 4 + 60))
    await sim.start()
    dsn = scratch_db(admin)
    result: dict = {"signals": signals, "hz": hz}
    try:
        # the bare reference client, alone on the machine with the simulator
        bare = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_CLIENT, sim.endpoint_url, str(signals),
                                                    str(seconds), "5", stdout=subprocess.PIPE)
        out, _ = await bare.communicate()
        count, cpu = out.decode().split()
        result["bare_per_s"] = int(count) / seconds
        result["bare_cpu_us"] = float(cpu) / max(int(count), 1) * 1e6

        tenant, integration, ids = make_signals(dsn, signals, external=lambda i: f"ns=2;s={bench_node_id(i)}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE integrations SET config = %s WHERE id = %s",
                         [psycopg.types.json.Jsonb({"endpoint_url": sim.endpoint_url, "publishing_interval_ms": publishing_ms,
                                                    "sampling_interval_ms": 0}), integration])
        env = {**os.environ, "DATABASE_URL": dsn, "SESSION_SECRET": "bench-secret-" + "x" * 30, "APP_ENV": "test",
               "OPTRIA_DATA_DIR": str(scratch / "data"), "OPTRIA_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        ps = psutil.Process(proc.pid)
        try:
            deadline = time.monotonic() + 120
            while True:
                with psycopg.connect(dsn) as conn:
                    n = conn.execute("SELECT count(*) FROM signal_samples").fetchone()[0]
                if n > signals * 3:
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the ingest process did not start streaming")
                await asyncio.sleep(0.5)
            # Measure the steady state, not the first minute of a new database and a new process. A running
            # plant's tables have statistics (autovacuum analyses a new table within a minute or so); these
            # were made moments ago, and the jobs' reads planned on empty-table guesses: the twin job's change
            # scan took a nested loop of 130 ms every 2 s (~60 ms of PostgreSQL CPU a second), 3-5 ms once
            # analysed. And the jobs keep their queries' plans only after several runs on each pooled connection.
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ANALYZE")
            await asyncio.sleep(warmup_s)
            pm = postmaster_pid(admin)
            window_start = datetime.now(timezone.utc)
            cpu0, pg0, gen0 = _cpu(ps), pg_cpu(pm), time.process_time()
            rss_start = ps.memory_info().rss
            peak_rss = 0
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                peak_rss = max(peak_rss, ps.memory_info().rss)
                # the simulator (this process) keeps every value it wrote for HistoryRead: a full
                # collection of that heap stopped its publishing for up to 400 ms, which counted as
                # ingest lag; a server not written in Python has no such pauses
                gc.freeze()
                await asyncio.sleep(0.5)
            cpu1, pg1, gen1 = _cpu(ps), pg_cpu(pm), time.process_time()
            rss_end = ps.memory_info().rss
            window_end = datetime.now(timezone.utc)
            await asyncio.sleep(3)   # let the window's data commit
            with psycopg.connect(dsn) as conn:
                stored = conn.execute("SELECT count(*) FROM signal_samples WHERE time >= %s AND time < %s",
                                      [window_start, window_end]).fetchone()[0]
                lag = conn.execute("SELECT lag_p50_ms, lag_p99_ms FROM ingest_health WHERE integration_id = %s",
                                   [integration]).fetchone()
                db_lag = conn.execute(   # the same figure measured from the database: commit-log clock − source time
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM b.committed_at - s.time)) * 1000, "
                    "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM b.committed_at - s.time)) * 1000 "
                    "FROM signal_samples s JOIN sample_batches b ON b.tenant_id = s.tenant_id AND b.ingest_time = s.ingest_time "
                    "WHERE s.time >= %s AND s.time < %s", [window_start, window_end]).fetchone()
            written = sum(len(sim.written_samples(bench_node_id(i), window_start, window_end - timedelta(microseconds=1)))
                          for i in range(signals))
            result.update({
                "written": written, "stored": stored, "missing": written - stored,
                "ingest_per_s": stored / seconds, "ingest_cpu_us": (cpu1 - cpu0) / max(stored, 1) * 1e6,
                "pg_cpu_us": (pg1 - pg0) / max(stored, 1) * 1e6, "generator_cpu_us": (gen1 - gen0) / max(stored, 1) * 1e6,
                "rss_start_mib": rss_start / 2**20, "rss_end_mib": rss_end / 2**20,
                "lag_p50_ms": lag[0] if lag else None, "lag_p99_ms": lag[1] if lag else None,
                "db_lag_p50_ms": db_lag[0], "db_lag_p99_ms": db_lag[1], "peak_rss_mib": peak_rss / 2**20,
            })
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        await sim.stop()
        drop_db(admin, dsn)
        shutil.rmtree(scratch, ignore_errors=True)
    return result


GOAL_STORED_US = 35.0     # ingest process + PostgreSQL, CPU per stored sample
GOAL_INGEST_RATIO = 2.0   # ingest process alone ÷ the bare raw-callback client of the same run
BARE_US_WHEN_SET = 12.9   # the bare client's µs per notification on the host where the goals were set (issue 16)
# signals, Hz, publishing interval (ms), whether the CPU goals apply: they are set for the load of the
# first case (10,000 values/s); at 1,000 values/s the per-second work of the background jobs dominates
# and the figures are printed for information (the lag goal applies to both).
CASES = ((1000, 10.0, 100.0, True), (1000, 1.0, 1000.0, False))


def run_e2e(admin: str, seconds: float, cases=CASES, *, warmup_s: float) -> bool:
    """Each case measured in one run: the bare client first, then ``optria ingest``; prints every
    figure beside its goal and returns False when one is missed."""
    ok = True
    for signals, hz, publishing_ms, cpu_goals in cases:
        r = asyncio.run(_case(admin, signals, hz, seconds, publishing_ms, warmup_s))
        ratio = r["ingest_cpu_us"] / r["bare_cpu_us"] if r["bare_cpu_us"] else float("inf")
        stored_us = r["ingest_cpu_us"] + r["pg_cpu_us"]
        lag_goal = publishing_ms + 50
        # the goal is judged on the database's figure over the whole window (the health figure covers the last minute)
        p99 = r["db_lag_p99_ms"] if r["db_lag_p99_ms"] is not None else float("inf")
        checks = {"missing": r["missing"] == 0, "lag": p99 <= lag_goal}
        if cpu_goals:
            checks.update(cpu=stored_us <= GOAL_STORED_US, ratio=ratio <= GOAL_INGEST_RATIO)
        print(f"[e2e {signals}×{hz:g} Hz, {publishing_ms:g} ms publishing] {r['ingest_per_s']:,.0f} samples/s stored; "
              f"written {r['written']:,}, stored {r['stored']:,}, missing {r['missing']:,} (goal 0)", flush=True)
        print(f"    CPU per stored sample: ingest {r['ingest_cpu_us']:.1f} µs + PostgreSQL {r['pg_cpu_us']:.1f} µs = "
              f"{stored_us:.1f} µs ({'goal ≤ %g' % GOAL_STORED_US if cpu_goals else 'no goal at this rate'}); "
              f"generator (simulator) {r['generator_cpu_us']:.1f} µs", flush=True)
        if r["bare_cpu_us"]:   # the host's speed: the goal was set where the bare client took 12.9 µs
            print(f"    on this host's scale: {stored_us / r['bare_cpu_us']:.2f}× the bare client's µs per notification "
                  f"(for information: the goal's {GOAL_STORED_US:g} µs was {GOAL_STORED_US / BARE_US_WHEN_SET:.2f}× it "
                  f"where the goal was set, {BARE_US_WHEN_SET:g} µs)", flush=True)
        print(f"    ingest ÷ bare raw-callback asyncua client ({r['bare_cpu_us']:.1f} µs/notification, "
              f"{r['bare_per_s']:,.0f}/s): {ratio:.2f}× ({'goal ≤ %g×' % GOAL_INGEST_RATIO if cpu_goals else 'no goal at this rate'})",
              flush=True)
        print(f"    lag source → commit over the window: p50 {r['db_lag_p50_ms'] or 0:.0f} ms, p99 {p99:.0f} ms "
              f"(goal ≤ {lag_goal:g} ms); ingest health shows p50 {r['lag_p50_ms'] or 0:.0f} ms, "
              f"p99 {r['lag_p99_ms'] or 0:.0f} ms", flush=True)
        print(f"    ingest RSS {r['rss_start_mib']:.0f} MiB at the start, {r['rss_end_mib']:.0f} MiB at the end, "
              f"peak {r['peak_rss_mib']:.0f} MiB; goals: "
              + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()), flush=True)
        ok &= all(checks.values())
    return ok
