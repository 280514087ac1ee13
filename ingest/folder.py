"""The folder: what the writer committed, folded into latest values and rollups, beside the writer.

The writer commits samples and their commit-log entries batch by batch; after each commit it
hands the new rows and entries to the folder (:meth:`Folder.add`, in memory). The folder, a
task with a database connection of its own, writes the newest value per signal every
``latest_interval_s`` (with ``NOTIFY optria_live``) and every ``rollup_interval_s`` claims the
entries and merges their rows' per-minute partial aggregates, summed as they were added, into the
rollups (:func:`optria.timeseries.writes.fold`). Keeping this off the writer's connection keeps a
fold out of the samples' path: their commit never waits for it.

Only the folder's task uses its connection: others ask it to fold now (:meth:`Folder.fold_now`:
the writer before a stale mark, so a value received before the loss cannot look current again)
and wait for it. A fold that fails keeps its latest values for the next one and leaves its
entries to the rollup repair job, which folds them from the stored rows.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg

from ingest.connection import OwnConnection
from ingest.samples import Sample
from optria.timeseries import writes

log = logging.getLogger("optria.ingest.folder")

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, OSError, asyncio.TimeoutError)


class Folder(OwnConnection):
    application_name = "optria-ingest-folder"

    def __init__(self, dsn: str, *, maintain_rollups: bool | None = None, notify: bool = True,
                 latest_interval_s: float = 1.0, rollup_interval_s: float = 10.0) -> None:
        super().__init__(dsn)
        self._rollups_setting = maintain_rollups   # None: decided by the storage tier
        self.maintain_rollups = True if maintain_rollups is None else maintain_rollups
        self.notify = notify
        self.latest_interval_s = latest_interval_s
        self.rollup_interval_s = rollup_interval_s
        self.pending = writes.Fold(summing=self.maintain_rollups)
        self._next_latest = 0.0
        self._next_rollup = time.monotonic() + rollup_interval_s
        self._owner: asyncio.Task | None = None
        self._requests: list[tuple[bool, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.folds = 0

    # ----- the writer's side ------------------------------------------------------------

    def add(self, rows: list[Sample], entries: list[dict]) -> None:
        """Rows and commit-log entries the writer just committed (same event loop, no I/O)."""
        quiet = not self.pending.latest
        self.pending.add(rows, entries)
        if quiet:
            self._wake.set()   # the first rows after a quiet spell are folded at once

    async def fold_now(self, *, rollups: bool = True) -> None:
        """Fold everything pending now (or its latest values only), and return when that is written."""
        if self._owner is None or self._owner.done() or asyncio.current_task() is self._owner:
            await self._fold(rollups=rollups)   # nobody runs the loop (a test, a tool): fold here
            return
        fut = asyncio.get_running_loop().create_future()
        self._requests.append((rollups, fut))
        self._wake.set()
        await fut

    # ----- the folder's task ------------------------------------------------------------------

    async def run(self) -> None:
        """Fold on time and on request until :meth:`stop`; then fold what is left and close."""
        self._owner = asyncio.current_task()
        await self._close()   # never reuse a connection a dead run may have left mid-transaction
        try:
            while True:
                await self._serve_requests()
                now = time.monotonic()
                due = self._due()
                if due <= now:
                    await self._fold(rollups=now >= self._next_rollup)
                    continue
                if self._stopping:
                    if self.pending:
                        await self._fold(rollups=True)
                    await self._serve_requests()
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), min(due - now, 1.0))
                except asyncio.TimeoutError:
                    pass
        finally:
            for _, fut in self._requests:
                if not fut.done():
                    fut.set_result(None)
            self._requests = []
            if self._stopping:
                await self._close()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _due(self) -> float:
        due = float("inf")
        if self.pending.latest:
            due = self._next_latest
        if self.pending.entries:
            due = min(due, self._next_rollup)
        return due

    async def _serve_requests(self) -> None:
        while self._requests:
            requests, self._requests = self._requests, []
            await self._fold(rollups=any(r for r, _ in requests))
            for _, fut in requests:
                if not fut.done():
                    fut.set_result(None)

    async def _setup(self, conn: psycopg.AsyncConnection) -> None:
        tier = await writes.prepare_session(conn)
        if self._rollups_setting is None:
            self.maintain_rollups = writes.writer_maintains_rollups(tier)
            self.pending.summing = self.maintain_rollups   # continuous aggregates need no partials

    async def _fold(self, *, rollups: bool) -> None:
        now = time.monotonic()
        pending = self.pending.take(rollups=rollups)
        self._next_latest = now + self.latest_interval_s
        if rollups:
            self._next_rollup = now + self.rollup_interval_s
        if not pending:
            return
        try:
            conn = await self._connection()
            async with conn.transaction():
                await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
                if not await writes.fold(conn, pending, rollups=self.maintain_rollups, notify=self.notify):
                    log.info("folder.left_to_repair", extra={"entries": len(pending.entries)})
            self.folds += 1
        except BaseException as exc:
            for sid, row in pending.latest.items():   # kept for the next fold; the entries go to the repair job
                cur = self.pending.latest.get(sid)
                if cur is None or row.time > cur.time:
                    self.pending.latest[sid] = row
            if isinstance(exc, TRANSIENT):
                await self._close()
                log.warning("folder.fold_failed", extra={"error": str(exc).splitlines()[0][:200] if str(exc) else
                                                         type(exc).__name__, "entries_left_to_repair": len(pending.entries)})
                return
            raise
