"""A Black Box job that works in rounds (the collectors and the grouping job).

Each round reads a batch past the job's cursor and writes what it made of it in one transaction;
``run_once`` runs rounds until the source is drained or ``max_rounds`` have run, so a job
catches up fast after downtime yet yields to the others regularly.
"""

from __future__ import annotations

from optria.db import Database


class RoundsJob:
    name = "blackbox.job"
    interval_s = 1.0
    batch = 2_000
    max_rounds = 10

    def __init__(self, db: Database) -> None:
        self.db = db

    async def round(self) -> tuple[int, bool]:
        """(records processed, whether more are waiting)."""
        raise NotImplementedError

    async def run_once(self) -> int:
        total = 0
        for _ in range(self.max_rounds):
            processed, more = await self.round()
            total += processed
            if not more:
                break
        return total
