#!/usr/bin/env python3
"""Retention benchmark: can retention keep up with ingest? Both measured in one run here.

1. ingest   the ingest writer stores live batches (1,000 signals, 10,000-row batches) into
            the samples table: rows/s.
2. backlog  rows past the retention cut-off (``--backlog`` rows over a day, 40 days ago),
            loaded with binary COPY, then the retention job removes them: rows/s, and the
            ratio to the ingest rate.                            goal: ≥ 1.0 × ingest
3. steady   a second run right after finds nothing left (caught up).

In the TimescaleDB tiers retention drops whole chunks, so its rate is not a row rate; the
benchmark says so and checks that the backlog is gone.

  python scripts/bench_retention.py                       postgres tier (embedded PostgreSQL)
  python scripts/bench_retention.py --tier timescale      TimescaleDB (scripts/timescaledb first)
Exits non-zero when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import psycopg  # noqa: E402

from ingest.samples import Sample  # noqa: E402
from ingest.writer import Writer  # noqa: E402
from optria.db import Database  # noqa: E402
from optria.embedded_pg import ensure_server  # noqa: E402
from optria.timeseries.retention import RetentionJob  # noqa: E402
from optria.timeseries.writes import COPY_TYPES  # noqa: E402
from scripts.bench_ingest import drop_db, make_signals, release, scratch_db  # noqa: E402

EDITIONS = {"postgres": "off", "timescale": "full", "timescale-apache": "apache"}


async def ingest_rate(dsn: str, tenant: uuid.UUID, ids: list[int], rows: int, batch: int) -> float:
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    samples = [Sample(tenant, ids[k % len(ids)], start + timedelta(milliseconds=100 * (k // len(ids))),
                      float(k % 977), 0) for k in range(rows)]
    writer = Writer(dsn, notify=False)
    t0 = time.perf_counter()
    for i in range(0, rows, batch):
        await writer.write_batch(samples[i:i + batch])
    seconds = time.perf_counter() - t0
    await writer.stop()
    return rows / seconds


def load_backlog(dsn: str, tenant: uuid.UUID, ids: list[int], rows: int) -> None:
    """Rows 40 days old, one day's worth of time, loaded directly (the arrangement, not measured)."""
    base = datetime.now(timezone.utc) - timedelta(days=41)
    step = 86400.0 / max(rows // len(ids), 1)
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE retention_settings SET samples_days = NULL")    # the writer would refuse them otherwise
        with conn.cursor().copy("COPY signal_samples (tenant_id, signal_id, time, value, quality, ingest_time) "
                                "FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(COPY_TYPES)
            for k in range(rows):
                t = base + timedelta(seconds=step * (k // len(ids)))
                cp.write_row((tenant, ids[k % len(ids)], t, float(k % 13), 0, now))
        conn.execute("UPDATE retention_settings SET samples_days = 30, rollup_1m_days = NULL, rollup_1h_days = NULL, "
                     "health_history_days = NULL")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE signal_samples")


async def retention_rate(dsn: str) -> tuple[int, float, int, bool]:
    db = Database(dsn, min_size=1, max_size=2, name="bench-retention")
    await db.open()
    try:
        job = RetentionJob(db, budget_s=600)
        t0 = time.perf_counter()
        removed = await job.run_once()
        seconds = time.perf_counter() - t0
        again = await RetentionJob(db).run_once()
        return removed, seconds, again, job.interval_s == job.base_interval_s
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tier", choices=list(EDITIONS), default="postgres")
    p.add_argument("--ingest-rows", type=int, default=300_000)
    p.add_argument("--backlog", type=int, default=2_000_000)
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="optria-bench-retention-"))
    base.chmod(0o755)
    server = ensure_server(base, fast_unsafe=False, timescale=EDITIONS[args.tier])
    admin = server.dsn("postgres")
    ok = True
    try:
        dsn = scratch_db(admin)
        try:
            tenant, _, ids = make_signals(dsn, 1000)
            ingest = asyncio.run(ingest_rate(dsn, tenant, ids, args.ingest_rows, 10_000))
            load_backlog(dsn, tenant, ids, args.backlog)
            removed, seconds, again, caught_up = asyncio.run(retention_rate(dsn))
            with psycopg.connect(dsn) as conn:
                left = conn.execute("SELECT count(*) FROM signal_samples WHERE time < now() - interval '30 days'"
                                    ).fetchone()[0]
            print(f"[ingest]    writer: {ingest:,.0f} rows/s ({args.ingest_rows:,} rows, 1,000 signals)")
            if args.tier == "postgres":
                rate = removed / seconds
                ratio = rate / ingest
                print(f"[retention] {removed:,} rows removed in {seconds:.1f} s: {rate:,.0f} rows/s; "
                      f"ratio to ingest {ratio:.2f} (goal ≥ 1.00)")
                ok &= ratio >= 1.0 and removed == args.backlog
            else:
                print(f"[retention] {args.tier}: whole chunks dropped ({removed} chunks) in {seconds:.2f} s; "
                      f"a row rate does not apply")
            print(f"[steady]    a second run removed {again}; caught up within its budget: {caught_up}; "
                  f"rows past the cut-off left: {left}")
            ok &= again == 0 and caught_up and left == 0
        finally:
            drop_db(admin, dsn)
    finally:
        release(server)
    print("goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
