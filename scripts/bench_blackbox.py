#!/usr/bin/env python3
"""Black Box benchmark: page latency and grouping throughput, against baselines measured in the same run.

Data (set-based SQL, generate_series): one tenant with 1,000,000 events over 60 days and
10,000 incidents (20 linked events each) on 200 assets, plus two other tenants with
100,000 events and 1,000 incidents each beside it.

1. pages     GET /blackbox (counters, alarm health, incident list), one incident timeline with
             its trends, and the event explorer — p50/p95 over N requests through the real app
             and session — vs a trivial authenticated page (/account/password).
             goal: each page p50 ≤ 5 × the trivial page's p50
2. grouping  N new events stored through the real path (validation, idempotent insert) and
             grouped into incidents, vs a raw INSERT of the same rows into a bare table.
             goal: grouping ≥ 2,000 events/s

  python scripts/bench_blackbox.py                    everything (embedded PostgreSQL)
  python scripts/bench_blackbox.py --events 200000    a smaller data set
Uses DATABASE_URL's server when set (creates and drops a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import psycopg  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402

from optria.blackbox import store  # noqa: E402
from optria.blackbox.events import EventRecord  # noqa: E402
from optria.blackbox.grouping import Grouper  # noqa: E402
from optria.blackbox.health import alarm_health  # noqa: E402
from optria.blackbox.recording import record  # noqa: E402
from optria.config import Settings  # noqa: E402
from optria.db import Database  # noqa: E402
from optria.identity.passwords import hash_password  # noqa: E402
from optria.identity.store import IdentityStore  # noqa: E402
from optria.shell.app import create_app  # noqa: E402
from scripts.bench_ingest import admin_dsn, drop_db, release, scratch_db  # noqa: E402

ASSETS = 200
EVENTS_PER_INCIDENT_BLOCK = 100    # event g belongs to block g / 100; one incident per block
LINKED_PER_INCIDENT = 20
PASSWORD = "Bench-Admin-2026"

SEED_PLANT = """
WITH s AS (INSERT INTO sites (tenant_id, code, name) VALUES (%(t)s, 'BENCH', 'Bench Refinery') RETURNING id),
u AS (INSERT INTO units (tenant_id, site_id, code, name)
      SELECT %(t)s, s.id, 'U' || g, 'Unit ' || g FROM s, generate_series(1, 4) g RETURNING id, site_id)
INSERT INTO assets (tenant_id, site_id, unit_id, code, name)
SELECT %(t)s, u.site_id, u.id, 'A-' || lpad(g::text, 4, '0'), 'Bench asset ' || g
FROM generate_series(1, %(assets)s) g JOIN (SELECT id, site_id, row_number() OVER (ORDER BY id) AS n FROM u) u
  ON u.n = 1 + g %% 4
"""

SEED_SIGNALS = """
WITH i AS (INSERT INTO integrations (tenant_id, kind, name) VALUES (%(t)s, 'opcua', 'Bench OPC-UA') RETURNING id),
s AS (INSERT INTO signals (tenant_id, integration_id, external_id, name, eng_unit)
      SELECT %(t)s, i.id, 'ns=2;s=' || a.code || '.' || r.role, a.code || '.' || r.role, r.unit
      FROM i, assets a, (VALUES ('Vibration', 'mm/s'), ('Temperature', 'degC')) r(role, unit)
      WHERE a.tenant_id = %(t)s RETURNING id, name)
INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, warn_high, crit_high)
SELECT %(t)s, s.id, a.id, CASE WHEN s.name LIKE '%%Vibration' THEN 'vibration' ELSE 'temperature' END,
       CASE WHEN s.name LIKE '%%Vibration' THEN 7.1 ELSE 95 END, CASE WHEN s.name LIKE '%%Vibration' THEN 11 ELSE 110 END
FROM s JOIN assets a ON a.tenant_id = %(t)s AND s.name LIKE a.code || '.%%'
"""

# Block position p = g % 100: 0 the trigger (critical limit breach), 1–19 its related events
# (alerts, operator actions, work orders), the rest background (quality, integration, process, alarms).
SEED_EVENTS = """
INSERT INTO industrial_events (tenant_id, event_time, source_system, source_type, source_id, severity, event_category,
                               summary, payload, asset_id, site_id, unit_id, integration_id, signal_id, actor, alarm_key)
SELECT %(t)s, %(start)s + g * %(step)s::interval,
       CASE WHEN p = 0 THEN 'limits' WHEN p < 8 THEN 'alerts' WHEN p < 14 THEN 'work_orders' WHEN p %% 5 = 0 THEN 'quality'
            WHEN p %% 5 = 1 THEN 'ingest' ELSE 'alerts' END,
       CASE WHEN p = 0 THEN 'limit_breach' WHEN p < 5 THEN 'alert_raised' WHEN p < 8 THEN 'alert_acknowledged'
            WHEN p < 14 THEN 'work_order_status_changed' WHEN p %% 5 = 0 THEN 'quality_bad'
            WHEN p %% 5 = 1 THEN 'integration_disconnected' ELSE 'alert_raised' END,
       'bench:' || g,
       CASE WHEN p = 0 THEN 'critical' WHEN p < 5 THEN 'high' WHEN p %% 5 = 1 THEN 'high' WHEN p %% 3 = 0 THEN 'medium'
            ELSE 'low' END,
       CASE WHEN p = 0 THEN 'limit' WHEN p < 5 THEN 'alarm' WHEN p < 8 THEN 'operator_action' WHEN p < 14 THEN 'maintenance'
            WHEN p %% 5 = 0 THEN 'quality' WHEN p %% 5 = 1 THEN 'integration' ELSE 'alarm' END,
       CASE WHEN p = 0 THEN a.code || '.Vibration: 14.2 mm/s > 11' WHEN p < 14 THEN 'Bearing check ' || (p %% 4)
            ELSE 'Background event ' || (p %% 9) END,
       jsonb_build_object('bench', g, 'value', p * 0.5),
       a.id, a.site_id, a.unit_id, NULL, NULL, CASE WHEN p BETWEEN 5 AND 13 THEN 'operator' || (p %% 3) END,
       CASE WHEN p = 0 THEN 'limit:' || a.id || ':crit_high' WHEN p < 5 OR (p >= 14 AND p %% 5 > 1)
            THEN 'alert:' || a.id || ':' || (p %% 9) END
FROM generate_series(0, %(n)s - 1) g
CROSS JOIN LATERAL (SELECT g %% 100 AS p, (g / 100) %% %(assets)s AS k) x
JOIN (SELECT id, site_id, unit_id, code, row_number() OVER (ORDER BY id) - 1 AS k FROM assets WHERE tenant_id = %(t)s) a
  ON a.k = x.k
"""

SEED_INCIDENTS = """
INSERT INTO incidents (tenant_id, asset_id, title, incident_type, severity, status, started_at, last_event_at,
                       event_count, acknowledged_at, resolved_at, resolved_by_name, summary)
SELECT %(t)s, a.id, a.code || ': vibration above critical limit', 'limit_breach', 'critical',
       CASE WHEN b >= %(n)s - 20 THEN 'open' WHEN b >= %(n)s - 40 THEN 'acknowledged' ELSE 'resolved' END,
       %(start)s + (b * 100) * %(step)s::interval, %(start)s + (b * 100 + 19) * %(step)s::interval, 20,
       CASE WHEN b < %(n)s - 20 THEN %(start)s + (b * 100 + 30) * %(step)s::interval END,
       CASE WHEN b < %(n)s - 40 THEN %(start)s + (b * 100 + 40) * %(step)s::interval END,
       CASE WHEN b < %(n)s - 40 THEN 'bench' END, CASE WHEN b < %(n)s - 40 THEN 'Bearing replaced.' ELSE '' END
FROM generate_series(0, %(n)s - 1) b
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k, code FROM assets WHERE tenant_id = %(t)s) a
  ON a.k = b %% %(assets)s
"""

LINK_INCIDENTS = """
INSERT INTO incident_events (tenant_id, incident_id, event_id, event_time, relation, flood_key, count, last_event_id,
                             last_event_time)
SELECT %(t)s, i.id, e.id, e.event_time, CASE WHEN e.source_type = 'limit_breach' THEN 'trigger'
       WHEN e.event_category IN ('operator_action', 'maintenance') THEN 'action' ELSE 'related' END,
       md5(e.id::text), 1, e.id, e.event_time
FROM incidents i
JOIN industrial_events e ON e.tenant_id = i.tenant_id AND e.asset_id = i.asset_id
 AND e.event_time BETWEEN i.started_at AND i.last_event_at
WHERE i.tenant_id = %(t)s
"""

TRENDS = """
INSERT INTO signal_1m_rollup (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
SELECT m.tenant_id, m.signal_id, b, 60, 60 * (5 + 4 * sin(extract(epoch FROM b) / 600)),
       4 + 4 * sin(extract(epoch FROM b) / 600), 6 + 4 * sin(extract(epoch FROM b) / 600),
       5 + 4 * sin(extract(epoch FROM b) / 600), b
FROM external_signal_mappings m
CROSS JOIN generate_series(date_trunc('minute', %(from)s::timestamptz), %(to)s::timestamptz, interval '1 minute') b
WHERE m.tenant_id = %(t)s AND m.asset_id = %(asset)s
ON CONFLICT DO NOTHING
"""


def seed_tenant(conn: psycopg.Connection, slug: str, events: int, incidents: int) -> uuid.UUID:
    tenant = conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", [slug, slug.upper()]).fetchone()[0]
    conn.execute(SEED_PLANT, {"t": tenant, "assets": ASSETS})
    conn.execute(SEED_SIGNALS, {"t": tenant})
    now = datetime.now(timezone.utc)
    span = timedelta(days=60)
    step = span / events
    params = {"t": tenant, "start": now - span - timedelta(minutes=1), "step": step, "n": events, "assets": ASSETS}
    conn.execute(SEED_EVENTS, params)
    conn.execute(SEED_INCIDENTS, {**params, "n": min(incidents, events // EVENTS_PER_INCIDENT_BLOCK)})
    conn.execute(LINK_INCIDENTS, {"t": tenant})
    return tenant


def seed(dsn: str, events: int, incidents: int, others: int) -> dict:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        try:
            conn.execute("SET session_replication_role = replica")   # skip FK checks of rows built consistent
        except psycopg.Error:
            pass
        main = seed_tenant(conn, f"bench-{uuid.uuid4().hex[:6]}", events, incidents)
        for i in range(others):
            seed_tenant(conn, f"other-{i}-{uuid.uuid4().hex[:4]}", events // 10, incidents // 10)
        conn.execute("SET session_replication_role = origin")
        incident = conn.execute("SELECT id, asset_id, started_at, last_event_at FROM incidents WHERE tenant_id = %s "
                                "AND status = 'open' ORDER BY started_at DESC LIMIT 1", [main]).fetchone()
        conn.execute(TRENDS, {"t": main, "asset": incident[1], "from": incident[2] - timedelta(minutes=40),
                              "to": incident[3] + timedelta(minutes=20)})
        conn.execute(RAW_TABLE)   # the raw-insert baseline of part 2
        # the grouping job starts after the generated history (it measures new events only)
        conn.execute("INSERT INTO blackbox_cursors (collector, position, position_xid) "
                     "SELECT 'blackbox.grouping', id, xact_id FROM industrial_events ORDER BY xact_id DESC, id DESC LIMIT 1")
        conn.execute("VACUUM ANALYZE")   # the steady state autovacuum keeps: visibility map set, statistics fresh
        counts = conn.execute("SELECT (SELECT count(*) FROM industrial_events WHERE tenant_id = %s), "
                              "(SELECT count(*) FROM incidents WHERE tenant_id = %s), "
                              "(SELECT count(*) FROM industrial_events), (SELECT count(*) FROM incidents)",
                              [main, main]).fetchone()
    return {"tenant": main, "incident": incident[0], "seconds": time.perf_counter() - t0, "events": counts[0],
            "incidents": counts[1], "all_events": counts[2], "all_incidents": counts[3]}


# ---------------------------------------------------------------------------------- part 1: pages


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench_pages(dsn: str, tenant: uuid.UUID, incident_id: int, rounds: int) -> dict:
    db = Database(dsn, min_size=2, max_size=4, name="bench-web")
    await db.open()
    try:
        await IdentityStore(db).ensure_local_user(tenant_id=tenant, username="admin", email="admin@bench.test",
                                                  role="tenant_admin", password_hash=hash_password(PASSWORD))
        async with db.platform("bench") as conn:
            slug = (await (await conn.execute("SELECT slug FROM tenants WHERE id = %s", [tenant])).fetchone())["slug"]
        app = create_app(Settings(SESSION_SECRET="bench-secret-" + "x" * 30, APP_ENV="test", LOG_LEVEL="WARNING"), db)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        pages = {"trivial": "/account/password", "blackbox": "/blackbox",
                 "incident": f"/blackbox/incidents/{incident_id}", "events": "/blackbox/events"}
        out: dict[str, dict[str, float]] = {}
        async with AsyncTestClient(app=app) as client:
            client.follow_redirects = False
            await client.get("/login")
            r = await client.post("/login", data={"_csrf_token": client.cookies.get("optria_csrf") or "",
                                                  "organization": slug, "username": "admin", "password": PASSWORD})
            assert r.status_code in (302, 303), r.text[:300]
            for name, path in pages.items():
                for _ in range(3):   # warm-up: template compile, plans, pool
                    assert (await client.get(path)).status_code == 200, path
            timings: dict[str, list[float]] = {name: [] for name in pages}
            for _ in range(rounds):   # interleaved, so drifts hit every page alike
                for name, path in pages.items():
                    t0 = time.perf_counter()
                    r = await client.get(path)
                    timings[name].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
        for name, values in timings.items():
            out[name] = {"p50": statistics.median(values), "p95": pct(values, 0.95)}
        # the alarm-health summary is cached 30 s per tenant/asset/period; what a refresh costs:
        for hours in (24, 168):
            cold: list[float] = []
            for _ in range(5):
                async with db.tenant(tenant) as conn:
                    t0 = time.perf_counter()
                    await alarm_health(conn, tenant, hours=hours)
                    cold.append((time.perf_counter() - t0) * 1000)
            out[f"health {hours}h (refresh)"] = {"p50": statistics.median(cold), "p95": max(cold)}
        return out
    finally:
        await db.close()


# ---------------------------------------------------------------------------------- part 2: grouping


def new_events(tenant: uuid.UUID, assets: list[tuple[int, int, int]], n: int) -> list[EventRecord]:
    """n events over the last 20 minutes: one critical trigger per 100 (on the asset of its block),
    alarms that repeat (flood summarization), operator actions and background events."""
    start = datetime.now(timezone.utc) - timedelta(minutes=20)
    out = []
    for i in range(n):
        asset_id, site_id, unit_id = assets[(i // 100) % len(assets)]
        p = i % 100
        t = start + timedelta(milliseconds=60 * i)
        if p == 0:
            kind = ("limits", "limit_breach", "critical", "limit", f"limit:{asset_id}:crit_high", "Vibration 14.2 > 11")
        elif p < 30:
            kind = ("alerts", "alert_raised", "high", "alarm", f"alert:{asset_id}:seal", "Seal leak")   # a flood
        elif p < 40:
            kind = ("alerts", "alert_acknowledged", "info", "operator_action", None, f"Seal leak ack {p}")
        else:
            kind = ("quality", "quality_bad", "medium", "quality", None, f"Signal {p % 7} quality")
        system, source_type, severity, category, alarm_key, summary = kind
        out.append(EventRecord(tenant_id=tenant, source_system=system, source_type=source_type,
                               source_id=f"new:{i}", event_time=t, severity=severity, event_category=category,
                               summary=summary, payload={"i": i}, asset_id=asset_id, site_id=site_id,
                               unit_id=unit_id, alarm_key=alarm_key))
    return out


RAW_TABLE = "CREATE TABLE bench_raw_events (LIKE industrial_events INCLUDING DEFAULTS INCLUDING IDENTITY)"


async def bench_grouping(dsn: str, tenant: uuid.UUID, n: int, chunk: int) -> dict:
    db = Database(dsn, min_size=1, max_size=2, name="bench-grouping")
    await db.open()
    try:
        async with db.platform("bench") as conn:
            assets = [(r["id"], r["site_id"], r["unit_id"]) for r in await (await conn.execute(
                "SELECT id, site_id, unit_id FROM assets WHERE tenant_id = %s ORDER BY id", [tenant])).fetchall()]
            before = (await (await conn.execute("SELECT count(*) AS n FROM incidents WHERE tenant_id = %s",
                                                [tenant])).fetchone())["n"]
        events = new_events(tenant, assets, n)
        chunks = [events[i:i + chunk] for i in range(0, n, chunk)]
        raw_insert = store.INSERT_EVENTS.as_string(None).replace("INSERT INTO industrial_events",
                                                                  "INSERT INTO bench_raw_events", 1)
        raw_insert = raw_insert.replace("ON CONFLICT DO NOTHING\nRETURNING id", "")
        async with await psycopg.AsyncConnection.connect(dsn) as raw:   # the bare baseline: owner, no RLS
            t0 = time.perf_counter()
            for c in chunks:
                cols = list(zip(*(r.row() for r in c)))
                await raw.execute(raw_insert, {name: list(v) for name, v in zip(store.EVENT_COLUMNS, cols)})
                await raw.commit()
            raw_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for c in chunks:
            async with db.platform("bench") as conn:
                await record(conn, c)
        insert_s = time.perf_counter() - t0
        grouper = Grouper(db)
        t0 = time.perf_counter()
        grouped = 0
        while True:
            done = await grouper.run_once()
            grouped += done
            if not done:
                break
        group_s = time.perf_counter() - t0
        async with db.platform("bench") as conn:
            after = (await (await conn.execute("SELECT count(*) AS n FROM incidents WHERE tenant_id = %s",
                                               [tenant])).fetchone())["n"]
            links = (await (await conn.execute(
                "SELECT count(*) AS n FROM incident_events ie JOIN incidents i ON i.tenant_id = ie.tenant_id "
                "AND i.id = ie.incident_id WHERE i.tenant_id = %s AND i.started_at > now() - interval '1 hour'",
                [tenant])).fetchone())["n"]
        return {"events": n, "grouped": grouped, "raw_per_s": n / raw_s, "insert_per_s": n / insert_s,
                "grouping_per_s": n / group_s, "insert_and_grouping_per_s": n / (insert_s + group_s),
                "new_incidents": after - before, "timeline_rows": links}
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--incidents", type=int, default=10_000)
    p.add_argument("--other-tenants", type=int, default=2)
    p.add_argument("--rounds", type=int, default=30, help="timed requests per page")
    p.add_argument("--new-events", type=int, default=20_000, help="events stored and grouped in part 2")
    p.add_argument("--chunk", type=int, default=2_000, help="events per insert transaction in part 2")
    p.add_argument("--keep", action="store_true", help="keep the scratch database (prints its DSN) for EXPLAIN")
    args = p.parse_args(argv)
    admin, server = admin_dsn()
    dsn = scratch_db(admin)
    logging.getLogger("httpx").setLevel(logging.WARNING)   # one log line per request would be measured too
    ok = True
    try:
        print(f"seeding {args.events:,} events / {args.incidents:,} incidents (+ {args.other_tenants} other tenants) ...",
              flush=True)
        s = seed(dsn, args.events, args.incidents, args.other_tenants)
        print(f"  seeded in {s['seconds']:.1f}s: tenant {s['events']:,} events, {s['incidents']:,} incidents; "
              f"all tenants {s['all_events']:,} events, {s['all_incidents']:,} incidents")

        pages = asyncio.run(bench_pages(dsn, s["tenant"], s["incident"], args.rounds))
        base = pages["trivial"]["p50"]
        print("\n1. pages (ms, %d requests each)" % args.rounds)
        print(f"  {'page':<22} {'p50':>8} {'p95':>8} {'× trivial p50':>14}")
        for name, v in pages.items():
            ratio = v["p50"] / base
            if name.startswith("health"):
                print(f"  {name:<22} {v['p50']:8.1f} {v['p95']:8.1f}   (not a page: recomputed at most every 30 s)")
                continue
            print(f"  {name:<22} {v['p50']:8.1f} {v['p95']:8.1f} {ratio:14.2f}")
            if name != "trivial" and ratio > 5:
                ok = False
        print("  goal: every page p50 ≤ 5 × trivial:", "met" if ok else "NOT met")

        logging.getLogger("optria").setLevel(logging.WARNING)
        g = asyncio.run(bench_grouping(dsn, s["tenant"], args.new_events, args.chunk))
        print(f"\n2. grouping ({g['events']:,} new events in transactions of {args.chunk:,})")
        print(f"  raw INSERT into a bare table   {g['raw_per_s']:10,.0f} events/s")
        print(f"  stored (validate + dedupe)     {g['insert_per_s']:10,.0f} events/s  "
              f"({g['insert_per_s'] / g['raw_per_s']:.2f} × raw)")
        print(f"  grouping                       {g['grouping_per_s']:10,.0f} events/s")
        print(f"  store + group                  {g['insert_and_grouping_per_s']:10,.0f} events/s  "
              f"({g['insert_and_grouping_per_s'] / g['raw_per_s']:.2f} × raw)")
        print(f"  → {g['new_incidents']} new incidents, {g['timeline_rows']} timeline rows (floods summarized)")
        met = g["grouping_per_s"] >= 2000
        ok = ok and met
        print("  goal: grouping ≥ 2,000 events/s:", "met" if met else "NOT met")
    finally:
        if args.keep:
            print(f"\nkept: {dsn}")
        else:
            drop_db(admin, dsn)
            release(server)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
