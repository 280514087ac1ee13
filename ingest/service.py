"""``optria ingest``: the long-running ingest process (supervisor, workers, writer, jobs, metrics)."""

from __future__ import annotations

import asyncio
import logging
import signal

from ingest import metrics
from ingest.jobs import default_jobs, run_job_forever
from ingest.supervisor import Supervisor
from optria.config import Settings

log = logging.getLogger("optria.ingest")


def _refresh_metrics(sup: Supervisor) -> None:
    metrics.QUEUE.set(sup.writer.depth)
    metrics.SPOOL.set(sup.spool.pending_bytes())
    metrics.DB_UP.set(1 if sup.writer.stats.db_up else 0)
    for run in sup.running.values():
        label = str(run.spec.id)
        metrics.RECONNECTS.labels(label).set(run.health.reconnects)
        metrics.CONNECTED.labels(label).set(1 if run.health.connected else 0)


def _observe_commit(sup: Supervisor) -> None:
    def on_integration_commit(integration_id: int, count: int, lags_ms: list[float]) -> None:
        label = str(integration_id)
        metrics.SAMPLES.labels(label).inc(count)
        if lags_ms:
            metrics.LAG.labels(label).observe(lags_ms[-1] / 1000)

    sup.on_integration_commit = on_integration_commit


async def run_ingest(settings: Settings, dsn: str, *, metrics_host: str = "127.0.0.1", metrics_port: int = 9108,
                     lease_ttl_s: float = 15.0, max_leases: int = 200, with_jobs: bool = True,
                     maintain_rollups: bool | None = None) -> None:
    sup = Supervisor(settings, dsn, lease_ttl_s=lease_ttl_s, max_leases=max_leases, maintain_rollups=maintain_rollups)
    _observe_commit(sup)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, sup.stop)
        except (NotImplementedError, RuntimeError):
            pass
    runner = None
    if metrics_port:
        try:
            runner = await metrics.serve_metrics(metrics_host, metrics_port, lambda: _refresh_metrics(sup))
        except OSError as exc:
            log.warning("ingest.metrics_unavailable", extra={"port": metrics_port, "error": str(exc)})
    await sup.db.open()
    job_tasks: list[asyncio.Task] = []
    if with_jobs:
        for job in default_jobs(sup.db, settings):
            job_tasks.append(asyncio.create_task(run_job_forever(job), name=f"job-{job.name}"))
    try:
        await sup.run()
    finally:
        for t in job_tasks:
            t.cancel()
        await asyncio.gather(*job_tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
