"""The background job queue: optimization runs and proof-of-concept reports as procrastinate jobs in
PostgreSQL, so they outlive the web process that started them and are retried when they fail.

Where jobs run: in the web process. Each web worker's lifespan (optria.shell.app) runs a
procrastinate worker beside the requests, so every web replica executes jobs and a replica that
stops leaves its jobs to the others. Not in the ingest service: ARCHITECTURE.md gives it one
concern, moving plant data (integrations leased per worker, the writer, the data derived from
samples), and its processes may run on machines near the plant. The web process is where these
jobs come from, already holds what they need (the model's key, the secret box the connection tests
decrypt with), scales with replicas, and needs no extra process in ``./scripts/demo`` or
compose.yaml. The jobs mostly wait (for the model's answer, for data during a proof of concept),
so they cost a web worker little; they run on connections of their own (``JobWorker``), so they
never hold one a request needs.

How a job comes through:
- a restart: on shutdown the worker gives its jobs ``SHUTDOWN_GRACE_S`` (granian kills a web
  worker after 10 s), then cancels them; a cancelled attempt puts its run back to ``queued`` (a
  report stays ``running``) and the job is retried at once, by the next worker to look, on this
  replica after its restart or on another one.
- a failure: an unexpected error is retried with exponential back-off (2, 4, 8, 16, 32 s); the
  last attempt records the failure on the run or the report, with its message, and logs it.
- a dead process (killed, out of memory, its machine gone): workers record a heartbeat every
  ``HEARTBEAT_S``; every ``STALLED_CHECK_S`` one worker (an advisory lock elects it) puts the jobs
  of workers silent for ``STALLED_AFTER_S`` back in the queue. The attempt that picks such a job
  up finds its run ``running`` (or its report with steps done) and starts it over.

A job holds ids only (tenant and run, or report) and the report's options; its tables are
procrastinate's schema, applied by our migration runner (sql/migrations/0012_job_queue.sql),
platform-level and without tenant rows. The worker's connections take the app role, as the
request pool's do. The job functions call the areas' own entry points (``runs.execute``,
``poc.run_report``); the areas' routes defer through ``app.state.job_queue`` and import nothing
from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any
from uuid import UUID

import procrastinate
import psycopg
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job

from optria.config import Settings
from optria.db import APP_ROLE, Database
from optria.optimization import runs
from optria.platform import poc
from optria.secretbox import SecretBox

log = logging.getLogger("optria.job_queue")

OPTIMIZATION_RUN = "optimization_run"
POC_REPORT = "poc_report"
RETRIES = 5                 # attempts after the first, for errors (a shutdown always gets another)
CONCURRENCY = 4             # jobs at once per web worker: a proof of concept must not hold up runs
SHUTDOWN_GRACE_S = 2.0
POLL_S = 2.0                # new jobs arrive by NOTIFY; polling finds retries that came due
HEARTBEAT_S = 10.0
STALLED_AFTER_S = 30.0
STALLED_CHECK_S = 15.0
STOP_TIMEOUT_S = 10.0       # the most a web shutdown waits for the worker
RESTART_DELAY_S = 5.0
STALLED_LOCK = 0x0715_7A1B  # advisory lock: one process at a time puts stalled jobs back


class Retry(procrastinate.RetryStrategy):
    """procrastinate's strategy for errors; an attempt cut short by a shutdown is retried at once."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> procrastinate.RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        return super().get_retry_decision(exception=exception, job=job)


RETRY = Retry(max_attempts=RETRIES, exponential_wait=2)


def _last_attempt(context: procrastinate.JobContext) -> bool:
    return context.job.attempts >= RETRIES


async def optimization_run(context: procrastinate.JobContext, tenant_id: str, run_id: int) -> str | None:
    env = context.additional_context
    row = await runs.execute(env["db"], env["settings"], UUID(tenant_id), run_id, from_queue=True,
                             last_attempt=_last_attempt(context))
    return row["status"] if row else None


async def poc_report(context: procrastinate.JobContext, report_id: int, options: dict[str, Any],
                     actor_name: str) -> str:
    env = context.additional_context
    result = await poc.run_report(env["db"], env["settings"], env["box"], poc.PocOptions(**options), report_id,
                                  actor_name=actor_name, from_queue=True, last_attempt=_last_attempt(context))
    return result["status"]


async def _as_app_role(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(f"SET ROLE {APP_ROLE}")
    await conn.commit()


def _with_tasks(connector: procrastinate.PsycopgConnector) -> procrastinate.App:
    app = procrastinate.App(connector=connector)
    for name, function in ((OPTIMIZATION_RUN, optimization_run), (POC_REPORT, poc_report)):
        app.task(name=name, pass_context=True, retry=RETRY)(function)
    return app


class JobQueue:
    """Queues jobs through the app's request pool: the request that asks for a job queues it."""

    def __init__(self, db: Database) -> None:
        self.app = _with_tasks(procrastinate.PsycopgConnector())
        self._pool = db.pool

    async def open(self) -> None:
        await self.app.open_async(pool=self._pool)

    async def defer_optimization_run(self, tenant_id: UUID, run_id: int) -> int:
        return await self.app.configure_task(OPTIMIZATION_RUN).defer_async(tenant_id=str(tenant_id), run_id=run_id)

    async def defer_poc_report(self, report_id: int, options: poc.PocOptions, *, actor_name: str) -> int:
        return await self.app.configure_task(POC_REPORT).defer_async(
            report_id=report_id, options=dataclasses.asdict(options), actor_name=actor_name)


class JobWorker:
    """Runs the queue's jobs in this process, on connections of its own (procrastinate's pool and
    LISTEN connection, and a pool the jobs query through), so a long job never waits for, or holds,
    a connection a request needs. It starts in the background: the web app does not wait for it."""

    def __init__(self, dsn: str, *, settings: Settings, box: SecretBox) -> None:
        self.dsn = dsn
        self.settings, self.box = settings, box
        connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=3, name="optria-jobs",
                                                   configure=_as_app_role,
                                                   kwargs={"application_name": "optria-jobs"})
        self.app = _with_tasks(connector)
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-worker")

    async def stop(self) -> None:
        """Stop working: running jobs get ``SHUTDOWN_GRACE_S``, then go back to the queue. A
        worker that does not end within ``STOP_TIMEOUT_S`` (a connection that does not answer) is
        left behind and said: shutting down must never hang on it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT_S)
        if not done:
            log.error("job_queue.worker_stop_timeout", extra={"timeout_s": STOP_TIMEOUT_S})

    async def retry_stalled_jobs(self, stalled_after_s: float = STALLED_AFTER_S) -> list[int]:
        """Put the jobs of workers without a heartbeat for ``stalled_after_s`` back in the queue.

        The advisory lock keeps two replicas from retrying the same job, one of them after a
        live worker has taken it up again."""
        manager = self.app.job_manager
        async with self.app.connector.pool.connection() as conn:
            locked = (await (await conn.execute("SELECT pg_try_advisory_lock(%s)", [STALLED_LOCK])).fetchone())[0]
            await conn.commit()
            if not locked:
                return []
            retried = []
            try:
                for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
                    try:
                        await manager.retry_job(job)
                    except ConnectorException:      # it finished meanwhile: its worker was slow, not dead
                        continue
                    retried.append(job.id)
                    log.warning("job_queue.stalled_job_retried", extra={"job_id": job.id, "task": job.task_name,
                                                                       "worker_id": job.worker_id})
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", [STALLED_LOCK])
        return retried

    async def _run(self) -> None:
        """Open the connections, take up the jobs of dead workers (after a restart, this process's
        own), then work until stopped. Whatever ends it otherwise (the database unreachable, a lost
        connection) is logged, and it starts again after ``RESTART_DELAY_S``."""
        while not self._stopping:
            db = Database(self.dsn, min_size=1, max_size=4, name="optria-jobs")
            watcher = None
            try:
                await self.app.open_async()
                await db.open()
                await self.retry_stalled_jobs()
                watcher = asyncio.create_task(self._watch_stalled(), name="job-worker-stalled")
                await self.app.run_worker_async(
                    name="optria-web", concurrency=CONCURRENCY, fetch_job_polling_interval=POLL_S,
                    shutdown_graceful_timeout=SHUTDOWN_GRACE_S, update_heartbeat_interval=HEARTBEAT_S,
                    stalled_worker_timeout=STALLED_AFTER_S, delete_jobs="successful", install_signal_handlers=False,
                    additional_context={"db": db, "settings": self.settings, "box": self.box})
                log.error("job_queue.worker_stopped", extra={"restart_in_s": RESTART_DELAY_S})
            except Exception:
                log.exception("job_queue.worker_crashed", extra={"restart_in_s": RESTART_DELAY_S})
            finally:
                if watcher is not None:
                    watcher.cancel()
                    await asyncio.wait([watcher])
                await self.app.close_async()
                await db.close()
            if self._stopping:   # a cancellation the worker took as its own graceful stop
                return
            await asyncio.sleep(RESTART_DELAY_S)

    async def _watch_stalled(self) -> None:
        while True:
            await asyncio.sleep(STALLED_CHECK_S)
            try:
                await self.retry_stalled_jobs()
            except Exception:
                log.exception("job_queue.stalled_check_failed")


async def start(app: Any) -> None:
    """Web lifespan, on startup: queue jobs through the app's pool, and start a worker."""
    queue = JobQueue(app.state.db)
    await queue.open()
    worker = JobWorker(app.state.db.dsn, settings=app.state.settings, box=app.state.secretbox)
    worker.start()
    app.state.job_queue, app.state.job_worker = queue, worker


async def stop(app: Any) -> None:
    """Web lifespan, on shutdown."""
    worker = app.state.get("job_worker")
    if worker is not None:
        await worker.stop()
