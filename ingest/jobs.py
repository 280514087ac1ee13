"""Periodic background jobs of the ingest service (health scoring, Black Box collectors, retention).

A job is any object with ``name``, ``interval_s`` and ``async run_once() -> int`` (items
processed). Jobs run beside the workers, never in the sample write path; a failing run is
logged and retried at the next interval. Every process runs the jobs, so each job must be
safe to run concurrently (idempotent writes, cursors advanced with compare-and-set).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Protocol

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


# Modules offering ``jobs(db, settings) -> list[Job]``; a module not present yet is skipped.
JOB_MODULES = ("optria.timeseries.retention", "optria.timeseries.repair", "optria.twin.jobs", "optria.blackbox.jobs", "optria.optimization.jobs")


def default_jobs(db, settings) -> list[Job]:
    jobs: list[Job] = []
    for name in JOB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        jobs.extend(module.jobs(db, settings))
    return jobs
