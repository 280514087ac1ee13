"""Part 1 of scripts/bench_ingest.py: the writer against raw binary COPY, measured in one run.

The same generated rows (1,000 signals, ``--rows``) go, batch by batch, one transaction each:
  1. raw binary COPY into a bare table (no index): the floor;
  2. raw binary COPY into a table with the samples' primary key (tenant_id, signal_id, time):
     the baseline the goal is set against (the writer cannot store without that key);
  3. the ingest writer as the service runs it: its loop fed through its queue, committing the
     samples and their commit-log entries and folding latest values and rollups, until every
     row is committed and folded.
Goal: writer ≥ 0.6 × raw COPY into the keyed table. The bare-table ratio is printed too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import psycopg

from ingest.samples import Sample
from ingest.writer import Writer
from optria.timeseries.writes import COPY_TYPES

GOAL = 0.6


async def _raw_copy(dsn: str, table_ddl: str, batches: list[list[Sample]]) -> float:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(table_ddl)
        await conn.commit()
        now = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        for b in batches:
            async with conn.cursor().copy("COPY bench_raw FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(COPY_TYPES)
                for s in b:
                    await cp.write_row((s.tenant_id, s.signal_id, s.time, s.value, s.quality, now))
            await conn.commit()
        seconds = time.perf_counter() - t0
        await conn.execute("DROP TABLE bench_raw")
        await conn.commit()
    return seconds


async def bench_writer(admin: str, rows_total: int, signals: int, batch: int) -> dict:
    from scripts.bench_ingest import drop_db, make_signals, scratch_db

    dsn = scratch_db(admin)
    try:
        tenant, _, ids = make_signals(dsn, signals)
        start = datetime.now(timezone.utc) - timedelta(hours=2)
        rows = [Sample(tenant, ids[k % signals], start + timedelta(milliseconds=100 * (k // signals)), float(k % 977), 0)
                for k in range(rows_total)]
        batches = [rows[i:i + batch] for i in range(0, rows_total, batch)]
        columns = "tenant_id uuid, signal_id bigint, time timestamptz, value double precision, quality smallint, " \
                  "ingest_time timestamptz"
        bare_s = await _raw_copy(dsn, f"CREATE TABLE bench_raw ({columns})", batches)
        keyed_s = await _raw_copy(dsn, f"CREATE TABLE bench_raw ({columns}, PRIMARY KEY (tenant_id, signal_id, time))",
                                  batches)
        writer = Writer(dsn, notify=True)
        task = writer.start()
        t0 = time.perf_counter()
        for b in batches:
            await writer.put(b)
        while writer.stats.committed < rows_total and not task.done():
            await asyncio.sleep(0.005)
        await writer.stop()                      # the last fold (latest values and rollups) included
        writer_s = time.perf_counter() - t0
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT set_config('optria.platform', 'bench', false)")
            stored = conn.execute("SELECT count(*) FROM signal_samples_tenant").fetchone()[0]
            rolled = conn.execute("SELECT coalesce(sum(n), 0) FROM signal_1m").fetchone()[0]
        return {"rows": rows_total, "bare_rows_per_s": rows_total / bare_s, "keyed_rows_per_s": rows_total / keyed_s,
                "writer_rows_per_s": rows_total / writer_s, "ratio": keyed_s / writer_s, "bare_ratio": bare_s / writer_s,
                "stored": stored, "rolled_up": rolled}
    finally:
        drop_db(admin, dsn)


def run_writer(admin: str, rows: int, batch: int) -> bool:
    r = asyncio.run(bench_writer(admin, rows, 1000, batch))
    ok = r["ratio"] >= GOAL and r["stored"] == rows and r["rolled_up"] == rows
    print(f"[writer] raw COPY into a bare table {r['bare_rows_per_s']:,.0f} rows/s; into a table with the samples' "
          f"primary key {r['keyed_rows_per_s']:,.0f} rows/s; writer {r['writer_rows_per_s']:,.0f} rows/s", flush=True)
    print(f"    writer ÷ keyed COPY {r['ratio']:.2f} (goal ≥ {GOAL:.2f}); writer ÷ bare COPY {r['bare_ratio']:.2f}; "
          f"stored {r['stored']:,}, in the 1-minute aggregates {r['rolled_up']:,} (goal: all {rows:,}); "
          f"{'met' if ok else 'MISSED'}", flush=True)
    return ok
