"""What the polling workers (PI, SQL) share: per-signal positions and the poll loop.

**Positions.** Per external id (PI WebId, SQL tag), the newest source time stored or queued.
Read from the database (``signal_latest``) once for each signal not known yet — waiting for the
database if it is away — then kept in memory and moved only when rows are queued for the
writer. A database outage (the writer retrying, the spool filling) therefore never moves a
signal back, and the next read starts where the previous one ended whether or not its rows are
committed yet. A signal never stored starts ``initial_backfill`` ago; none starts further back
than ``max_backfill``.

**The loop.** Load positions, open the source if needed, poll, sleep out the rest of the poll
interval. The first poll after start or after a failure is queued as BACKFILL (it reads back
what was missed), later ones as LIVE. A failure of the source marks the signals stale (when
it was connected), counts a reconnect, shows the error until the source answers again, closes
the session and waits with backoff; positions are untouched, so the next poll reads on from
where the last queued row left off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

from ingest.health import RATE_WINDOW_S
from ingest.store import IngestStore
from ingest.workers.base import Backoff, BaseWorker
from ingest.writer import BACKFILL, LIVE

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


class PollingWorker(BaseWorker):
    """Subclasses set ``log``, ``failures`` and the backfill bounds, and implement ``is_open``,
    ``open``, ``poll`` and ``close``; they call :meth:`answered` whenever the source answers."""

    log: logging.Logger
    failures: tuple[type[BaseException], ...] = (OSError,)
    initial_backfill = timedelta(minutes=10)
    max_backfill = timedelta(days=30)

    def __init__(self, *args, poll_interval: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.poll_interval = poll_interval
        self.health.rate_window_s = max(RATE_WINDOW_S, 4 * poll_interval)
        self.positions = Positions(self.store, self.signal_by_external, integration_id=self.spec.id, log=self.log)
        self.caught_up = False

    def is_open(self) -> bool:
        raise NotImplementedError

    async def open(self) -> None:
        raise NotImplementedError

    async def poll(self, kind: str) -> None:
        """Read what is new since the positions; queue it as ``kind``."""
        raise NotImplementedError

    def failure_message(self, exc: BaseException) -> str:
        return getattr(exc, "message", None) or str(exc) or type(exc).__name__

    async def run(self) -> None:
        backoff = Backoff(first=0.5, cap=max(5.0, min(30.0, self.poll_interval)))
        self.caught_up = False     # (re)started: the first poll reads back what was missed
        while True:
            started = time.monotonic()
            try:
                await self.positions.load(initial=self.initial_backfill, limit=self.max_backfill)
                if not self.is_open():
                    self.health.set_state("connecting" if self.health.state == "starting" else "reconnecting",
                                          connected=False)
                    await self.open()
                if not self.caught_up:
                    self.health.set_state("backfilling", connected=self.health.connected)
                await self.poll(LIVE if self.caught_up else BACKFILL)
                self.caught_up = True
                self.health.set_state("streaming", connected=True)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except self.failures as exc:
                await self.failed(self.failure_message(exc), backoff)
                continue
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    def answered(self) -> None:
        """The source answered: it works (again)."""
        if not self.health.connected:
            self.health.set_state(self.health.state, connected=True)
        if self.health.last_error is not None:
            self.health.resolved()

    async def failed(self, message: str, backoff: Backoff) -> None:
        self.log.warning(f"ingest.{self.spec.kind}.poll_failed",
                         extra={"integration_id": self.spec.id, "error": message[:200]})
        if self.health.connected:
            await self.mark_stale()
            self.health.reconnects += 1
        self.health.set_state("reconnecting", connected=False)
        self.health.error(message)
        self.caught_up = False
        await self.close()
        await backoff.wait()
