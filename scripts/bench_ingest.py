#!/usr/bin/env python3
"""Ingest benchmark: figures and ratios measured in one run on this machine.

1. writer   generated samples → Writer (COPY, dedupe, latest, rollups) vs raw binary COPY
            of the same rows into a table with the same primary key (the bare-table ratio
            printed too; see scripts/bench_ingest_writer.py).         goal: ≥ 0.6 × keyed COPY
2. e2e      OPC-UA simulator → ingest worker → database: sustained samples/s, missing
            samples (database count vs simulator count), source→commit latency p50/p99,
            CPU per sample vs a bare asyncua client that only counts notifications.
            goal: 0 missing, p99 ≤ publishing interval + 50 ms, CPU ≤ 1.5 × bare client
3. peak RSS of the ingest process.
4. soak     (only with --only soak) 10 minutes of OPC-UA 1,000 × 10 Hz plus 200 PI points at 1 s
            read with a 15 s poll, through a database restart, an OPC-UA server restart, a
            network cut and an injected writer exception, with limit breaches inside each;
            stored rows against the sources' own record, and the breach events (see
            scripts/bench_ingest_soak.py).      goal: 0 missing, 0 duplicates, every breach's event
5. scale    (only with --only scale) 50,000 PI values/s for 10 minutes through several
            integrations and ingest processes, while /digital-twin is timed against a trivial
            page (see scripts/bench_ingest_scale.py).
            goal: ≥ 50,000/s stored, 0 missing, twin ≤ 5× trivial, flat RSS

  python scripts/bench_ingest.py --tier timescale      parts 1-3 on a tier (embedded server)
  python scripts/bench_ingest.py --only writer         one part
  python scripts/bench_ingest.py --only soak --tier timescale [--soak-seconds 600]
  python scripts/bench_ingest.py --only scale --tier timescale [--scale-processes 2] [--scale-seconds 600]
Parts 1-3 use DATABASE_URL's server when set (creates and drops a scratch database), otherwise a
private embedded PostgreSQL of --tier; the soak and the scale run always start their own.
Every printed goal counts: the exit status is non-zero when any one of them is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from optria.migrations import migrate  # noqa: E402


EDITIONS = {"postgres": "off", "timescale": "full", "timescale-apache": "apache"}


def admin_dsn(tier: str = "postgres") -> tuple[str, object | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    from optria.embedded_pg import ensure_server

    base = Path(tempfile.mkdtemp(prefix="optria-bench-pg-"))
    base.chmod(0o755)
    server = ensure_server(base, fast_unsafe=False, timescale=EDITIONS[tier])
    return server.dsn("postgres"), server


def release(server) -> None:
    """Stop a cluster admin_dsn started and remove its directory (a run leaves ~200 MB behind otherwise)."""
    if server is not None:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def scratch_db(admin: str) -> str:
    name = f"optria_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
    migrate(dsn)
    return dsn


def drop_db(admin: str, dsn: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def make_signals(dsn: str, count: int, kind: str = "opcua", external=lambda i: f"ns=2;s=Bench.S{i:05d}") -> tuple[uuid.UUID, int, list[int]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tenant = conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, 'Bench') RETURNING id",
                              [f"bench-{uuid.uuid4().hex[:6]}"]).fetchone()[0]
        site = conn.execute("INSERT INTO sites (tenant_id, code, name) VALUES (%s, 'B', 'Bench') RETURNING id", [tenant]).fetchone()[0]
        unit = conn.execute("INSERT INTO units (tenant_id, site_id, code, name) VALUES (%s, %s, 'U', 'U') RETURNING id",
                            [tenant, site]).fetchone()[0]
        asset = conn.execute("INSERT INTO assets (tenant_id, site_id, unit_id, code, name) VALUES (%s, %s, %s, 'A', 'A') RETURNING id",
                             [tenant, site, unit]).fetchone()[0]
        integration = conn.execute("INSERT INTO integrations (tenant_id, kind, name) VALUES (%s, %s, 'bench') RETURNING id",
                                   [tenant, kind]).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO signals (tenant_id, integration_id, external_id, name) VALUES (%s, %s, %s, %s)",
                            [(tenant, integration, external(i), f"S{i}") for i in range(count)])
        ids = [r[0] for r in conn.execute("SELECT id FROM signals WHERE integration_id = %s ORDER BY id", [integration])]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role) "
                            "VALUES (%s, %s, %s, 'other')", [(tenant, s, asset) for s in ids])
    return tenant, integration, ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["writer", "e2e", "soak", "scale"])
    p.add_argument("--rows", type=int, default=300_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--e2e-seconds", type=float, default=20.0)
    p.add_argument("--e2e-warmup-s", type=float, default=60.0,
                   help="e2e: seconds of streaming before the measured window (the ingest's steady state)")
    p.add_argument("--tier", choices=list(EDITIONS), default="postgres",
                   help="storage tier (the soak runs postgres and timescale)")
    p.add_argument("--soak-seconds", type=float, default=600.0)
    p.add_argument("--soak-signals", type=int, default=1000, help="soak: OPC-UA bench signals")
    p.add_argument("--soak-hz", type=float, default=10.0, help="soak: rate of each OPC-UA bench signal")
    p.add_argument("--soak-pi-points", type=int, default=200)
    p.add_argument("--soak-pi-poll-s", type=float, default=15.0)
    p.add_argument("--soak-warmup-s", type=float, default=20.0)
    p.add_argument("--soak-db-down-s", type=float, default=15.0)
    p.add_argument("--soak-log", type=Path, default=None, help="soak: log file (default: a new one in the temp dir)")
    p.add_argument("--scale-seconds", type=float, default=600.0)
    p.add_argument("--scale-points", type=int, default=5000, help="scale: PI points (values/s = points × hz)")
    p.add_argument("--scale-hz", type=float, default=10.0)
    p.add_argument("--scale-integrations", type=int, default=6, help="scale: PI integrations (a multiple of the processes splits evenly)")
    p.add_argument("--scale-processes", type=int, default=2,
                   help="scale: ingest processes sharing the integrations (one per core)")
    args = p.parse_args(argv)
    if args.only == "scale":
        from scripts.bench_ingest_scale import ScaleOptions, run_scale

        return 0 if run_scale(ScaleOptions(tier=args.tier, seconds=args.scale_seconds, points=args.scale_points,
                                           hz=args.scale_hz, integrations=args.scale_integrations,
                                           processes=args.scale_processes)) else 1
    if args.only == "soak":
        if args.tier == "timescale-apache":
            p.error("the soak runs on the postgres and timescale tiers")
        from scripts.bench_ingest_soak import Options, run_soak

        return 0 if run_soak(Options(tier=args.tier, seconds=args.soak_seconds, signals=args.soak_signals,
                                     hz=args.soak_hz, pi_points=args.soak_pi_points, pi_poll_s=args.soak_pi_poll_s,
                                     warmup_s=args.soak_warmup_s, db_down_s=args.soak_db_down_s,
                                     log_path=args.soak_log)) else 1
    admin, server = admin_dsn(args.tier)
    print(f"tier {args.tier}", flush=True)
    ok = True
    try:
        if args.only in (None, "writer"):
            from scripts.bench_ingest_writer import run_writer

            ok &= run_writer(admin, args.rows, args.batch)
        if args.only in (None, "e2e"):
            from scripts.bench_ingest_e2e import run_e2e

            ok &= run_e2e(admin, args.e2e_seconds, warmup_s=args.e2e_warmup_s)
        print(f"peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        release(server)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
