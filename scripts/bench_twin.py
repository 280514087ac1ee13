#!/usr/bin/env python3
"""Digital Twin benchmark: figures and ratios measured in one run on this machine.

A scratch database gets 1,000 assets in 20 sites (5 units each) and 10,000 mapped signals
with live latest values and an hour / a day of rollups, scored once by the scoring job.
A real granian server (``optria serve``) runs on it. Then:

1. page    server time of ``GET /digital-twin`` (first page of cards), p50/p95 over 200
           requests, against trivial pages of the same server, interleaved in the same run:
           a signed-in page (/account/password: the same session check every signed-in
           page pays), the login page and /healthz.    goal: ≤ 5 × the signed-in trivial page
           (the ratios to the anonymous pages are printed too)
2. live    100 concurrent SSE subscribers on ``/digital-twin/stream``; a sample is committed
           through the ingest writer (its NOTIFY), and the time until the changed card
           reaches each subscriber is recorded.                   goal: p95 ≤ 500 ms
3. colour  with the scoring job running at its normal interval, commit → the card turns
           critical at the subscribers (informative: bounded by the job's interval).

  python scripts/bench_twin.py                 (embedded PostgreSQL, or DATABASE_URL's server)
  python scripts/bench_twin.py --requests 400 --subscribers 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx  # noqa: E402
import psycopg  # noqa: E402

from ingest.samples import Sample  # noqa: E402
from ingest.writer import Writer  # noqa: E402
from optria.db import Database  # noqa: E402
from optria.identity.passwords import hash_password  # noqa: E402
from optria.twin.jobs import ScoringJob  # noqa: E402
from scripts.bench_ingest import admin_dsn, drop_db, release, scratch_db  # noqa: E402

SITES, UNITS_PER_SITE, ASSETS, SIGNALS_PER_ASSET = 20, 5, 1000, 10
ROLES = ("vibration", "temperature", "pressure", "flow", "power", "speed", "current", "level", "running", "other")
# role -> (unit, nominal, warn_high, crit_high)
PROFILE = {"vibration": ("mm/s", 2.2, 7.1, 11.0), "temperature": ("degC", 72.0, 95.0, 110.0),
           "pressure": ("bar", 12.0, 16.0, 18.0), "flow": ("m3/h", 340.0, None, None),
           "power": ("kW", 850.0, 1100.0, 1250.0), "speed": ("rpm", 2950.0, 3200.0, 3400.0),
           "current": ("A", 120.0, 160.0, 180.0), "level": ("%", 55.0, 90.0, 95.0), "running": ("", 1.0, None, None),
           "other": ("", 10.0, None, None)}
PASSWORD = "Bench-Twin-2026"
SECRET = "bench-twin-session-secret-" + "q" * 24


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------------------------- data


def populate(dsn: str) -> dict:
    """Tenant, admin user, 20 sites × 5 units, 1,000 assets, 10,000 mapped signals with live data."""
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        tenant = conn.execute("INSERT INTO tenants (slug, name) VALUES ('bench-twin', 'Bench Twin') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                     "VALUES (%s, 'admin', 'admin@bench.test', 'tenant_admin', %s)", [tenant, hash_password(PASSWORD)])
        conn.execute("INSERT INTO sites (tenant_id, code, name) SELECT %s, 'S' || lpad(i::text, 2, '0'), 'Site ' || i "
                     "FROM generate_series(1, %s) i", [tenant, SITES])
        conn.execute("INSERT INTO units (tenant_id, site_id, code, name) SELECT s.tenant_id, s.id, 'U' || j, "
                     "'Unit ' || s.code || '-' || j FROM sites s, generate_series(1, %s) j WHERE s.tenant_id = %s",
                     [UNITS_PER_SITE, tenant])
        per_unit = ASSETS // (SITES * UNITS_PER_SITE)
        conn.execute("INSERT INTO assets (tenant_id, site_id, unit_id, code, name, asset_type, expected_interval_s) "
                     "SELECT u.tenant_id, u.site_id, u.id, 'A-' || u.id || '-' || k, 'Pump ' || u.id || '-' || k, 'pump', 600 "
                     "FROM units u, generate_series(1, %s) k WHERE u.tenant_id = %s", [per_unit, tenant])
        assets = [r[0] for r in conn.execute("SELECT id FROM assets WHERE tenant_id = %s ORDER BY id", [tenant])]
        integration = conn.execute("INSERT INTO integrations (tenant_id, kind, name) VALUES (%s, 'opcua', 'bench') "
                                   "RETURNING id", [tenant]).fetchone()[0]
        with conn.cursor().copy("COPY signals (tenant_id, integration_id, external_id, name, eng_unit) FROM STDIN") as cp:
            for a in assets:
                for role in ROLES:
                    cp.write_row((tenant, integration, f"ns=2;s=A{a}.{role}", f"{role} {a}", PROFILE[role][0]))
        signal_rows = conn.execute("SELECT id, external_id FROM signals WHERE integration_id = %s", [integration]).fetchall()
        by_ext = {ext: sid for sid, ext in signal_rows}
        signals: dict[int, dict[str, int]] = {a: {r: by_ext[f"ns=2;s=A{a}.{r}"] for r in ROLES} for a in assets}
        with conn.cursor().copy("COPY external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, unit, "
                                "warn_high, crit_high, expected_interval_s) FROM STDIN") as cp:
            for a in assets:
                for role in ROLES:
                    unit, _, wh, ch = PROFILE[role]
                    cp.write_row((tenant, signals[a][role], a, role, unit, wh, ch, 600))
        with conn.cursor().copy("COPY signal_latest (tenant_id, signal_id, time, value, quality, ingest_time) FROM STDIN") as cp:
            for a in assets:
                roll = rng.random()
                for role in ROLES:
                    nominal = PROFILE[role][1]
                    value = nominal * (1 + rng.uniform(-0.03, 0.03))
                    if role == "vibration":
                        value = 12.0 if roll < 0.02 else (8.0 if roll < 0.05 else value)
                    t = now - timedelta(seconds=rng.uniform(1, 30))
                    cp.write_row((tenant, signals[a][role], t, value, 0, t))
        with conn.cursor().copy("COPY signal_1m_rollup (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time) "
                                "FROM STDIN") as cp:
            minute = now.replace(second=0, microsecond=0)
            for a in assets:
                sid = signals[a]["vibration"]
                for k in range(60):
                    b = minute - timedelta(minutes=k)
                    v = 2.2 + rng.uniform(-0.1, 0.1)
                    cp.write_row((tenant, sid, b, 6, v * 6, v - 0.15, v + 0.15, v, b + timedelta(seconds=50)))
        with conn.cursor().copy("COPY signal_1h_rollup (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time) "
                                "FROM STDIN") as cp:
            hour = now.replace(minute=0, second=0, microsecond=0)
            for a in assets:
                sid = signals[a]["vibration"]
                for k in range(24):
                    b = hour - timedelta(hours=k)
                    v = 2.2 + rng.uniform(-0.05, 0.05)
                    cp.write_row((tenant, sid, b, 360, v * 360, v - 0.4, v + 0.4, v, b + timedelta(minutes=59)))
        conn.execute("ANALYZE")
    return {"tenant": tenant, "assets": assets, "signals": signals}


async def score_all(dsn: str) -> tuple[int, float]:
    db = Database(dsn, min_size=1, max_size=2, name="bench-twin-scoring")
    await db.open()
    try:
        started = time.perf_counter()
        n = await ScoringJob(db, notify=False).run_once()
        return n, time.perf_counter() - started
    finally:
        await db.close()


# ---------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dsn: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": dsn, "SESSION_SECRET": SECRET, "APP_ENV": "test", "OPTRIA_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--no-migrate"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not start within 60 s")


def login(client: httpx.Client) -> None:
    client.get("/login")
    token = client.cookies.get("optria_csrf") or ""
    r = client.post("/login", data={"_csrf_token": token, "organization": "bench-twin", "username": "admin",
                                    "password": PASSWORD})
    if r.status_code not in (302, 303) or r.headers.get("location", "").startswith("/login"):
        raise SystemExit(f"login failed: {r.status_code}")


# ---------------------------------------------------------------------------------- 1. page


def bench_pages(base: str, requests: int) -> dict:
    user = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    anon = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    login(user)
    first = user.get("/digital-twin")
    assert first.status_code == 200 and first.text.count('data-testid="twin-card"') > 0, first.status_code
    cards = first.text.count('data-testid="twin-card"')
    targets = {"twin": (user, "/digital-twin"), "twin_site": (user, "/digital-twin?site_id=__SITE__&status=normal"),
               "account": (user, "/account/password"), "login": (anon, "/login"), "healthz": (anon, "/healthz")}
    site = first.text.split('href="/digital-twin?site_id=')[1].split('"')[0]
    times: dict[str, list[float]] = {k: [] for k in targets}
    for i in range(requests + 20):
        for key, (client, path) in targets.items():
            started = time.perf_counter()
            r = client.get(path.replace("__SITE__", site))
            elapsed = time.perf_counter() - started
            if r.status_code != 200:
                raise SystemExit(f"{path}: {r.status_code}")
            if i >= 20:  # warm-up
                times[key].append(elapsed * 1000)
    user.close()
    anon.close()
    return {"cards": cards, "bytes": len(first.content), **{k: (statistics.median(v), pct(v, 95)) for k, v in times.items()}}


# ---------------------------------------------------------------------------------- 2./3. live


class Subscriber:
    def __init__(self) -> None:
        self.seen: dict[int, float] = {}          # asset id -> first arrival of a changed card (perf_counter)
        self.critical: dict[int, float] = {}
        self.connected = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, cookies: dict[str, str]) -> None:
        headers = {"accept": "text/event-stream", "cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        async with client.stream("GET", "/digital-twin/stream", headers=headers, timeout=None) as r:
            assert r.status_code == 200, r.status_code
            event, data = "message", ""
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.connected.set()
                    continue
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "":
                    if event == "cards" and data:
                        now = time.perf_counter()
                        for card in json.loads(data)["cards"]:
                            self.seen.setdefault(card["id"], now)
                            if card["status"] == "critical":
                                self.critical.setdefault(card["id"], now)
                    event, data = "message", ""


async def bench_live(base: str, dsn: str, data: dict, subscribers: int, rounds: int, colour_rounds: int) -> dict:
    with httpx.Client(base_url=base, follow_redirects=False) as c:
        login(c)
        cookies = dict(c.cookies)
    client = httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=subscribers + 10), timeout=None)
    subs = [Subscriber() for _ in range(subscribers)]
    tasks = [asyncio.create_task(s.run(client, cookies)) for s in subs]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subs)), 60)
    await asyncio.sleep(1.0)
    writer = Writer(dsn)
    tenant, assets, signals = data["tenant"], data["assets"], data["signals"]
    normal = [a for a in assets]
    random.Random(3).shuffle(normal)
    latencies, missing = [], 0
    try:
        for r in range(rounds):
            asset = normal[r]
            for s in subs:
                s.seen.pop(asset, None)
            sample = Sample(tenant, signals[asset]["temperature"], datetime.now(timezone.utc), 70.0 + r / 100, 0)
            await writer.write_batch([sample])
            committed = time.perf_counter()
            deadline = committed + 5
            while time.perf_counter() < deadline and not all(asset in s.seen for s in subs):
                await asyncio.sleep(0.005)
            for s in subs:
                if asset in s.seen:
                    latencies.append((s.seen[asset] - committed) * 1000)
                else:
                    missing += 1
            await asyncio.sleep(0.15)

        colour = []
        if colour_rounds:
            db = Database(dsn, min_size=1, max_size=3, name="bench-twin-job")
            await db.open()
            job = ScoringJob(db)
            await job.run_once()
            loop_task = asyncio.create_task(_run_job(job))
            await asyncio.sleep(1.5)
            try:
                for r in range(colour_rounds):
                    asset = normal[rounds + r]
                    sample = Sample(tenant, signals[asset]["vibration"], datetime.now(timezone.utc), 13.0, 0)
                    await writer.write_batch([sample])
                    committed = time.perf_counter()
                    deadline = committed + 10
                    while time.perf_counter() < deadline and not all(asset in s.critical for s in subs):
                        await asyncio.sleep(0.01)
                    colour += [(s.critical[asset] - committed) * 1000 for s in subs if asset in s.critical]
                    await asyncio.sleep(random.Random(r).uniform(0.1, 0.9))
            finally:
                loop_task.cancel()
                await db.close()
    finally:
        await writer.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
    return {"latencies": latencies, "missing": missing, "colour": colour}


async def _run_job(job: ScoringJob) -> None:
    while True:
        await job.run_once()
        await asyncio.sleep(job.interval_s)


# ---------------------------------------------------------------------------------- main


def report_pages(r: dict, assets: int, requests: int) -> bool:
    ratio50, ratio95 = r["twin"][0] / r["login"][0], r["twin"][1] / r["login"][1]
    print(f"[page] /digital-twin ({r['cards']} cards of {assets:,}, {r['bytes'] / 1024:.0f} KiB): "
          f"p50 {r['twin'][0]:.2f} ms, p95 {r['twin'][1]:.2f} ms over {requests} requests")
    print(f"       filtered by site+status: p50 {r['twin_site'][0]:.2f} ms, p95 {r['twin_site'][1]:.2f} ms")
    print(f"       trivial pages: login p50 {r['login'][0]:.2f} / p95 {r['login'][1]:.2f} ms; /healthz p50 "
          f"{r['healthz'][0]:.2f} / p95 {r['healthz'][1]:.2f} ms; signed-in /account/password p50 "
          f"{r['account'][0]:.2f} / p95 {r['account'][1]:.2f} ms")
    signed50, signed95 = r["twin"][0] / r["account"][0], r["twin"][1] / r["account"][1]
    print(f"       ratio twin / signed-in trivial page: p50 {signed50:.2f}×, p95 {signed95:.2f}× (goal ≤ 5×: "
          f"{'met' if max(signed50, signed95) <= 5 else 'NOT met'})")
    print(f"       for information (no goal): twin / login page p50 {ratio50:.2f}×, p95 {ratio95:.2f}×; "
          f"twin / healthz p50 {r['twin'][0] / r['healthz'][0]:.2f}×")
    return max(signed50, signed95) <= 5


def report_live(r: dict, subscribers: int, rounds: int) -> bool:
    lat = r["latencies"]
    if lat:
        print(f"[live] commit → SSE event at {subscribers} subscribers, {rounds} commits: "
              f"p50 {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms, max {max(lat):.1f} ms; "
              f"missing {r['missing']} of {rounds * subscribers} (goal p95 ≤ 500 ms, 0 missing)")
    if r["colour"]:
        col = r["colour"]
        print(f"[colour] commit of a limit breach → card critical at the subscribers (scoring job every 1 s): "
              f"p50 {statistics.median(col):.0f} ms, p95 {pct(col, 95):.0f} ms, max {max(col):.0f} ms")
    return bool(lat) and pct(lat, 95) <= 500 and r["missing"] == 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--colour-rounds", type=int, default=8)
    p.add_argument("--only", choices=["page", "live"])
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args(argv)
    admin, server = admin_dsn()
    dsn = scratch_db(admin)
    proc = None
    ok = True
    try:
        t0 = time.perf_counter()
        data = populate(dsn)
        n, scoring_s = asyncio.run(score_all(dsn))
        print(f"[data] {len(data['assets']):,} assets in {SITES} sites, {len(data['assets']) * SIGNALS_PER_ASSET:,} mapped "
              f"signals with live values, arranged in {time.perf_counter() - t0:.1f}s; first scoring run: {n:,} assets "
              f"in {scoring_s * 1000:.0f} ms ({scoring_s / max(n, 1) * 1e6:.0f} µs/asset)")
        port = free_port()
        proc = start_server(dsn, port)
        base = f"http://127.0.0.1:{port}"
        if args.only != "live":
            ok &= report_pages(bench_pages(base, args.requests), len(data["assets"]), args.requests)
        if args.only != "page":
            live = asyncio.run(bench_live(base, dsn, data, args.subscribers, args.rounds, args.colour_rounds))
            ok &= report_live(live, args.subscribers, args.rounds)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            drop_db(admin, dsn)
        release(server)
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
