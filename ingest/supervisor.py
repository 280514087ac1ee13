"""The ingest supervisor: leases integrations, runs one worker per lease, reports health.

Several ingest processes (on several machines) share the integrations through lease rows
with an expiry, renewed by heartbeat; a process that dies stops renewing and another takes
its integrations over when the leases expire. Each process also announces itself
(``ingest_processes``, with its ``max_leases``) and holds at most its fair share (see
:func:`fair_share`): a process started beside a busy one is handed the excess within a scan, and
a process that may run fewer leaves the rest to the others. Changes to
integrations or mappings wake the supervisor through ``NOTIFY optria_ingest_config`` and are
picked up within seconds.

Every long-lived task — the writer, each worker, the health loop, the config listener — runs
under :func:`ingest.supervision.supervise`: a crash is logged, counted, shown in the health of
the integrations it touches and the task restarts with backoff. Database access is split so
no two tasks share a connection: the writer has its own, everything else borrows from the pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg

from ingest.health import IntegrationHealth
from ingest.samples import Sample
from ingest.spool import Spool
from ingest.store import IngestStore, IntegrationSpec
from ingest.supervision import supervise
from ingest.workers import build_worker
from ingest.writer import BACKFILL, Commit, Writer
from optria.config import Settings
from optria.db import Database
from optria.secretbox import SecretBox

log = logging.getLogger("optria.ingest.supervisor")

WORKER_CLOSE_TIMEOUT_S = 5.0
LAG_SAMPLE = 50    # lags per commit and integration kept for the percentiles


def fair_share(capacities: list[int], integrations: int) -> int:
    """The most integrations any live process should hold: the lowest level L at which the processes,
    each taking min(its capacity, L), hold every integration (ceil(integrations / processes) when all
    have room). A process takes min(its own capacity, L). When the capacities together fall short,
    L is the largest capacity: every process runs what it may."""
    top = max(capacities, default=0)
    low, high = 0, top
    while low < high:
        level = (low + high) // 2
        if sum(min(c, level) for c in capacities) >= integrations:
            high = level
        else:
            low = level + 1
    return low


@dataclass
class Running:
    spec: IntegrationSpec
    task: asyncio.Task
    health: IntegrationHealth
    worker: object


class Supervisor:
    def __init__(self, settings: Settings, dsn: str, *, worker_id: str | None = None, lease_ttl_s: float = 15.0,
                 scan_interval_s: float = 5.0, health_interval_s: float = 2.0, max_leases: int = 200,
                 spool_dir: Path | None = None, maintain_rollups: bool | None = None) -> None:
        self.settings = settings
        self.dsn = dsn
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.scan_interval_s = scan_interval_s
        self.health_interval_s = health_interval_s
        self.max_leases = max_leases
        self._over_capacity = False
        self.db = Database(dsn, min_size=2, max_size=12, name="optria-ingest")  # workers' look-ups and ~12 background jobs
        self.store = IngestStore(self.db)
        spool_path = (spool_dir or Path(settings.data_dir) / "spool") / f"{self.worker_id.replace(':', '_')}.spool"
        self.spool = Spool(spool_path)
        self.writer = Writer(dsn, maintain_rollups=maintain_rollups, spool=self.spool, on_commit=self._on_commit,
                             on_reject=self._on_reject)
        self.box = SecretBox(settings.session_key())
        self.running: dict[int, Running] = {}
        self._signal_owner: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._last_history = 0.0
        self._tasks: list[asyncio.Task] = []
        self.writer_task: asyncio.Task | None = None
        self.folder_task: asyncio.Task | None = None
        self.dependents: list[asyncio.Task] = []   # tasks using our pool (background jobs): stopped first
        self.full_scan_s = 30.0
        self._specs: dict[int, IntegrationSpec] | None = None
        self._retired: dict[int, object] = {}   # the last worker of each integration: its successor inherits its gaps
        self._specs_at = 0.0
        self._config_changed = False
        # Called once per integration per commit with (integration id, live rows, lags in ms, backfilled
        # rows): the one place that splits a commit by integration, so observers need no second pass.
        self.on_integration_commit: Callable[[int, int, list[float], int], None] | None = None

    # ----- commit accounting -------------------------------------------------------------

    def _on_commit(self, commit: Commit) -> None:
        now = commit.committed_at
        for kind, source, rows in commit.parts:
            if source is not None:
                per = {source: rows}
            else:   # rows of unknown origin (a spool replay): by their signals
                per: dict[int, list[Sample]] = {}
                for s in rows:
                    owner = self._signal_owner.get(s.signal_id)
                    if owner is not None:
                        per.setdefault(owner, []).append(s)
            for integration_id, samples in per.items():
                run = self.running.get(integration_id)
                if run is None or not samples:
                    continue
                newest = max(s.time for s in samples)
                if kind == BACKFILL:
                    run.health.backfilled(len(samples), min(s.time for s in samples), newest)
                    if self.on_integration_commit is not None:
                        self.on_integration_commit(integration_id, 0, [], len(samples))
                else:
                    # lag percentiles from an even sample of the rows: the figure, not a per-row cost
                    step = max(1, len(samples) // LAG_SAMPLE)
                    lags = [(now - s.time).total_seconds() * 1000 for s in samples[::step]]
                    run.health.committed(len(samples), lags, newest)
                    if self.on_integration_commit is not None:
                        self.on_integration_commit(integration_id, len(samples), lags, 0)

    def _on_reject(self, rows: list[Sample], reason: str) -> None:
        per: dict[int, dict[int, int]] = {}
        for s in rows:
            owner = self._signal_owner.get(s.signal_id)
            if owner is not None:
                counts = per.setdefault(owner, {})
                counts[s.signal_id] = counts.get(s.signal_id, 0) + 1
        for integration_id, counts in per.items():
            run = self.running.get(integration_id)
            if run is not None:
                for signal_id, n in counts.items():
                    run.health.reject(reason, n, signal_id=signal_id)

    # ----- lifecycle ---------------------------------------------------------------------

    def _writer_crashed(self, reason: str) -> None:
        for run in self.running.values():
            run.health.restarted(f"writer: {reason}")

    async def run(self) -> None:
        if self.db.pool.closed:
            await self.db.open()
        self.writer_task = asyncio.create_task(
            supervise("writer", self.writer.run, on_crash=self._writer_crashed), name="optria-writer")
        self.folder_task = asyncio.create_task(
            supervise("folder", self.writer.folder.run, on_crash=self._writer_crashed), name="optria-folder")
        self._tasks = [
            asyncio.create_task(supervise("listener", self._listen, restart_on_return=True), name="ingest-listen"),
            asyncio.create_task(supervise("health", self._health_loop, restart_on_return=True), name="ingest-health"),
        ]
        log.info("ingest.started", extra={"worker_id": self.worker_id})
        try:
            while not self._stop.is_set():
                try:
                    await self._reconcile()
                except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
                    log.warning("ingest.reconcile_failed", extra={"error": str(exc).splitlines()[0][:200]})
                except Exception:
                    log.exception("ingest.reconcile_crashed")
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(),
                                           timeout=min(self.scan_interval_s, self.lease_ttl.total_seconds() / 3))
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._shutdown()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _shutdown(self, flush_timeout: float = 6.0) -> None:
        """Bounded whether or not the database answers: workers stop, the writer flushes what it can
        within ``flush_timeout`` and spools the rest, leases are released if the database answers."""
        for t in self.dependents:
            t.cancel()
        if self.dependents:
            await asyncio.wait(self.dependents, timeout=3)
        for run in self.running.values():
            run.health.set_state("stopped", connected=False)
        try:
            await asyncio.wait_for(self._write_health(), 1.5)   # final figures before the workers go
        except Exception:
            pass
        await asyncio.gather(*(self._stop_worker(i, release=False) for i in list(self.running)),
                             return_exceptions=True)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.stop(timeout=flush_timeout)
        if self.writer_task is not None:
            try:
                await asyncio.wait_for(self.writer_task, flush_timeout + 3)
            except (asyncio.TimeoutError, Exception):
                self.writer_task.cancel()
                await asyncio.gather(self.writer_task, return_exceptions=True)
                await self.writer.drain_to_spool()
        if self.folder_task is not None:   # what the writer committed, folded before the end
            await self.writer.folder.stop()
            try:
                await asyncio.wait_for(self.folder_task, 5)
            except (asyncio.TimeoutError, Exception):
                self.folder_task.cancel()
                await asyncio.gather(self.folder_task, return_exceptions=True)
        try:
            await asyncio.wait_for(self.store.release(self.worker_id), 2)
        except Exception as exc:
            log.warning("ingest.release_failed", extra={"error": str(exc)[:200] or type(exc).__name__})
        try:
            await asyncio.wait_for(self.db.close(), 2)
        except Exception:
            pass
        log.info("ingest.stopped", extra={"worker_id": self.worker_id})

    def emergency_spool(self) -> int:
        """Second signal: put what is queued into the spool synchronously and return at once."""
        rows = [s for p in self.writer._inflight for s in p.samples]
        while True:
            try:
                rows.extend(self.writer.queue.get_nowait().samples)
            except asyncio.QueueEmpty:
                break
        if rows:
            self.spool.append(rows)
        return len(rows)

    async def _listen(self) -> None:
        """Wake the reconcile loop on configuration changes (returns when the connection drops)."""
        try:
            async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                await conn.execute("LISTEN optria_ingest_config")
                async for _ in conn.notifies():
                    self._config_changed = True
                    self._wake.set()
        except (psycopg.OperationalError, OSError):
            await asyncio.sleep(2)

    # ----- reconcile: leases and workers ---------------------------------------------------

    async def _reconcile(self) -> None:
        """Renew the leases held, stop what was lost, take what is free. What to stream is reloaded (a
        costly read: every mapped signal of every integration) only when a change is notified, or
        every ``full_scan_s``; between reloads the known integrations are used."""
        now = time.monotonic()
        reloaded = self._specs is None or self._config_changed or now - self._specs_at >= self.full_scan_s
        if reloaded:
            self._config_changed = False
            self._specs = {s.id: s for s in await self.store.active_integrations()}
            self._specs_at = now
        specs = self._specs
        # our fair share: the integrations split over the live processes by what each may run
        capacities = await self.store.announce(self.worker_id, self.lease_ttl, self.max_leases)
        live = len(capacities)
        share = min(self.max_leases, fair_share(capacities or [self.max_leases], len(specs)))
        short = sum(capacities) < len(specs)
        if short and not self._over_capacity:   # once per episode, not every scan
            log.error("ingest.over_capacity", extra={"integrations": len(specs), "processes": live,
                                                      "max_leases_total": sum(capacities)})
        self._over_capacity = short
        # renew what we hold; lose what someone else took or what expired
        held = await self.store.renew(self.worker_id, list(self.running), self.lease_ttl)
        for integration_id in list(self.running):
            spec = specs.get(integration_id)
            if integration_id not in held:
                log.warning("ingest.lease_lost", extra={"integration_id": integration_id})
                await self._stop_worker(integration_id, release=False)
            elif spec is None:
                await self._stop_worker(integration_id, release=True)
            elif spec.version != self.running[integration_id].spec.version:
                log.info("ingest.config_changed", extra={"integration_id": integration_id})
                await self._stop_worker(integration_id, release=False)
                await self._start_worker(spec)
            elif self.running[integration_id].task.done():
                await self._stop_worker(integration_id, release=False)
                await self._start_worker(spec)
        for integration_id in sorted(self.running, reverse=True)[:max(0, len(self.running) - share)]:
            # more than our share while other processes have room: hand the excess over (the taker
            # reads on from what is stored, as after any takeover)
            log.info("ingest.lease_handed_over", extra={"integration_id": integration_id, "processes": live,
                                                         "share": share})
            await self._stop_worker(integration_id, release=True)
        for integration_id, spec in specs.items():
            if integration_id in self.running or len(self.running) >= share:
                continue
            if await self.store.acquire(spec, self.worker_id, self.lease_ttl):
                await self._start_worker(spec)

    async def _start_worker(self, spec: IntegrationSpec) -> None:
        health = IntegrationHealth(spec.tenant_id, spec.id, self.worker_id)
        try:
            secrets = self.box.open_dict(spec.secrets, context=f"{spec.tenant_id}:integration")
        except ValueError:
            health.set_state("error")
            health.error(f"the stored credentials of integration {spec.name!r} cannot be decrypted with the current "
                         "SESSION_SECRET: run `optria rotate-secret` with the previous secret, or save the "
                         "integration's password again")
            log.error("ingest.credentials_unreadable", extra={"integration_id": spec.id, "tenant_id": str(spec.tenant_id),
                                                              "integration": spec.name})
            secrets = None
        for s in spec.signals:
            self._signal_owner[s.signal_id] = spec.id
        worker = build_worker(spec, secrets or {}, settings=self.settings, writer=self.writer, health=health,
                              store=self.store) if secrets is not None else None
        previous = self._retired.pop(spec.id, None)
        if worker is not None and previous is not None and type(previous) is type(worker) and hasattr(worker, "inherit"):
            worker.inherit(previous)   # what the worker it replaces had not read back yet
        if worker is None:
            task = asyncio.create_task(asyncio.sleep(self.scan_interval_s * 6))
        else:
            task = asyncio.create_task(self._supervise_worker(spec, worker, health),
                                       name=f"ingest-{spec.kind}-{spec.id}")
        self.running[spec.id] = Running(spec, task, health, worker)
        log.info("ingest.worker_started", extra={"integration_id": spec.id, "kind": spec.kind,
                                                 "signals": len(spec.signals)})

    async def _supervise_worker(self, spec: IntegrationSpec, worker, health: IntegrationHealth) -> None:
        async def run_once() -> None:
            try:
                await worker.run()
            finally:
                await _close_worker(worker)   # every session ends before the next run opens one

        def crashed(reason: str) -> None:
            health.restarted(reason)
            health.set_state("error", connected=False)
            health.error(f"worker stopped: {reason}")

        await supervise(f"worker:{spec.id}", run_once, on_crash=crashed, restart_on_return=True)

    async def _stop_worker(self, integration_id: int, *, release: bool) -> None:
        run = self.running.pop(integration_id, None)
        if run is None:
            return
        run.task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(run.task), timeout=WORKER_CLOSE_TIMEOUT_S + 5)
        except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
            pass
        if run.worker is not None:
            await _close_worker(run.worker)
            self._retired[integration_id] = run.worker
        for s in run.spec.signals:
            if self._signal_owner.get(s.signal_id) == integration_id:
                self._signal_owner.pop(s.signal_id, None)
        if release:
            try:
                await asyncio.wait_for(self.store.release(self.worker_id, integration_id), 5)
            except Exception:
                pass

    # ----- health ------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            try:
                await self._write_health()
            except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
                log.warning("ingest.health_write_failed", extra={"error": str(exc).splitlines()[0][:200]})

    async def _write_health(self) -> None:
        depth = self.writer.depth
        spool = self.spool.pending_bytes()
        runs = list(self.running.values())
        rows = [r.health.row(depth, spool) for r in runs]
        taken = [(r.health, r.health.take_signal_status()) for r in runs]
        status = [{"tenant_id": h.tenant_id, "integration_id": h.integration_id, "signal_id": sid,
                   "rejected": st.rejected, "reason": st.reason, "detail": st.detail, "at": st.at}
                  for h, pending in taken for sid, st in pending.items()]
        history = time.monotonic() - self._last_history >= 10
        try:
            await self.store.write_health(rows, history, status)
        except BaseException:
            for h, pending in taken:
                h.give_back_signal_status(pending)
            raise
        if history:
            self._last_history = time.monotonic()


async def _close_worker(worker) -> None:
    close = getattr(worker, "close", None)
    if close is None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(close()), WORKER_CLOSE_TIMEOUT_S)
    except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
        pass
