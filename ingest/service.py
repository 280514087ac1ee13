"""``optria ingest``: the long-running ingest process (supervisor, workers, writer, jobs, metrics).

Stopping: the first SIGTERM or SIGINT stops the background jobs, then the supervisor (workers
end their sessions, the writer flushes what is queued within a deadline and spools the rest,
leases are released if the database answers); the process exits within about 15 s whether or
not the database is reachable. A second signal spools what is still queued and exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ingest import metrics
from ingest.jobs import default_jobs, run_job_forever
from ingest.supervision import supervise
from ingest.supervisor import Supervisor
from optria import gc_settle
from optria.config import Settings

log = logging.getLogger("optria.ingest")

JOBS_STOP_TIMEOUT_S = 3.0
GC_SETTLE_S = (3.0, 60.0)   # after start-up, and once workers are subscribed and first reads done (optria.gc_settle)


def _refresh_metrics(sup: Supervisor) -> None:
    metrics.QUEUE.set(sup.writer.depth)
    metrics.SPOOL.set(sup.spool.pending_bytes())
    metrics.DB_UP.set(1 if sup.writer.stats.db_up else 0)
    for run in sup.running.values():
        label = str(run.spec.id)
        metrics.RECONNECTS.labels(label).set(run.health.reconnects)
        metrics.CONNECTED.labels(label).set(1 if run.health.connected else 0)


def _observe_commit(sup: Supervisor) -> None:
    def on_integration_commit(integration_id: int, live: int, lags_ms: list[float], backfilled: int) -> None:
        label = str(integration_id)
        metrics.SAMPLES.labels(label).inc(live + backfilled)
        if backfilled:
            metrics.BACKFILLED.labels(label).inc(backfilled)
        for lag in lags_ms[:: max(1, len(lags_ms) // 50)]:   # a sample of each commit's lags
            metrics.LAG.labels(label).observe(lag / 1000)

    sup.on_integration_commit = on_integration_commit


async def run_ingest(settings: Settings, dsn: str, *, metrics_host: str = "127.0.0.1", metrics_port: int = 9108,
                     lease_ttl_s: float = 15.0, max_leases: int = 200, with_jobs: bool = True,
                     maintain_rollups: bool | None = None) -> None:
    sup = Supervisor(settings, dsn, lease_ttl_s=lease_ttl_s, max_leases=max_leases, maintain_rollups=maintain_rollups)
    _observe_commit(sup)
    loop = asyncio.get_running_loop()
    job_tasks: list[asyncio.Task] = []
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            log.info("ingest.stopping", extra={"signal": signal.Signals(signum).name})
            for t in job_tasks:
                t.cancel()
            sup.stop()
            return
        spooled = sup.emergency_spool()
        log.warning("ingest.stopped_at_once", extra={"signal": signal.Signals(signum).name, "spooled": spooled})
        logging.shutdown()
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):
            pass
    runner = None
    if metrics_port:
        try:
            runner = await metrics.serve_metrics(metrics_host, metrics_port, lambda: _refresh_metrics(sup))
        except OSError as exc:
            log.warning("ingest.metrics_unavailable", extra={"port": metrics_port, "error": str(exc)})
    await sup.db.open()
    if with_jobs:
        for job in default_jobs(sup.db, settings):
            job_tasks.append(asyncio.create_task(
                supervise(f"job:{job.name}", lambda job=job: run_job_forever(job), restart_on_return=True),
                name=f"job-{job.name}"))
    sup.dependents = job_tasks
    settle = asyncio.create_task(gc_settle.settle(GC_SETTLE_S, log, "ingest.gc_settled"), name="gc-settle")
    try:
        await sup.run()
    finally:
        settle.cancel()
        for t in job_tasks:
            t.cancel()
        await asyncio.wait(job_tasks, timeout=JOBS_STOP_TIMEOUT_S) if job_tasks else None
        if runner is not None:
            await runner.cleanup()
