"""The ingest supervisor: leases integrations, runs one worker per lease, reports health.

Several ingest processes (on several machines) share the integrations through lease rows
with an expiry, renewed by heartbeat; a process that dies stops renewing and another takes
its integrations over when the leases expire. Changes to integrations or mappings wake the
supervisor through ``NOTIFY optria_ingest_config`` and are picked up within seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from ingest.health import IntegrationHealth
from ingest.samples import Sample
from ingest.spool import Spool
from ingest.store import IngestStore, IntegrationSpec
from ingest.workers import build_worker
from ingest.writer import Writer
from optria.config import Settings
from optria.db import Database
from optria.secretbox import SecretBox

log = logging.getLogger("optria.ingest.supervisor")


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
        self.db = Database(dsn, min_size=2, max_size=12, name="optria-ingest")  # workers' look-ups and ~12 background jobs
        self.store = IngestStore(self.db)
        spool_path = (spool_dir or Path(settings.data_dir) / "spool") / f"{self.worker_id.replace(':', '_')}.spool"
        self.spool = Spool(spool_path)
        self.writer = Writer(dsn, maintain_rollups=maintain_rollups, spool=self.spool, on_commit=self._on_commit)
        self.box = SecretBox(settings.session_key())
        self.running: dict[int, Running] = {}
        self._signal_owner: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._last_history = 0.0
        # Called once per integration per commit with (integration id, rows, lags in ms): the one
        # place that splits a commit by integration, so observers (metrics) need no second pass.
        self.on_integration_commit: Callable[[int, int, list[float]], None] | None = None

    # ----- commit accounting -------------------------------------------------------------

    def _on_commit(self, inserted: list[Sample], _seconds: float) -> None:
        now = datetime.now(timezone.utc)
        per: dict[int, list[Sample]] = {}
        for s in inserted:
            owner = self._signal_owner.get(s.signal_id)
            if owner is not None:
                per.setdefault(owner, []).append(s)
        for integration_id, samples in per.items():
            run = self.running.get(integration_id)
            if run is None:
                continue
            lags = [(now - s.time).total_seconds() * 1000 for s in samples]
            run.health.committed(len(samples), lags, max(s.time for s in samples))
            if self.on_integration_commit is not None:
                self.on_integration_commit(integration_id, len(samples), lags)

    # ----- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        if self.db.pool.closed:
            await self.db.open()
        self.writer.start()
        listener = asyncio.create_task(self._listen(), name="ingest-listen")
        health = asyncio.create_task(self._health_loop(), name="ingest-health")
        log.info("ingest.started", extra={"worker_id": self.worker_id})
        try:
            while not self._stop.is_set():
                try:
                    await self._reconcile()
                except (psycopg.OperationalError, OSError) as exc:
                    log.warning("ingest.reconcile_failed", extra={"error": str(exc).splitlines()[0][:200]})
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(self.scan_interval_s, self.lease_ttl.total_seconds() / 3))
                except asyncio.TimeoutError:
                    pass
        finally:
            listener.cancel()
            health.cancel()
            await self._shutdown()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _shutdown(self) -> None:
        for run in self.running.values():
            run.health.set_state("stopped", connected=False)
        try:
            await self._write_health()   # final figures before the workers go
        except Exception:
            pass
        for integration_id in list(self.running):
            await self._stop_worker(integration_id, release=False)
        await self.writer.stop()         # flush everything queued
        try:
            await self.store.release(self.worker_id)
        except Exception as exc:
            log.warning("ingest.release_failed", extra={"error": str(exc)[:200]})
        await self.db.close()
        log.info("ingest.stopped", extra={"worker_id": self.worker_id})

    async def _listen(self) -> None:
        """Wake the reconcile loop on configuration changes (reconnecting after database outages)."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute("LISTEN optria_ingest_config")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(2)

    # ----- reconcile: leases and workers ---------------------------------------------------

    async def _reconcile(self) -> None:
        specs = {s.id: s for s in await self.store.active_integrations()}
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
        for integration_id, spec in specs.items():
            if integration_id in self.running or len(self.running) >= self.max_leases:
                continue
            if await self.store.acquire(spec, self.worker_id, self.lease_ttl):
                await self._start_worker(spec)

    async def _start_worker(self, spec: IntegrationSpec) -> None:
        health = IntegrationHealth(spec.tenant_id, spec.id, self.worker_id)
        try:
            secrets = self.box.open_dict(spec.secrets, context=f"{spec.tenant_id}:integration")
        except ValueError:
            health.set_state("error")
            health.error("stored credentials cannot be decrypted; save the integration's password again")
            secrets = None
        for s in spec.signals:
            self._signal_owner[s.signal_id] = spec.id
        worker = build_worker(spec, secrets or {}, settings=self.settings, writer=self.writer, health=health,
                              store=self.store) if secrets is not None else None
        if worker is None:
            task = asyncio.create_task(asyncio.sleep(self.scan_interval_s * 6))
        else:
            task = asyncio.create_task(self._supervise(worker, health), name=f"ingest-{spec.kind}-{spec.id}")
        self.running[spec.id] = Running(spec, task, health, worker)
        log.info("ingest.worker_started", extra={"integration_id": spec.id, "kind": spec.kind,
                                                 "signals": len(spec.signals)})

    async def _supervise(self, worker, health: IntegrationHealth) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a worker bug must not take the process down
            log.exception("ingest.worker_crashed", extra={"integration_id": health.integration_id})
            health.set_state("error", connected=False)
            health.error(f"worker stopped: {type(exc).__name__}")

    async def _stop_worker(self, integration_id: int, *, release: bool) -> None:
        run = self.running.pop(integration_id, None)
        if run is None:
            return
        run.task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(run.task), timeout=10)
        except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
            pass
        close = getattr(run.worker, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:
                pass
        for s in run.spec.signals:
            self._signal_owner.pop(s.signal_id, None)
        if release:
            try:
                await self.store.release(self.worker_id, integration_id)
            except Exception:
                pass

    # ----- health ------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            try:
                await self._write_health()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ingest.health_write_failed", extra={"error": str(exc).splitlines()[0][:200]})

    async def _write_health(self) -> None:
        depth = self.writer.depth
        spool = self.spool.pending_bytes()
        rows = [r.health.row(depth, spool) for r in self.running.values()]
        history = time.monotonic() - self._last_history >= 10
        await self.store.write_health(rows, history)
        if history:
            self._last_history = time.monotonic()
