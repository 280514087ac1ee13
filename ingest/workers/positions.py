"""Where each signal of a polling worker (PI, SQL) left off: the newest source time stored or
queued for it.

Read from the database (``signal_latest``) once for each signal not known yet, then kept in
memory and moved only when rows are queued for the writer. A database outage (the writer
retrying, the spool filling) therefore never moves a signal back, and the next read starts
where the previous one ended whether or not its rows are committed yet. A signal never stored
starts ``initial`` ago; no signal starts further back than ``limit``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from ingest.store import IngestStore

RETRY_FIRST_S, RETRY_CAP_S = 1.0, 15.0


class Positions:
    """Per external id (PI WebId, SQL tag): the newest source time stored or queued."""

    def __init__(self, store: IngestStore, signal_by_external: dict[str, int], *, integration_id: int,
                 log: logging.Logger) -> None:
        self.store = store
        self.signal_by_external = signal_by_external
        self.integration_id = integration_id
        self.log = log
        self.at: dict[str, datetime] = {}
        self.unstored: set[str] = set()     # nothing stored for these yet (at load, and since)

    def __getitem__(self, external_id: str) -> datetime:
        return self.at[external_id]

    def get(self, external_id: str) -> datetime | None:
        return self.at.get(external_id)

    def advance(self, external_id: str, moment: datetime) -> None:
        current = self.at.get(external_id)
        if current is None or moment > current:
            self.at[external_id] = moment
        self.unstored.discard(external_id)

    async def load(self, *, initial: timedelta, limit: timedelta) -> None:
        """Fill in the signals not known yet from the database, waiting for it if it is away."""
        missing = [e for e in self.signal_by_external if e not in self.at]
        if not missing:
            return
        stored = await self._last_stored([self.signal_by_external[e] for e in missing])
        now = datetime.now(timezone.utc)
        clipped = 0
        for external_id in missing:
            last = stored.get(self.signal_by_external[external_id])
            if last is None:
                self.at[external_id] = now - initial
                self.unstored.add(external_id)
            elif last < now - limit:
                self.at[external_id] = now - limit
                clipped += 1
            else:
                self.at[external_id] = last
        if clipped:
            self.log.warning("ingest.positions_clipped", extra={
                "integration_id": self.integration_id, "signals": clipped, "limit_h": limit.total_seconds() / 3600})

    async def _last_stored(self, signal_ids: list[int]) -> dict[int, datetime]:
        delay = RETRY_FIRST_S
        while True:
            try:
                return await self.store.last_stored(signal_ids)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # the database is away: nothing is read until it answers
                self.log.warning("ingest.last_stored_unavailable", extra={
                    "integration_id": self.integration_id, "error": str(exc).splitlines()[0][:200] if str(exc) else
                    type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
