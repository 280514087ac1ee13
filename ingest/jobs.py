"""Periodic background jobs of the ingest service (health scoring, Black Box collectors, retention).

A job is any object with ``name``, ``interval_s`` and ``async run_once() -> int`` (items
processed). Jobs run beside the workers, never in the sample write path; a failing run is
logged and retried at the next interval. Every process runs the jobs, so each job must be
safe to run concurrently (idempotent writes, cursors advanced with compare-and-set).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from optria.blackbox import jobs as blackbox_jobs
from optria.optimization import jobs as optimization_jobs
from optria.timeseries import repair, retention
from optria.twin import jobs as twin_jobs

log = logging.getLogger("optria.ingest.jobs")


class Job(Protocol):
    name: str
    interval_s: float

    async def run_once(self) -> int: ...


async def run_job_forever(job: Job) -> None:
    while True:
        try:
            await job.run_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("ingest.job_failed", extra={"job": job.name, "error": str(exc).splitlines()[0][:300]})
        await asyncio.sleep(job.interval_s)


# Modules offering ``jobs(db, settings) -> list[Job]``, in the order their jobs start.
JOB_MODULES = (retention, repair, twin_jobs, blackbox_jobs, optimization_jobs)


def default_jobs(db, settings) -> list[Job]:
    return [job for module in JOB_MODULES for job in module.jobs(db, settings)]
