"""Part 4 of scripts/bench_ingest.py: the fault soak (``--only soak``).

Ingest runs for ``--soak-seconds`` (600) at full rate while the things that go wrong in a
plant go wrong, and at the end what the database holds is compared, row for row, with what
the sources themselves recorded; every injected limit breach must have become its event.

Sources (a child process, "the generator"):
  - one OPC-UA simulator (asyncua) with ``--soak-signals`` (1,000) bench signals at
    ``--soak-hz`` (10 Hz) = 10,000 values/s, plus the 45 demo plant tags at 2 Hz, reached by
    ingest through a loopback proxy that can cut connections (optria.demo.netcut);
  - one PI Web API simulator with ``--soak-pi-points`` (200) bench points scanning every 1 s,
    read by a PI integration polling every ``--soak-pi-poll-s`` (15 s).
  The OPC-UA server alone needs most of a core at 10,000 values/s; on one event loop with
  ingest neither keeps up, so the simulators run in their own process. The benchmark talks to
  it with one JSON command per line on its stdin and one JSON answer per line on its stdout
  (fault, clear, cut, restore, opcua_stop/opcua_start, breach_then_stop, stats, record_opcua,
  record_pi, quit). Its own CPU is printed beside ingest's and PostgreSQL's.

Ingest (this process): the ingest Supervisor with every background job of ``optria ingest``
(``ingest.jobs.default_jobs``: Black Box collectors and grouping, scoring, retention, …),
as ``ingest.service.run_ingest`` wires them, against a private embedded PostgreSQL of the
chosen tier (``--tier postgres|timescale``: timescale off / full), which the benchmark stops
and starts. It runs in-process so the writer exception can be injected by patching
``optria.timeseries.writes.record_batches`` here (the commit-log insert of the writer's
transaction, after the samples are in it), without test hooks in product code.

Faults, at 8, 20, 40, 60 and 80 % of the soak (each waits for the previous recovery):
  1. a breach in normal streaming (P-101 vibration);
  2. database restart: ``pg_ctl stop -m fast``; 2 s later a breach starts (P-102) and is over
     before the database is started again, ``--db-down-s`` (15 s, past the 15 s lease TTL)
     after the stop;
  3. OPC-UA source restart: a breach starts (GT-401) and the server is stopped right after it
     wrote the first value above the critical limit (so that value is most likely never
     published live, only kept in the server's history); down 10 s; the fault is cleared 5 s
     after the restart;
  4. network cut between ingest and the OPC-UA server (every proxied connection aborted, new
     ones refused) for 15 s, with a breach (P-150) inside it;
  5. writer exception: ``record_batches`` raises once, on the very batch that carries the
     first critical value of a breach (K-201), so the crashed transaction holds the breach.
  A breach is a bearing fault (optria.demo.plant) ramping the vibration over 2 s past warn 7.1
  and crit 11 mm/s (the limits mapped on the vibration tags), cleared ~8 s later.
  A fault's "recovered after" runs from its end (database started, server started, network
  restored, exception raised) until ingest is back: writer connected with an empty queue and
  spool, the OPC-UA worker streaming and connected with no gap left to read back, and a live
  OPC-UA commit with a lag under 1 s.

The window compared starts after ``--soak-warmup-s`` (20 s) of streaming and ends with the
soak. Then the benchmark waits until every signal has a stored row newer than the window
(so every poll and backfill covering it is in), lets the jobs run a few seconds, stops
ingest, and drains the limit collector and grouping once more (events found only by that
final drain are flagged).

Figures:
  expected   the simulators' own record over the window: ``written_samples`` per OPC-UA node
             (bench and plant), ``recorded_values`` per PI point (converted as the connector
             stores them). An OPC-UA write of the value a node already holds is not a data
             change (DataChangeTrigger StatusValue; asyncua's server does not notify it), so
             such repeats (the constant Running tags, a noisy tag that rounds to the same value)
             are counted apart as optional: neither missing when absent nor extra when present
             (HistoryRead after an outage returns them). Bench values change at every tick.
  stored     rows in signal_samples for the same signals and window
  missing    expected rows not stored;   extra: stored rows the source never wrote
  duplicates rows stored twice for one (signal, time) (the primary key forbids it; counted)
  wrong      stored rows whose value differs from the source's
  For each breach: the first value above 11 in the simulator's record (its source time), the
  critical limit_breach event at exactly that time, how long after the sample it was
  recorded, and the incident grouping made of it.
  Per fault, what happened until the next one, caught from the log and two event-loop
  watchers: leases lost, task crashes, OPC-UA session failures and backfills (with rows),
  the worker concluding a server keeps no history, asyncua's connection supervisor declaring
  a session lost (its server_state probe), stalls of ingest's or the generator's event loop
  longer than 0.5 s, and the worker's HistoryRead calls (observed by wrapping
  ``optria.connectors.opcua.iter_history``, per page: nodes, values, seconds, error; behaviour
  unchanged).
  Missing bench rows are printed as runs of consecutive ticks (seconds into the window).
Exit status non-zero unless missing, extra, duplicates and wrong values are 0 for every source
and every breach has exactly one critical limit_breach event at its source time.

Nothing is left behind: the generator exits when its stdin closes, a watchdog process stops
the embedded PostgreSQL and removes the scratch directory when this process dies however it
dies, and SIGINT/SIGTERM cancel the run through the same cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "src")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
WARN_HIGH, CRIT_HIGH = 7.1, 11.0
PLANT_HZ = 2.0
SECRET = "soak-secret-" + "s" * 32
BREACH_RAMP_S = 2.0
BREACH_HOLD_S = 8.0          # a breach's fault is cleared this long after it started


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


# =========================================================================== the generator (child)


def generator_main(params: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the benchmark decides when we stop
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s generator %(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(_generator(params))


async def _generator(p: dict) -> None:
    from ingest.samples import QUALITY_CODES
    from optria.connectors import pi as pi_connector
    from optria.demo.netcut import CuttableProxy
    from optria.demo.opcua_server import NONE_ONLY, OpcUaSimulator, bench_node_id, bench_value
    from optria.demo.pi_server import PiWebApiSimulator, bench_point_name
    from optria.demo.plant import TAGS, Plant

    plant = Plant()
    keep = int(p["history_s"])
    opc = OpcUaSimulator(plant, port=0, cert_dir=Path(p["pki"]), security=NONE_ONLY, allow_anonymous=True,
                         update_hz=PLANT_HZ, bench_signals=p["signals"], bench_hz=p["hz"], history_period_s=keep,
                         bench_history_s=keep)
    await opc.start()
    proxy = CuttableProxy(opc.port)
    await proxy.start()
    pi = PiWebApiSimulator(Plant(), port=0, scan_period_s=1.0, bench_points=p["pi_points"])
    await pi.start()
    names = [bench_point_name(i) for i in range(p["pi_points"])]
    vib = {t.asset: t.path for t in TAGS if t.role == "vibration"}
    stalls: list[tuple[float, float]] = []          # (wall time, seconds) the event loop was late by > 0.5 s

    async def watch_loop() -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.1)
            late = time.monotonic() - t0 - 0.1
            if late > 0.5:
                stalls.append((time.time(), late))

    lag_task = asyncio.create_task(watch_loop())

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def first_above(path: str, since: float) -> tuple[int, float] | None:
        for t, v in opc.written_samples(path, datetime.fromtimestamp(since, timezone.utc)):
            if v > CRIT_HIGH:
                return to_us(t), v
        return None

    async def handle(cmd: str, a: dict) -> dict:
        if cmd == "fault":
            f = plant.start_fault(a["asset"], "bearing", ramp_s=a.get("ramp_s", BREACH_RAMP_S))
            return {"started": f.started}
        if cmd == "clear":
            plant.clear_faults(a["asset"])
            return {"at": time.time()}
        if cmd == "cut":
            proxy.cut()
            return {"at": time.time()}
        if cmd == "restore":
            proxy.restore()
            return {"at": time.time()}
        if cmd == "opcua_stop":
            await opc.stop()
            return {"at": time.time()}
        if cmd == "opcua_start":
            await opc.start()
            return {"at": time.time()}
        if cmd == "breach_then_stop":
            # stop the server right after it wrote the first value above the critical limit
            f = plant.start_fault(a["asset"], "bearing", ramp_s=a.get("ramp_s", BREACH_RAMP_S))
            deadline = time.monotonic() + 30
            found = None
            while found is None and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
                found = first_above(vib[a["asset"]], f.started)
            stopping = time.time()
            await opc.stop()
            return {"started": f.started, "stopping_at": stopping, "stopped_at": time.time(),
                    "breach_us": found[0] if found else None}
        if cmd == "stats":
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return {"cpu_s": ru.ru_utime + ru.ru_stime, "opcua": opc.stats(), "sessions": opc.session_count(),
                    "pi_requests": len(pi.requests), "stalls": stalls}
        if cmd == "record_opcua":
            start, end = from_us(a["start_us"]), from_us(a["end_us"])
            groups: dict[tuple, list[int]] = {}
            wrong: list[int] = []
            for i in range(p["signals"]):
                samples = opc.written_samples(bench_node_id(i), start, end)
                seqs = tuple(round(v - i / 1_000_000) for _, v in samples)
                if any(bench_value(i, s) != v for s, (_, v) in zip(seqs, samples)):
                    wrong.append(i)      # not a bench value: never expected, reported as such
                groups.setdefault((tuple(to_us(t) for t, _ in samples), seqs), []).append(i)
            before = start - timedelta(seconds=60)    # the value before the window: is the first one a change?
            plant_rows = {t.path: [(to_us(ts), v) for ts, v in opc.written_samples(t.path, before, end)]
                          for t in TAGS}
            return {"bench": [{"times": list(k[0]), "seqs": list(k[1]), "nodes": nodes}
                              for k, nodes in groups.items()],
                    "bench_not_bench_values": wrong, "plant": plant_rows}
        if cmd == "record_pi":
            start, end = from_us(a["start_us"]), from_us(a["end_us"])
            out: dict[str, list] = {}
            for name in names:
                web_id = pi.web_id(name)
                rows = []
                for obj in pi.recorded_values(name, start, end + US):
                    s = pi_connector.sample_from_value(web_id, obj, fallback_time=end)
                    if s.error:
                        continue
                    us = to_us(s.time)
                    if a["start_us"] <= us <= a["end_us"]:
                        rows.append((us, s.value, QUALITY_CODES[s.quality]))
                out[web_id] = rows
            return {"points": out}
        if cmd == "quit":
            return {}
        raise ValueError(f"unknown command {cmd!r}")

    reply({"ready": True, "opcua_url": f"opc.tcp://127.0.0.1:{proxy.port}", "pi_url": pi.base_url,
           "pi_points": [pi.web_id(n) for n in names]})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():       # EOF: the benchmark is gone
            req = json.loads(line)
            try:
                reply({"id": req["id"], "ok": True, **await handle(req["cmd"], req.get("args") or {})})
            except Exception as exc:                  # noqa: BLE001 - answered, never fatal
                reply({"id": req["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            if req["cmd"] == "quit":
                break
    finally:
        lag_task.cancel()
        await proxy.stop()
        await opc.stop()
        await pi.stop()


class Generator:
    """The benchmark's side of the generator process."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict) -> None:
        self.proc = proc
        self.ready = ready
        self._lock = asyncio.Lock()
        self._next = 0

    @classmethod
    async def start(cls, params: dict, stderr) -> Generator:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--generator", json.dumps(params),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, limit=1 << 30, cwd=str(ROOT))
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            ready = json.loads(line) if line else {}
            if not ready.get("ready"):
                raise RuntimeError("the generator did not start (see the log)")
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return cls(proc, ready)

    async def call(self, cmd: str, timeout: float = 60, **args: Any) -> dict:
        async with self._lock:
            self._next += 1
            self.proc.stdin.write((json.dumps({"id": self._next, "cmd": cmd, "args": args}) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the generator exited during {cmd!r}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"generator {cmd!r} failed: {answer.get('error')}")
        return answer

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("quit"), 15)
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# =========================================================================== the watchdog (child)


def watchdog_main(base: str, timescale: str) -> None:
    """Block until the benchmark's pipe closes (it exited, however), then stop its PostgreSQL
    and remove its scratch directory. After a clean run both are gone already."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sys.stdin.buffer.read()
    from optria.embedded_pg import EmbeddedServer

    data_dir = Path(base) / "pg"
    if (data_dir / "pgdata" / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            EmbeddedServer(data_dir=data_dir, port=0, password="", timescale=timescale).stop()
    shutil.rmtree(base, ignore_errors=True)


def start_watchdog(base: Path, timescale: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--watchdog", str(base), timescale],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(ROOT), start_new_session=True)


# =========================================================================== measurements


class PgCpu:
    """CPU seconds of the embedded PostgreSQL: its postmaster, live backends and reaped ones,
    summed across restarts (each postmaster's last reading is kept)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.done = 0.0
        self.pid: int | None = None
        self.last = 0.0

    def sample(self) -> float:
        import psutil

        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid != self.pid:
            self.done, self.last, self.pid = self.done + self.last, 0.0, pid
        if pid is not None:
            try:
                proc = psutil.Process(pid)
                t = proc.cpu_times()
                total = t.user + t.system + t.children_user + t.children_system
                for child in proc.children():
                    with contextlib.suppress(psutil.Error):
                        c = child.cpu_times()
                        total += c.user + c.system
                self.last = max(self.last, total)
            except psutil.Error:
                pass
        return self.done + self.last


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Observer:
    """Per-integration commit figures, from the supervisor's commit hook."""

    live: dict[int, int] = field(default_factory=dict)
    backfilled: dict[int, int] = field(default_factory=dict)
    lags: dict[int, list[float]] = field(default_factory=dict)
    last_live_ok: dict[int, float] = field(default_factory=dict)   # wall time of a live commit with lag < 1 s
    recording: bool = False

    def on_commit(self, integration_id: int, live: int, lags_ms: list[float], backfilled: int) -> None:
        if not self.recording:
            return
        self.live[integration_id] = self.live.get(integration_id, 0) + live
        self.backfilled[integration_id] = self.backfilled.get(integration_id, 0) + backfilled
        if lags_ms:
            self.lags.setdefault(integration_id, []).extend(lags_ms[:: max(1, len(lags_ms) // 20)])
            if min(lags_ms) < 1000:
                self.last_live_ok[integration_id] = time.time()


class EventCatcher(logging.Handler):
    """Supervisor and writer events worth printing, caught from the log as they happen."""

    WANTED = {"ingest.lease_lost": "lease lost", "ingest.task_crashed": "task crashed",
              "writer.batch_set_aside": "batch set aside", "writer.rejected": "rows rejected",
              "writer.spooled_on_stop": "spooled on stop", "writer.lost_on_stop": "LOST on stop",
              "writer.spool_replayed": "spool replayed", "ingest.opcua.session_failed": "OPC-UA session failed",
              "ingest.opcua.backfilled": "OPC-UA backfill done", "ingest.opcua.no_history": "OPC-UA NO HISTORY",
              "ingest.opcua.backfill_incomplete": "OPC-UA backfill incomplete (retrying)",
              "ingest.opcua.history_stuck": "OPC-UA history read STUCK",
              "soak.history_read": "HistoryRead", "ingest.config_changed": "configuration change seen"}

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[float, str, str]] = []
        self.reads: list[tuple[float, dict]] = []      # the OPC-UA worker's HistoryRead calls

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Supervisor detected connection issue"):
            self.seen.append((record.created, "asyncua declared the connection lost", message.split(": ", 1)[-1][:80]))
            return
        if message == "soak.history_read":
            self.reads.append((record.created, {k: getattr(record, k, None) for k in ("nodes", "seconds", "rows", "error")}))
            return
        name = self.WANTED.get(message)
        if name:
            detail = ", ".join(f"{k} {getattr(record, k)}" for k in ("integration_id", "task", "nodes", "start_s", "end_s",
                                                                    "seconds", "rows", "count", "reason", "error")
                               if getattr(record, k, None) is not None)
            self.seen.append((record.created, name, detail[:120]))

    def summary(self, start: float, end: float, t0: float) -> list[str]:
        """Events in [start, end): one entry per kind, with its count, first time and first detail."""
        kinds: dict[str, list[tuple[float, str]]] = {}
        for when, what, detail in self.seen:
            if start <= when < end:
                kinds.setdefault(what, []).append((when, detail))
        out = []
        for what, items in kinds.items():
            first, detail = items[0]
            times = f"at {first - t0:.1f} s" if len(items) == 1 else f"×{len(items)} from {first - t0:.1f} s"
            out.append(f"{what} {times}" + (f" ({detail})" if detail else ""))
        reads = [r for when, r in self.reads if start <= when < end]
        if reads:
            failed = [r for r in reads if r["error"]]
            out.append(f"HistoryRead ×{len(reads)} ({sum(r['rows'] or 0 for r in reads):,} values, longest "
                       f"{max(r['seconds'] for r in reads):.1f} s for {max(reads, key=lambda r: r['seconds'])['nodes']} "
                       f"nodes" + (f"; {len(failed)} failed, first: {failed[0]['error']}" if failed else "") + ")")
        return out


@dataclass
class Fault:
    name: str
    started: float                      # wall clock
    ended: float | None = None
    recovered: float | None = None
    notes: list[str] = field(default_factory=list)
    backfill_before: int = 0


@dataclass
class Breach:
    asset: str
    during: str
    started: float
    cleared: float | None = None
    signal_id: int = 0
    path: str = ""


@dataclass
class Arranged:
    tenant_id: uuid.UUID
    opcua_id: int
    pi_id: int
    bench_ids: dict[int, int]           # bench index → signal id
    plant_ids: dict[str, int]           # tag path → signal id
    pi_ids: dict[str, int]              # web id → signal id
    asset_ids: dict[str, int]           # plant asset code → asset id


def arrange(dsn: str, settings, ready: dict, signals: int, pi_poll_s: float) -> Arranged:
    import psycopg
    from psycopg.types.json import Jsonb

    from optria.demo.opcua_server import bench_node_id
    from optria.demo.plant import ASSETS, TAGS
    from optria.secretbox import SecretBox

    with psycopg.connect(dsn, autocommit=True) as conn:
        tenant = conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, 'Soak') RETURNING id",
                              [f"soak-{uuid.uuid4().hex[:6]}"]).fetchone()[0]
        site = conn.execute("INSERT INTO sites (tenant_id, code, name) VALUES (%s, 'SOAK', 'Soak') RETURNING id",
                            [tenant]).fetchone()[0]
        unit = conn.execute("INSERT INTO units (tenant_id, site_id, code, name) VALUES (%s, %s, 'U', 'Unit') "
                            "RETURNING id", [tenant, site]).fetchone()[0]
        assets = {}
        for code in [a.code for a in ASSETS] + ["BENCH"]:
            assets[code] = conn.execute(
                "INSERT INTO assets (tenant_id, site_id, unit_id, code, name) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                [tenant, site, unit, code, code]).fetchone()[0]
        sealed = SecretBox(settings.session_key()).seal_dict({}, context=f"{tenant}:integration")

        def integration(kind: str, config: dict) -> int:
            return conn.execute("INSERT INTO integrations (tenant_id, kind, name, config, secrets) "
                                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                                [tenant, kind, f"soak-{kind}", Jsonb(config), Jsonb(sealed)]).fetchone()[0]

        def add_signals(integration_id: int, rows: list[tuple[str, str, str, float | None, float | None]]) -> dict:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO signals (tenant_id, integration_id, external_id, name) VALUES (%s, %s, %s, %s)",
                                [(tenant, integration_id, ext, ext[-60:]) for ext, *_ in rows])
            ids = dict(conn.execute("SELECT external_id, id FROM signals WHERE integration_id = %s",
                                    [integration_id]).fetchall())
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role, "
                                "warn_high, crit_high) VALUES (%s, %s, %s, %s, %s, %s)",
                                [(tenant, ids[ext], assets[asset], role, warn, crit)
                                 for ext, asset, role, warn, crit in rows])
            return ids

        opcua_id = integration("opcua", {"endpoint_url": ready["opcua_url"], "publishing_interval_ms": 100,
                                         "sampling_interval_ms": 0, "session_timeout_s": 10})
        bench_rows = [(f"ns=2;s={bench_node_id(i)}", "BENCH", "other", None, None) for i in range(signals)]
        plant_rows = [(f"ns=2;s={t.path}", t.asset, t.role, *((WARN_HIGH, CRIT_HIGH) if t.role == "vibration"
                                                             else (None, None))) for t in TAGS]
        ids = add_signals(opcua_id, bench_rows + plant_rows)
        pi_id = integration("pi", {"base_url": ready["pi_url"], "poll_interval_s": pi_poll_s})
        pi_ids = add_signals(pi_id, [(w, "BENCH", "other", None, None) for w in ready["pi_points"]])
    return Arranged(tenant, opcua_id, pi_id, {i: ids[f"ns=2;s={bench_node_id(i)}"] for i in range(signals)},
                    {t.path: ids[f"ns=2;s={t.path}"] for t in TAGS}, pi_ids,
                    {a.code: assets[a.code] for a in ASSETS})


# =========================================================================== comparison


@dataclass
class Tally:
    signals: int = 0
    expected: int = 0
    stored: int = 0
    missing: int = 0
    extra: int = 0
    duplicates: int = 0
    wrong: int = 0
    worst: list[str] = field(default_factory=list)     # signals with a difference, first few
    repeats: int = 0             # unchanged values written (optional: a subscription does not report them)
    repeats_stored: int = 0
    gone: list[tuple[int, int]] = field(default_factory=list)   # (time µs, signals missing it), bench only

    def add(self, other: Tally) -> None:
        for k in ("signals", "expected", "stored", "missing", "extra", "duplicates", "wrong", "repeats",
                  "repeats_stored"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.worst.extend(other.worst)
        self.gone.extend(other.gone)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.duplicates or self.wrong)


async def compare_bench(conn, arranged: Arranged, record: dict, start: datetime, end: datetime) -> Tally:
    """Bench nodes share their tick rows: per group of identical records, the expected (time, seq)
    rows go to a temporary table and one join counts, per signal, stored rows, rows on the
    expected grid, distinct times and wrong values (value = seq + index / 1e6)."""
    tally = Tally()
    await conn.execute("CREATE TEMP TABLE soak_exp (t timestamptz PRIMARY KEY, seq float8) ON COMMIT DROP")
    await conn.execute("CREATE TEMP TABLE soak_sig (signal_id int8 PRIMARY KEY, idx int) ON COMMIT DROP")
    for group in record["bench"]:
        await conn.execute("TRUNCATE soak_exp, soak_sig")
        async with conn.cursor().copy("COPY soak_exp (t, seq) FROM STDIN") as cp:
            for us, seq in zip(group["times"], group["seqs"]):
                await cp.write_row((from_us(us), float(seq)))
        async with conn.cursor().copy("COPY soak_sig (signal_id, idx) FROM STDIN") as cp:
            for i in group["nodes"]:
                await cp.write_row((arranged.bench_ids[i], i))
        await conn.execute("ANALYZE soak_exp")
        await conn.execute("ANALYZE soak_sig")
        rows = await (await conn.execute(
            """SELECT g.signal_id, g.idx, count(s.time) AS stored, count(DISTINCT s.time) AS distinct_times,
                      count(e.t) AS on_grid,
                      count(*) FILTER (WHERE e.t IS NOT NULL AND s.value IS DISTINCT FROM
                                       e.seq + g.idx::float8 / 1000000.0::float8) AS wrong
               FROM soak_sig g
               LEFT JOIN signal_samples s ON s.signal_id = g.signal_id AND s.tenant_id = %(tenant)s
                                          AND s.time BETWEEN %(start)s AND %(end)s
               LEFT JOIN soak_exp e ON e.t = s.time
               GROUP BY g.signal_id, g.idx""",
            {"tenant": arranged.tenant_id, "start": start, "end": end})).fetchall()
        expected = len(group["times"])
        if any(on_grid < expected for _, _, _, _, on_grid, _ in rows):
            gone = await (await conn.execute(
                """SELECT e.t, count(*) FROM soak_exp e CROSS JOIN soak_sig g
                   WHERE NOT EXISTS (SELECT 1 FROM signal_samples s WHERE s.tenant_id = %(tenant)s
                                     AND s.signal_id = g.signal_id AND s.time = e.t)
                   GROUP BY e.t ORDER BY e.t""", {"tenant": arranged.tenant_id})).fetchall()
            tally.gone.extend((to_us(t), n) for t, n in gone)
        for signal_id, idx, stored, distinct, on_grid, wrong in rows:
            t = Tally(1, expected, stored, expected - on_grid, stored - on_grid, stored - distinct, wrong)
            if not t.clean:
                t.worst.append(f"Bench.S{idx:05d} (signal {signal_id}): expected {expected}, stored {stored}, "
                               f"missing {t.missing}, extra {t.extra}, duplicates {t.duplicates}, wrong {wrong}")
            tally.add(t)
    wrong_nodes = record.get("bench_not_bench_values") or []
    if wrong_nodes:
        tally.worst.append(f"the simulator's record holds non-bench values for nodes {wrong_nodes[:10]}")
    return tally


def missing_runs(gone: list[tuple[int, int]], t0: float, tick_s: float) -> list[str]:
    """Missing (time, signals) rows grouped into runs of consecutive ticks, as lines to print."""
    runs: list[list] = []
    for us, n in sorted(gone):
        if runs and us - runs[-1][1] <= tick_s * 1.5e6:
            runs[-1][1], runs[-1][2], runs[-1][3] = us, runs[-1][2] + 1, runs[-1][3] + n
        else:
            runs.append([us, us, 1, n])
    shown = sorted(sorted(runs, key=lambda r: -r[3])[:12])       # the 12 largest, in time order
    lines = [f"missing rows from {a / 1e6 - t0:.1f} s to {b / 1e6 - t0:.1f} s ({from_us(a).time()} … "
             f"{from_us(b).time()} UTC): {ticks} ticks, {rows:,} rows ({rows / ticks:.0f} signals per tick)"
             for a, b, ticks, rows in shown]
    if len(runs) > len(shown):
        rest = [r for r in runs if r not in shown]
        lines.append(f"… and {len(rest)} more runs of missing rows ({sum(r[3] for r in rest):,} rows) between "
                     f"{rest[0][0] / 1e6 - t0:.1f} s and {rest[-1][1] / 1e6 - t0:.1f} s")
    return lines


def split_changes(rows: list[tuple], start_us: int) -> tuple[list[tuple], list[tuple]]:
    """An OPC-UA node's record (oldest first, reaching back before the window) → (changes, repeats)
    inside the window. A write of the value the node already holds is not a data change: a
    subscription (DataChangeTrigger StatusValue, asyncua's server) does not report it."""
    changes, repeats = [], []
    prev = None
    for row in rows:
        if row[0] >= start_us:
            (repeats if prev is not None and row[1] == prev else changes).append(row)
        prev = row[1]
    return changes, repeats


async def compare_rows(conn, tenant_id, expected: dict[int, list[tuple]], start: datetime, end: datetime,
                       label: dict[int, str], optional: dict[int, list[tuple]] | None = None) -> Tally:
    """Exact sets of (time, value[, quality]) per signal; rows in ``optional`` (unchanged repeats)
    may be stored or not, and are counted apart."""
    tally = Tally()
    optional = optional or {}
    ids = list(expected)
    rows = await (await conn.execute(
        "SELECT signal_id, time, value, quality FROM signal_samples WHERE tenant_id = %s AND signal_id = ANY(%s) "
        "AND time BETWEEN %s AND %s", [tenant_id, ids, start, end])).fetchall()
    stored: dict[int, list[tuple]] = {i: [] for i in ids}
    for signal_id, t, value, quality in rows:
        stored[signal_id].append((to_us(t), value, quality))
    for signal_id, exp in expected.items():
        got = stored[signal_id]
        opt = optional.get(signal_id, [])
        with_q = bool(exp) and len(exp[0]) == 3
        got_keys = [(us, v, q) if with_q else (us, v) for us, v, q in got]
        exp_times = {r[0] for r in exp}
        opt_times = {r[0] for r in opt}
        got_times = [r[0] for r in got]
        distinct = set(got_times)
        known = set(map(tuple, exp)) | set(map(tuple, opt))
        written = exp_times | opt_times
        wrong = sum(1 for k in set(got_keys) if k[0] in written and k not in known)
        t = Tally(1, len(exp), len(got), len(exp_times - distinct), len(distinct - exp_times - opt_times),
                  len(got_times) - len(distinct), wrong)
        t.repeats, t.repeats_stored = len(opt_times), len(opt_times & distinct)
        if not t.clean:
            gone = sorted(exp_times - distinct)
            t.worst.append(f"{label[signal_id]} (signal {signal_id}): expected {len(exp)}, stored {len(got)}, "
                           f"missing {t.missing}" + (f" [{from_us(gone[0]).time()} … {from_us(gone[-1]).time()}]"
                                                     if gone else "") +
                           f", extra {t.extra}, duplicates {t.duplicates}, wrong {wrong}")
        tally.add(t)
    return tally


# =========================================================================== the soak


@dataclass
class Options:
    tier: str = "postgres"
    seconds: float = 600.0
    signals: int = 1000
    hz: float = 10.0
    pi_points: int = 200
    pi_poll_s: float = 15.0
    warmup_s: float = 20.0
    db_down_s: float = 15.0
    settle_max_s: float = 240.0
    log_path: Path | None = None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def run_soak_async(opts: Options) -> bool:
    import psycopg

    from ingest.jobs import default_jobs, run_job_forever
    from ingest.supervision import supervise
    from ingest.supervisor import Supervisor
    from optria.blackbox.collectors import LimitCollector
    from optria.blackbox.grouping import Grouper
    from optria.blackbox.jobs import grouping_window
    from optria.config import Settings
    from optria.db import Database
    from optria.demo.plant import TAGS
    from optria.embedded_pg import ensure_server
    from optria.logs import JsonFormatter
    from optria.timeseries import writes
    from scripts.bench_ingest import scratch_db

    timescale = {"postgres": "off", "timescale": "full"}[opts.tier]
    base = Path(tempfile.mkdtemp(prefix="optria-soak-"))
    base.chmod(0o755)
    watchdog = start_watchdog(base, timescale)
    log_path = opts.log_path or Path(tempfile.gettempdir()) / f"optria-soak-{opts.tier}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_file = open(log_path, "a")  # noqa: SIM115 - closed in finally
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(JsonFormatter())
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    catcher = EventCatcher()
    root_logger.addHandler(catcher)
    root_logger.setLevel(logging.WARNING)
    handler.setLevel(logging.INFO)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    # why a session ends: asyncua's connection supervisor (its server_state probe), and backfills
    logging.getLogger("asyncua.client.client").setLevel(logging.INFO)
    logging.getLogger("optria.ingest.opcua").setLevel(logging.INFO)
    logging.getLogger("optria.ingest.supervisor").setLevel(logging.INFO)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, main_task.cancel)

    gen: Generator | None = None
    server = None
    sup: Supervisor | None = None
    sup_task: asyncio.Task | None = None
    monitor_task: asyncio.Task | None = None
    real_record_batches = writes.record_batches
    restore: list = []
    ok = False
    try:
        # ------------------------------------------------------------------ setup
        server = await asyncio.to_thread(ensure_server, base / "pg", fast_unsafe=False, timescale=timescale)
        dsn = await asyncio.to_thread(scratch_db, server.dsn("postgres"))
        with psycopg.connect(dsn) as conn:
            tier = conn.execute("SELECT tier, timescaledb_version FROM storage_capabilities").fetchone()
        pgdata = server.pgdata
        history_s = int(opts.warmup_s + opts.seconds + opts.settle_max_s + 900)
        gen = await Generator.start({"signals": opts.signals, "hz": opts.hz, "pi_points": opts.pi_points,
                                     "history_s": history_s, "pki": str(base / "pki")}, log_file)
        settings = Settings(SESSION_SECRET=SECRET, APP_ENV="test", OPTRIA_DATA_DIR=str(base / "data"))
        arranged = await asyncio.to_thread(arrange, dsn, settings, gen.ready, opts.signals, opts.pi_poll_s)
        vib_signal = {t.asset: arranged.plant_ids[t.path] for t in TAGS if t.role == "vibration"}
        vib_path = {t.asset: t.path for t in TAGS if t.role == "vibration"}
        # signals whose value changes at every sample (a constant tag is reported only when it changes)
        moving_ids = [*arranged.bench_ids.values(), *arranged.pi_ids.values(),
                      *(arranged.plant_ids[t.path] for t in TAGS if t.role != "running")]

        from ingest.workers import opcua as opcua_worker
        real_iter_history = opcua_worker.opcua.iter_history
        history_log = logging.getLogger("soak.history_read")

        async def observed_iter_history(client, node_ids, start, end, **kwargs):
            """One log record per HistoryRead call (a page): nodes, values, seconds, error."""
            t0 = time.monotonic()
            base = {"start_s": round(start.timestamp() - t_ref[0], 1), "end_s": round(end.timestamp() - t_ref[0], 1)}
            try:
                async for page in real_iter_history(client, node_ids, start, end, **kwargs):
                    history_log.warning("soak.history_read", extra={
                        **base, "nodes": len(page), "seconds": round(time.monotonic() - t0, 2),
                        "rows": sum(len(p.samples) for p in page),
                        "error": next((p.error for p in page if p.error), None)})
                    yield page
                    t0 = time.monotonic()
            except BaseException as exc:
                history_log.warning("soak.history_read", extra={
                    **base, "nodes": len(node_ids), "seconds": round(time.monotonic() - t0, 2),
                    "error": f"{type(exc).__name__}: {exc}"[:160]})
                raise

        t_ref = [time.time()]
        opcua_worker.opcua.iter_history = observed_iter_history
        restore.append(lambda: setattr(opcua_worker.opcua, "iter_history", real_iter_history))
        sup = Supervisor(settings, dsn)
        observer = Observer()
        sup.on_integration_commit = observer.on_commit
        await sup.db.open()
        job_tasks = [asyncio.create_task(supervise(f"job:{job.name}", lambda job=job: run_job_forever(job),
                                                   restart_on_return=True), name=f"job-{job.name}")
                     for job in default_jobs(sup.db, settings)]
        sup.dependents = job_tasks
        sup_task = asyncio.create_task(sup.run(), name="soak-supervisor")

        def health(integration_id: int):
            run = sup.running.get(integration_id)
            return run.health if run else None

        deadline = time.monotonic() + 180
        while True:
            h_opc, h_pi = health(arranged.opcua_id), health(arranged.pi_id)
            if (h_opc and h_pi and h_opc.state == "streaming" and h_pi.state == "streaming"
                    and h_opc.samples_total > 0 and h_pi.samples_total + h_pi.backfill_total > 0):
                break
            if time.monotonic() > deadline or sup_task.done():
                raise RuntimeError("ingest did not start streaming from both sources within 180 s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(opts.warmup_s)

        # ------------------------------------------------------------------ the window
        faults: list[Fault] = []
        breaches: list[Breach] = []
        pg_cpu = PgCpu(pgdata)
        injected: dict[str, Any] = {"armed": None, "raised": None}

        async def faulty_record_batches(conn, rows, *args, **kwargs):
            armed = injected["armed"]
            if armed is not None:
                rows = list(rows)
                if any(s.signal_id == armed and s.value is not None and s.value > CRIT_HIGH for s in rows):
                    injected["armed"] = None
                    injected["raised"] = time.time()
                    raise RuntimeError("injected writer fault (soak benchmark)")
            return await real_record_batches(conn, rows, *args, **kwargs)

        def recovered_now(fault: Fault) -> bool:
            run = sup.running.get(arranged.opcua_id)
            if run is None or fault.ended is None:
                return False
            w = sup.writer
            return (w.stats.db_up and w.depth < opts.signals * opts.hz and sup.spool.pending_bytes() == 0
                    and run.health.connected and run.health.state == "streaming"
                    and not getattr(run.worker, "_gap_from", None)
                    and observer.last_live_ok.get(arranged.opcua_id, 0) > fault.ended)

        watched: dict[int, Any] = {}       # integration id → the Running seen last (a replaced worker is noted)
        ended_seen: set[int] = set()

        def watch_workers() -> None:
            for iid, name in ((arranged.opcua_id, "OPC-UA"), (arranged.pi_id, "PI")):
                run = sup.running.get(iid)
                old = watched.get(iid)
                if old is not None and run is not old:
                    catcher.seen.append((time.time(), f"{name} worker replaced by the supervisor (its gap memory "
                                                      f"starts anew from the newest stored row)", ""))
                if run is None:
                    continue
                watched[iid] = run
                if run.task.done() and id(run.task) not in ended_seen:
                    ended_seen.add(id(run.task))
                    how = ("cancelled (a CancelledError escaped the worker)" if run.task.cancelled() else
                           f"raised {run.task.exception()!r}"[:160] if run.task.exception() else "returned")
                    catcher.seen.append((time.time(), f"{name} worker task ended by itself", how))

        async def monitor() -> None:
            while True:
                watch_workers()
                pg_cpu.sample()
                now = time.time()
                for f in faults:
                    if f.ended is not None and f.recovered is None and recovered_now(f):
                        f.recovered = now
                t0 = time.monotonic()
                await asyncio.sleep(0.2)
                late = time.monotonic() - t0 - 0.2
                if late > 0.5:
                    catcher.seen.append((time.time(), "ingest event loop stalled", f"{late:.1f} s"))

        def fault_started(name: str) -> Fault:
            f = Fault(name, time.time(), backfill_before=observer.backfilled.get(arranged.opcua_id, 0))
            faults.append(f)
            return f

        async def breach(asset: str, during: str) -> Breach:
            r = await gen.call("fault", asset=asset, ramp_s=BREACH_RAMP_S)
            b = Breach(asset, during, r["started"], signal_id=vib_signal[asset], path=vib_path[asset])
            breaches.append(b)
            return b

        async def clear(b: Breach) -> None:
            b.cleared = (await gen.call("clear", asset=b.asset))["at"]

        async def sleep_until(wall: float) -> None:
            await asyncio.sleep(max(0.0, wall - time.time()))

        async def step_streaming() -> None:
            b = await breach("P-101", "normal streaming")
            await sleep_until(b.started + BREACH_HOLD_S)
            await clear(b)

        async def step_database() -> None:
            f = fault_started("database restart")
            await asyncio.to_thread(server.stop)
            f.notes.append(f"stopped in {time.time() - f.started:.1f} s")
            await asyncio.sleep(2)
            b = await breach("P-102", "database down")
            await sleep_until(b.started + BREACH_HOLD_S)
            await clear(b)
            await sleep_until(f.started + opts.db_down_s)
            t0 = time.time()
            await asyncio.to_thread(ensure_server, base / "pg", fast_unsafe=False, timescale=timescale)
            f.ended = time.time()
            f.notes.append(f"started in {f.ended - t0:.1f} s")

        async def step_source() -> None:
            r = await gen.call("breach_then_stop", asset="GT-401", ramp_s=BREACH_RAMP_S)
            b = Breach("GT-401", "OPC-UA server stop", r["started"],
                       signal_id=vib_signal["GT-401"], path=vib_path["GT-401"])
            breaches.append(b)
            f = fault_started("OPC-UA server restart")
            f.started = r["stopping_at"]
            f.notes.append(f"stopped in {r['stopped_at'] - r['stopping_at']:.1f} s")
            await sleep_until(f.started + 10)
            await gen.call("opcua_start")
            f.ended = time.time()
            await sleep_until(f.ended + 5)
            await clear(b)

        async def step_network() -> None:
            f = fault_started("network cut (OPC-UA)")
            await gen.call("cut")
            await asyncio.sleep(2)
            b = await breach("P-150", "network cut")
            await sleep_until(b.started + BREACH_HOLD_S)
            await clear(b)
            await sleep_until(f.started + 15)
            f.ended = (await gen.call("restore"))["at"]

        async def step_writer() -> None:
            injected["armed"] = vib_signal["K-201"]
            writes.record_batches = faulty_record_batches
            b = await breach("K-201", "writer exception")
            deadline = time.monotonic() + 30
            while injected["raised"] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            f = fault_started("writer exception")
            if injected["raised"] is None:
                f.notes.append("NOT RAISED: no batch carried the breach within 30 s")
                injected["armed"] = None
            else:
                f.started = f.ended = injected["raised"]
            await sleep_until(b.started + BREACH_HOLD_S)
            await clear(b)

        steps = [(0.08, step_streaming), (0.20, step_database), (0.40, step_source), (0.60, step_network),
                 (0.80, step_writer)]
        cpu0 = (own_cpu(), pg_cpu.sample(), (await gen.call("stats"))["cpu_s"])
        gstats0 = (await gen.call("stats"))["opcua"]
        observer.recording = True
        window_start = datetime.now(timezone.utc)
        t_start = window_start.timestamp()
        t_ref[0] = t_start
        monitor_task = asyncio.create_task(monitor(), name="soak-monitor")
        for frac, step in steps:
            await sleep_until(t_start + frac * opts.seconds)
            # keep faults apart: the previous one must have recovered (or had 30 s more to)
            wait_until = time.monotonic() + 30
            while faults and faults[-1].recovered is None and time.monotonic() < wait_until:
                await asyncio.sleep(0.2)
            await step()
        await sleep_until(t_start + opts.seconds)
        window_end = datetime.now(timezone.utc)
        cpu1 = (own_cpu(), pg_cpu.sample(), (await gen.call("stats"))["cpu_s"])
        gstats = await gen.call("stats")
        soak_s = window_end.timestamp() - t_start

        # ------------------------------------------------------------------ settle
        def newer_than(moment: datetime) -> int:
            with psycopg.connect(dsn) as conn:
                return conn.execute("SELECT count(DISTINCT signal_id) FROM signal_samples WHERE tenant_id = %s AND "
                                    "signal_id = ANY(%s) AND time > %s",
                                    [arranged.tenant_id, moving_ids, moment]).fetchone()[0]

        settle0 = time.monotonic()
        settled = False
        quiet_since = None
        while time.monotonic() - settle0 < opts.settle_max_s:
            w = sup.writer
            run = sup.running.get(arranged.opcua_id)
            calm = (w.stats.db_up and w.depth == 0 and sup.spool.pending_bytes() == 0 and run is not None
                    and run.health.connected and run.health.state == "streaming"
                    and not getattr(run.worker, "_gap_from", None))
            quiet_since = (quiet_since or time.monotonic()) if calm else None
            if quiet_since is not None and time.monotonic() - quiet_since >= 5:
                if await asyncio.to_thread(newer_than, window_end) == len(moving_ids):
                    settled = True
                    break
            await asyncio.sleep(1)
        settle_s = time.monotonic() - settle0
        await asyncio.sleep(5)                        # the collectors follow the last commits
        observer.recording = False
        for f in faults:                              # a recovery the window's end cut short
            if f.recovered is None and recovered_now(f):
                f.recovered = time.time()
        monitor_task.cancel()
        await asyncio.gather(monitor_task, return_exceptions=True)
        writes.record_batches = real_record_batches
        wstats = sup.writer.stats
        backfilled_total = observer.backfilled.get(arranged.opcua_id, 0)
        opc_health = health(arranged.opcua_id)
        pi_health = health(arranged.pi_id)
        restarts = {"opcua": opc_health.restarts if opc_health else None,
                    "pi": pi_health.restarts if pi_health else None}

        def crit_events() -> dict[int, list[tuple]]:
            with psycopg.connect(dsn) as conn:
                rows = conn.execute(
                    "SELECT signal_id, event_time, severity, ingest_time, id FROM industrial_events "
                    "WHERE tenant_id = %s AND source_system = 'limits' AND source_type = 'limit_breach' "
                    "AND payload->>'level' = 'crit_high' ORDER BY event_time", [arranged.tenant_id]).fetchall()
            out: dict[int, list[tuple]] = {}
            for r in rows:
                out.setdefault(r[0], []).append(tuple(r[1:]))
            return out

        before_drain = await asyncio.to_thread(crit_events)
        sup.stop()
        await asyncio.wait_for(sup_task, 90)
        sup_task = None
        db = Database(dsn, min_size=1, max_size=2, name="optria-soak-drain")
        await db.open()
        try:
            collector = LimitCollector(db)
            for _ in range(50):
                if not await collector.run_once():
                    break
            grouper = Grouper(db, grouping_window(settings))
            for _ in range(50):
                if not await grouper.run_once():
                    break
        finally:
            await db.close()
        events = crit_events()

        # ------------------------------------------------------------------ compare
        rec_opc = await gen.call("record_opcua", timeout=900, start_us=to_us(window_start), end_us=to_us(window_end))
        rec_pi = await gen.call("record_pi", timeout=300, start_us=to_us(window_start), end_us=to_us(window_end))
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            async with conn.transaction():
                bench = await compare_bench(conn, arranged, rec_opc, window_start, window_end)
            plant_exp, plant_opt = {}, {}
            for path, rows in rec_opc["plant"].items():
                changes, repeats = split_changes([tuple(r) for r in rows], to_us(window_start))
                plant_exp[arranged.plant_ids[path]], plant_opt[arranged.plant_ids[path]] = changes, repeats
            plant = await compare_rows(conn, arranged.tenant_id, plant_exp, window_start, window_end,
                                       {arranged.plant_ids[p]: p for p in rec_opc["plant"]}, plant_opt)
            pi_exp = {arranged.pi_ids[w]: [tuple(r) for r in rows] for w, rows in rec_pi["points"].items()}
            pi_tally = await compare_rows(conn, arranged.tenant_id, pi_exp, window_start, window_end,
                                          {arranged.pi_ids[w]: f"PI {w}" for w in rec_pi["points"]})
            breach_rows = {}
            for b in breaches:
                first = next(((us, v) for us, v in rec_opc["plant"][b.path]
                              if us >= int(b.started * 1e6) - 1_000_000 and v > CRIT_HIGH), None)
                stored = None
                if first:
                    stored = await (await conn.execute(
                        "SELECT ingest_time FROM signal_samples WHERE tenant_id = %s AND signal_id = %s AND time = %s",
                        [arranged.tenant_id, b.signal_id, from_us(first[0])])).fetchone()
                incident = await (await conn.execute(
                    "SELECT severity, incident_type, started_at FROM incidents WHERE tenant_id = %s AND asset_id = %s "
                    "ORDER BY started_at", [arranged.tenant_id, arranged.asset_ids[b.asset]])).fetchall()
                breach_rows[b.asset] = (first, stored[0] if stored else None, incident)
        opcua = Tally()
        opcua.add(bench)
        opcua.add(plant)

        # ------------------------------------------------------------------ report
        def at(wall: float | None) -> str:
            return "-" if wall is None else f"{wall - t_start:7.1f}"

        ok = True
        print(f"[soak {opts.tier}] tier {tier[0]}{' (TimescaleDB ' + tier[1] + ')' if tier[1] else ''}; "
              f"{soak_s:.0f} s window after {opts.warmup_s:.0f} s of warm-up; OPC-UA {opts.signals:,} × "
              f"{opts.hz:g} Hz + {len(TAGS)} plant tags × {PLANT_HZ:g} Hz through a cuttable proxy; PI "
              f"{opts.pi_points} points × 1 s, poll {opts.pi_poll_s:g} s; settled {settle_s:.0f} s after the window"
              + ("" if settled else " (NOT settled: the OPC-UA worker never streamed 5 s with no gap left and every "
                                     "signal stored past the window)"), flush=True)
        print(f"  {'source':<8}{'signals':>9}{'expected':>12}{'stored':>12}{'missing':>9}{'extra':>7}"
              f"{'duplicates':>12}{'wrong':>7}")
        for name, t in (("opcua", opcua), ("pi", pi_tally)):
            print(f"  {name:<8}{t.signals:>9,}{t.expected:>12,}{t.stored:>12,}{t.missing:>9,}{t.extra:>7,}"
                  f"{t.duplicates:>12,}{t.wrong:>7,}")
            for line in missing_runs(t.gone, t_start, 1 / opts.hz):
                print(f"      {line}")
            for line in t.worst[:8]:
                print(f"      {line}")
            if len(t.worst) > 8:
                print(f"      … {len(t.worst) - 8} more signals differ")
            if t.repeats:
                print(f"      (+ {t.repeats:,} written values that repeat the node's previous value: not data changes, "
                      f"so a subscription does not report them; {t.repeats_stored:,} of them are stored, read back "
                      f"by HistoryRead after outages; neither missing nor extra)")
            ok &= t.clean and t.expected > 0
        for when, late in gstats["stalls"]:
            catcher.seen.append((when, "generator event loop stalled", f"{late:.1f} s"))
        catcher.seen.sort()
        print(f"  {'fault':<24}{'at s':>8}{'end s':>8}{'recovered after':>17}  notes")
        for f in faults:
            rec = "NOT recovered" if f.recovered is None or f.ended is None else f"{f.recovered - f.ended:.1f} s"
            idx = faults.index(f)
            upto = faults[idx + 1].backfill_before if idx + 1 < len(faults) else backfilled_total
            notes = [*f.notes, f"OPC-UA rows backfilled until the next fault {upto - f.backfill_before:,}"]
            nxt = faults[idx + 1].started if idx + 1 < len(faults) else math.inf
            caught = catcher.summary(f.started, nxt, t_start)
            print(f"  {f.name:<24}{at(f.started):>8}{at(f.ended):>8}{rec:>17}  {'; '.join(notes + caught)}")
        first_fault = faults[0].started if faults else math.inf
        early = catcher.summary(t_start, first_fault, t_start)
        if early:
            print(f"  before the first fault: {'; '.join(early)}")
        print(f"  {'breach':<8}{'during':<20}{'source s':>9}  critical limit_breach event at the source time")
        for b in breaches:
            first, stored_at, incident = breach_rows[b.asset]
            evs = events.get(b.signal_id, [])
            if first is None:
                print(f"  {b.asset:<8}{b.during:<20}{'-':>9}  NO value above {CRIT_HIGH:g} in the simulator's record")
                ok = False
                continue
            source = from_us(first[0])
            match = [e for e in evs if e[0] == source]
            others = [e for e in evs if e[0] != source]
            good = len(match) == 1 and not others
            ok &= good
            desc = ("MISSING" if not match else
                    f"{match[0][1]}, recorded {(match[0][2] - source).total_seconds():.1f} s after the sample"
                    + ("" if any(e[3] == match[0][3] for e in before_drain.get(b.signal_id, []))
                       else " (only by the final drain)"))
            if len(match) > 1 or others:
                desc += f"; {len(evs)} crit events on the signal ({', '.join(str(e[0].time()) for e in evs)})"
            sample = (f"; sample {first[1]:.2f} stored {(stored_at - source).total_seconds():.1f} s after its time"
                      if stored_at else "; the sample is NOT stored")
            inc = (f"; incident {incident[0][0]}/{incident[0][1]}" if incident else "; no incident")
            print(f"  {b.asset:<8}{b.during:<20}{at(first[0] / 1e6):>9}  {desc}{sample}{inc}")
        d_own, d_pg, d_gen = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
        rows_s = (opcua.expected + pi_tally.expected) / soak_s
        g = gstats["opcua"]["groups"]
        g0 = gstats0["groups"]
        written = gstats["opcua"]["values_written"] - gstats0["values_written"]
        skipped = sum(g[k]["skipped_ticks"] - g0[k]["skipped_ticks"] for k in g)
        print(f"  CPU over the window: ingest (this process) {d_own:.0f} s = {100 * d_own / soak_s:.0f} % of a core "
              f"({1e6 * d_own / max(1, opcua.stored + pi_tally.stored):.1f} µs/row); PostgreSQL {d_pg:.0f} s = "
              f"{100 * d_pg / soak_s:.0f} %; generator {d_gen:.0f} s = {100 * d_gen / soak_s:.0f} % "
              f"(wrote {written / soak_s:,.0f} OPC-UA values/s, {skipped} ticks skipped); "
              f"{rows_s:,.0f} rows/s expected")
        lo = observer.lags.get(arranged.opcua_id, [])
        lp = observer.lags.get(arranged.pi_id, [])
        print(f"  live lag at commit: OPC-UA p50 {pct(lo, .5):.0f} ms, p99 {pct(lo, .99):.0f} ms; PI p50 "
              f"{pct(lp, .5) / 1000:.1f} s, p99 {pct(lp, .99) / 1000:.1f} s; backfilled rows OPC-UA "
              f"{observer.backfilled.get(arranged.opcua_id, 0):,}, PI {observer.backfilled.get(arranged.pi_id, 0):,}; "
              f"writer retries {wstats.retries}, spooled {wstats.spooled:,}, replays dropped {wstats.duplicates:,}, "
              f"set aside {wstats.set_aside}; restarts in health (a writer crash counts for every integration) opcua "
              f"{restarts['opcua']}, pi {restarts['pi']}; "
              f"OPC-UA sessions on the server {gstats['sessions']}")
        print(f"  result: {'PASS' if ok else 'FAIL'} (missing, extra, duplicates and wrong values 0 everywhere; one "
              f"critical event per breach at its source time)  log: {log_path}", flush=True)
        return ok
    finally:
        writes.record_batches = real_record_batches
        for undo in restore:
            undo()
        if monitor_task is not None and not monitor_task.done():
            monitor_task.cancel()
            await asyncio.gather(monitor_task, return_exceptions=True)
        if sup is not None and sup_task is not None:
            sup.stop()
            try:
                await asyncio.wait_for(sup_task, 60)
            except BaseException:           # noqa: BLE001 - cleanup goes on
                sup_task.cancel()
        if gen is not None:
            await gen.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(Exception):
            watchdog.stdin.close()
            watchdog.wait(30)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        root_logger.removeHandler(handler)
        root_logger.removeHandler(catcher)
        log_file.close()


def run_soak(opts: Options) -> bool:
    try:
        return asyncio.run(run_soak_async(opts))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"[soak {opts.tier}] interrupted: stopped ingest, the generator and PostgreSQL", file=sys.stderr, flush=True)
        return False


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--generator":
        generator_main(json.loads(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "--watchdog":
        watchdog_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit("run it through scripts/bench_ingest.py --only soak")
