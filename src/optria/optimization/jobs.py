"""The optimization job of the ingest service: writes down runs that outlived their time limit.

Readers already show such a run as failed (``store.EFFECTIVE_STATUS``); this job makes the
stored state agree, so the Black Box's optimization collector records the failure (once:
its events are keyed by run and kind).
"""

from __future__ import annotations

import logging
from typing import Any

from optria.config import Settings
from optria.db import Database
from optria.optimization import store

log = logging.getLogger("optria.optimization.jobs")


class ReapOverdueRuns:
    name = "optimization-reaper"
    interval_s = 30.0

    def __init__(self, db: Database) -> None:
        self.db = db

    async def run_once(self) -> int:
        async with self.db.platform("optimization_reaper") as conn:
            reaped = await store.reap_overdue(conn)
        for r in reaped:
            log.warning("optimization.run_reaped", extra={"tenant_id": str(r["tenant_id"]), "run_id": r["id"]})
        return len(reaped)


def jobs(db: Database, settings: Settings) -> list[Any]:
    return [ReapOverdueRuns(db)]
