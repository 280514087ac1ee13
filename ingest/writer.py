"""The batch writer: the one path by which samples reach the database.

Workers put lists of samples (one OPC-UA publish response, one PI poll) on a bounded
queue, each list tagged live or backfill; ``put`` waits when it is full, which is the
backpressure. The writer drains whatever is queued (so each publish batch is flushed at
once, and batches grow by themselves under load) and commits in one transaction the SQL of
:mod:`optria.timeseries.writes`: the new samples and their ``sample_batches`` commit-log
rows. Latest values and rollups of what it committed are *folded* by the writer's
:class:`~ingest.folder.Folder`, beside it on a connection of its own: one upsert per signal
and fold instead of three per sample and batch, never in the samples' path; a fold that
never happens (the process died) is made up by the rollup repair job from the stored rows.

One task owns the writer's connection: everything that touches it — batches and stale
marks alike — goes through the queue and runs in that task, so two tasks can never share
it (a stale mark from a worker used to open a transaction on the writer's connection in the
middle of a COPY). The task is meant to be run under :func:`ingest.supervision.supervise`:
if it dies, the batch it held is kept and written first by the next run.

When the database is unreachable the writer keeps the batch, retries with jittered backoff
and lets the queue fill; ``put_or_spool`` (for callers that cannot wait) appends to the
fsynced spool instead, which is replayed first once the database answers. A batch that the
database refuses for another reason three times in a row (a bug, a constraint) is set aside
in the spool's rejected file, counted and logged, so one bad row cannot stop ingest. ``stop``
flushes within a deadline and spools what it could not write.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import psycopg

from ingest.connection import OwnConnection
from ingest.folder import Folder
from ingest.samples import Sample
from ingest.spool import Spool
from optria.db import INGEST_ROLE
from optria.timeseries import writes

log = logging.getLogger("optria.ingest.writer")

LIVE, BACKFILL = "live", "backfill"
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, OSError, asyncio.TimeoutError)
POISON_AFTER = 3          # failed attempts (not connection losses) before a batch is set aside


@dataclass
class WriterStats:
    committed: int = 0          # rows newly stored
    duplicates: int = 0         # rows already present (replays)
    rejected_unknown: int = 0   # unknown signal id or tenant mismatch
    rejected_old: int = 0       # older than the samples retention horizon
    set_aside: int = 0          # rows of batches the database refused (kept in the rejected spool)
    batches: int = 0
    retries: int = 0
    spooled: int = 0
    last_commit_at: float = 0.0
    db_up: bool = True
    last_error: str | None = None


@dataclass
class _Pending:
    samples: list[Sample]
    kind: str = LIVE
    done: asyncio.Future | None = None
    stale: tuple[UUID, list[int]] | None = None   # a stale mark instead of samples
    source: int | None = None                     # the integration that produced them (None: unknown)


@dataclass
class Commit:
    """What one transaction stored, per queued list: the observer splits it by integration."""

    parts: list[tuple[str, int | None, list[Sample]]]   # (kind, source integration, inserted rows) per queued list
    seconds: float
    committed_at: datetime                              # read as the transaction returned: the live-lag clock


class WriterConnectionShared(RuntimeError):
    """The writer's connection was asked for from a second task (a bug: it must never happen)."""


class Writer(OwnConnection):
    application_name = "optria-ingest-writer"

    def __init__(self, dsn: str, *, maintain_rollups: bool | None = None, queue_batches: int = 256,
                 max_batch_rows: int = 20_000, spool: Spool | None = None,
                 on_commit: Callable[[Commit], None] | None = None,
                 on_reject: Callable[[list[Sample], str], None] | None = None,
                 notify: bool = True, fold_interval_s: float = 1.0, rollup_interval_s: float = 10.0) -> None:
        super().__init__(dsn)
        # latest values and rollups: rollups decided by the storage tier when None (continuous aggregates
        # do them in the `timescale` tier)
        self.folder = Folder(dsn, maintain_rollups=maintain_rollups, notify=notify, latest_interval_s=fold_interval_s,
                             rollup_interval_s=rollup_interval_s)
        self.max_batch_rows = max_batch_rows
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_batches)
        self.spool = spool
        self.on_commit = on_commit
        self.on_reject = on_reject
        self.notify = notify
        self.stats = WriterStats()
        self._conn_task: asyncio.Task | None = None
        self._known: dict[int, int] = {}    # signal id → its tenant's UUID as an int (UUID == runs Python code)
        self._horizon: datetime | None = None
        self._horizon_read = 0.0
        self._inflight: list[_Pending] = []
        self._stale_overflow: list[_Pending] = []
        self._stopping = False
        self._deadline: float | None = None
        self._direct_copy = True
        self._managed = False     # a run loop owns the connection (set by run(), for good)
        self._task: asyncio.Task | None = None
        self._folder_task: asyncio.Task | None = None

    @property
    def maintain_rollups(self) -> bool:
        return self.folder.maintain_rollups

    # ----- producer side -----------------------------------------------------------------

    async def put(self, samples: list[Sample], kind: str = LIVE, source: int | None = None) -> None:
        """Queue samples; waits while the queue is full (backpressure)."""
        if samples:
            await self.queue.put(_Pending(samples, kind, source=source))

    def put_or_spool(self, samples: list[Sample], kind: str = LIVE, source: int | None = None) -> bool:
        """Queue without waiting; when the queue is full the samples go to the spool. Returns True if queued."""
        if not samples:
            return True
        try:
            self.queue.put_nowait(_Pending(samples, kind, source=source))
            return True
        except asyncio.QueueFull:
            if self.spool is None:
                raise
            self.spool.append(samples)
            self.stats.spooled += len(samples)
            return False

    async def write_and_wait(self, samples: list[Sample], kind: str = LIVE) -> None:
        """Queue samples and return once they are committed (acknowledgement after commit)."""
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(samples, kind, fut))
        await fut

    async def mark_stale(self, tenant_id: UUID, signal_ids: list[int]) -> None:
        """A source went away: its signals' latest values are no longer current.

        Queued behind the samples already waiting, so a row received before the loss cannot
        make a value look current again; never waits for room (a worker calls this on its
        reconnect path, which must not block while the database is down)."""
        if not signal_ids:
            return
        if not self._managed:
            await self._direct_stale(tenant_id, signal_ids)   # no writer loop: a test or a tool
            return
        mark = _Pending([], stale=(tenant_id, list(signal_ids)))
        try:
            self.queue.put_nowait(mark)
        except asyncio.QueueFull:
            self._stale_overflow.append(mark)

    @property
    def depth(self) -> int:
        return sum(len(p.samples) for p in list(self.queue._queue)) + sum(len(p.samples) for p in self._inflight)  # type: ignore[attr-defined]

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        """Run the loop, and the folder's, in tasks of their own (tests and tools; the ingest service
        supervises ``run`` and ``folder.run``)."""
        self._task = asyncio.create_task(self.run(), name="optria-writer")
        self._folder_task = asyncio.create_task(self.folder.run(), name="optria-folder")
        return self._task

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the running loop to flush what is queued within ``timeout`` (spooling what it
        cannot write), then close. A supervisor awaits its own task afterwards."""
        self._stopping = True
        self._deadline = time.monotonic() + timeout
        try:
            self.queue.put_nowait(_Pending([]))  # wake the loop
        except asyncio.QueueFull:
            pass
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout + 5)
            except asyncio.TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
                await self.drain_to_spool()
            self._task = None
        elif not self._managed:              # nobody runs the loop: drain here
            await self.drain_to_spool()
            await self._close()
        if self._folder_task is not None:    # the folder folds what is left, then closes
            await self.folder.stop()
            try:
                await asyncio.wait_for(self._folder_task, 15)
            except (asyncio.TimeoutError, Exception):
                self._folder_task.cancel()
            self._folder_task = None
        elif not self._managed and self.folder.pending:
            await self.folder.fold_now()

    async def drain_to_spool(self) -> int:
        """Put everything not yet written into the spool (the database is gone and we must exit)."""
        pending = self._inflight + self._stale_overflow
        self._inflight, self._stale_overflow = [], []
        while True:
            try:
                pending.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        rows = [s for p in pending for s in p.samples]
        if rows and self.spool is not None:
            self.spool.append(rows)
            self.stats.spooled += len(rows)
            log.warning("writer.spooled_on_stop", extra={"rows": len(rows)})
        elif rows:
            log.error("writer.lost_on_stop", extra={"rows": len(rows)})
        for p in pending:
            if p.done is not None and not p.done.done():
                p.done.set_exception(RuntimeError("the writer stopped before this batch was committed"))
        return len(rows)

    async def run(self) -> None:
        """The writer loop; returns after ``stop`` once the queue is empty. Raises on a bug (the
        supervisor restarts it); the batch in hand is kept for the next run."""
        self._managed = True
        self._conn_task = asyncio.current_task()
        await self._close()   # never reuse a connection a dead run may have left mid-transaction
        try:
            if not self._stopping:
                await self._replay_spool()
            while True:
                if not self._inflight:
                    self._inflight = await self._next_batch()
                if self._inflight:
                    await self._write_pending(self._inflight)
                    self._inflight = []
                if self.spool is not None and self.spool.pending_bytes() and not self._stopping:
                    await self._replay_spool()
                if self._stopping and self.queue.empty() and not self._stale_overflow:
                    return
        except _StopWriting:
            log.warning("writer.stop_deadline", extra={"pending": self.depth})
        finally:
            if self._stopping:
                if self._inflight or not self.queue.empty() or self._stale_overflow:
                    await self.drain_to_spool()
                await self._close()
            self._conn_task = None

    async def _next_batch(self) -> list[_Pending]:
        """What is queued (waiting for something to come)."""
        if not self.queue.empty() or not self._stale_overflow:
            first = await self.queue.get()
        else:
            first = self._stale_overflow.pop(0)
        batch = [first]
        rows = len(first.samples)
        while rows < self.max_batch_rows:
            try:
                nxt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                if self._stale_overflow:   # queued before the overflow: all written once the queue is empty
                    batch.extend(self._stale_overflow)
                    self._stale_overflow = []
                break
            batch.append(nxt)
            rows += len(nxt.samples)
        return batch

    async def _write_pending(self, batch: list[_Pending]) -> None:
        parts = [p for p in batch if p.samples or p.stale]
        if parts:
            await self._write_with_retry(parts)
        for p in batch:
            if p.done is not None and not p.done.done():
                p.done.set_result(None)

    # ----- database side -----------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection:
        current = asyncio.current_task()
        if self._conn_task is not None and current is not self._conn_task:
            raise WriterConnectionShared("the writer's connection may only be used by the writer task")
        return await super()._connection()

    async def _setup(self, conn: psycopg.AsyncConnection) -> None:
        has_ingest_role = (await (await conn.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
            [INGEST_ROLE])).fetchone() or [False])[0]
        # The ingest role may COPY (it bypasses row security, which refuses COPY FROM); without it
        # the writer stays the migrating user and inserts through staging under row security.
        self._direct_copy = bool(has_ingest_role)
        if has_ingest_role:
            await conn.execute(f"SET ROLE {INGEST_ROLE}")
        await writes.prepare_session(conn)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    async def _write_with_retry(self, parts: list[_Pending]) -> None:
        delay = 0.2
        refused = 0
        while True:
            if self._past_deadline():
                raise _StopWriting()
            try:
                await self.write_parts(parts)
                if not self.stats.db_up:
                    log.info("writer.database_back", extra={"retries": self.stats.retries})
                self.stats.db_up = True
                return
            except TRANSIENT as exc:
                self.stats.db_up = False
                self.stats.retries += 1
                self.stats.last_error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                log.warning("writer.database_unavailable", extra={"error": self.stats.last_error,
                                                                   "retry_in_s": round(delay, 2),
                                                                   "rows": sum(len(p.samples) for p in parts)})
                await self._close()
                if self._stopping:
                    raise _StopWriting()   # told to stop and the database is away: spool now, do not wait
            except psycopg.Error as exc:
                # refused for another reason: retry a little (a deadlock, a concurrent DDL), then set aside
                refused += 1
                self.stats.last_error = str(exc).splitlines()[0][:200]
                log.error("writer.batch_refused", extra={"error": self.stats.last_error, "attempt": refused})
                await self._close()
                if refused >= POISON_AFTER:
                    self._set_aside(parts, self.stats.last_error)
                    return
            pause = delay * (0.5 + random.random())
            if self._deadline is not None:
                pause = max(0.0, min(pause, self._deadline - time.monotonic()))
            await asyncio.sleep(pause)
            delay = min(delay * 2, 5.0)

    def _set_aside(self, parts: list[_Pending], reason: str) -> None:
        rows = [s for p in parts for s in p.samples]
        self.stats.set_aside += len(rows)
        if self.spool is not None and rows:
            self.spool.append_rejected(rows)
        log.error("writer.batch_set_aside", extra={"rows": len(rows), "error": reason,
                                                   "kept_in": str(self.spool.rejected_path) if self.spool else None})
        if self.on_reject is not None and rows:
            self.on_reject(rows, "write_refused")

    async def _filter(self, conn: psycopg.AsyncConnection, samples: list[Sample]) -> list[Sample]:
        """Drop samples whose signal id is unknown or belongs to another tenant, and samples older
        than the retention horizon (counted, reported to the observer, logged)."""
        missing = {s.signal_id for s in samples if s.signal_id not in self._known}
        if missing:
            self._known.update({sid: tenant.int for sid, tenant in
                                (await writes.known_signals(conn, list(missing))).items()})
        if time.monotonic() - self._horizon_read > 300:
            self._horizon = await writes.samples_horizon(conn)
            self._horizon_read = time.monotonic()
        horizon = self._horizon
        good, unknown, old = [], [], []
        for s in samples:
            if self._known.get(s.signal_id) != s.tenant_id.int:
                unknown.append(s)
            elif horizon is not None and s.time < horizon:
                old.append(s)
            else:
                good.append(s)
        for rows, reason in ((unknown, "unknown_signal"), (old, "older_than_retention")):
            if not rows:
                continue
            if reason == "unknown_signal":
                self.stats.rejected_unknown += len(rows)
            else:
                self.stats.rejected_old += len(rows)
            log.warning("writer.rejected", extra={"count": len(rows), "reason": reason})
            if self.on_reject is not None:
                self.on_reject(rows, reason)
        return good

    async def write_batch(self, samples: list[Sample], kind: str = LIVE) -> int:
        """One transaction for ``samples``, then the fold; returns the number of rows newly stored
        (tests and tools: the running writer folds on its own clock)."""
        n = await self.write_parts([_Pending(samples, kind)])
        await self.fold_now()
        return n

    async def fold_now(self) -> None:
        """Fold everything committed so far into latest values and rollups, now."""
        await self.folder.fold_now(rollups=True)

    async def write_parts(self, parts: list[_Pending]) -> int:
        """Commit ``parts``: samples in one transaction; a stale mark after what was queued before it
        is committed and folded, so a value received before the loss cannot look current again."""
        total = 0
        run: list[_Pending] = []
        for p in parts:
            if p.stale is None:
                run.append(p)
                continue
            if run:
                total += await self._commit(run)
                run = []
            await self.folder.fold_now(rollups=False)   # the latest values of what came before the mark
            conn = await self._connection()
            async with conn.transaction():
                await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
                await writes.mark_stale(conn, p.stale[0], p.stale[1], notify=self.notify)
        if run:
            total += await self._commit(run)
        return total

    async def _commit(self, parts: list[_Pending]) -> int:
        started = time.perf_counter()
        conn = await self._connection()
        ingest_time = datetime.now(timezone.utc)
        stored: list[tuple[str, int | None, list[Sample]]] = []
        async with conn.transaction():
            await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
            for p in parts:
                good = await self._filter(conn, p.samples)
                if good:
                    stored.append((p.kind, p.source, good))
            inserted, new, keys = await self._store(conn, stored, ingest_time)
        committed_at = datetime.now(timezone.utc)   # the lag clock: before the fold's own work below
        if new:   # committed: now it may reach the latest values and the rollups
            self.folder.add(new, keys)
        self._account(inserted, started, committed_at)
        return sum(len(rows) for _, _, rows in inserted)

    async def _store(self, conn: psycopg.AsyncConnection, parts: list[tuple[str, int | None, list[Sample]]],
                     ingest_time: datetime) -> tuple[list[tuple[str, int | None, list[Sample]]], list[Sample], list]:
        """Write ``parts`` inside the open transaction: (kind, source, inserted rows) per part, all the
        new rows, and the commit-log entries that describe them."""
        samples = [s for _, _, rows in parts for s in rows] if len(parts) > 1 else (parts[0][2] if parts else [])
        if not samples:
            return [], [], []
        new = await self._insert(conn, samples, ingest_time)
        if new is samples:
            inserted = parts
        else:
            keys = {(s.signal_id, s.time) for s in new}
            seen: set[tuple[int, datetime]] = set()   # one part may repeat a row of another: count it once
            inserted = []
            for kind, source, rows in parts:
                keep = []
                for s in rows:
                    k = (s.signal_id, s.time)
                    if k in keys and k not in seen:
                        seen.add(k)
                        keep.append(s)
                inserted.append((kind, source, keep))
        self.stats.duplicates += len(samples) - len(new)
        entries = []
        if new:
            entries = await writes.record_batches(conn, new, ingest_time)
        return inserted, new, entries

    def _account(self, inserted: list[tuple[str, int | None, list[Sample]]], started: float,
                 committed_at: datetime) -> None:
        n = sum(len(rows) for _, _, rows in inserted)
        self.stats.committed += n
        self.stats.batches += 1
        self.stats.last_commit_at = time.time()
        if self.on_commit is not None and n:
            self.on_commit(Commit(inserted, time.perf_counter() - started, committed_at))

    async def _insert(self, conn: psycopg.AsyncConnection, samples: list[Sample], ingest_time: datetime) -> list[Sample]:
        if not self._direct_copy:
            return await writes.insert_new_samples(conn, samples, ingest_time)
        try:
            async with conn.transaction():  # savepoint: the fast path may conflict
                await writes.copy_samples(conn, samples, ingest_time)
            return samples
        except psycopg.errors.UniqueViolation:
            pass
        return await writes.insert_new_samples(conn, samples, ingest_time)

    async def _direct_stale(self, tenant_id: UUID, signal_ids: list[int]) -> None:
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
            await writes.mark_stale(conn, tenant_id, signal_ids, notify=self.notify)

    async def _replay_spool(self) -> None:
        if self.spool is None:
            return
        for path in self.spool.take():
            replayed = 0
            for batch in Spool.read_batches(path):
                await self._write_with_retry([_Pending(batch, BACKFILL)])
                replayed += len(batch)
            Spool.done(path)
            log.info("writer.spool_replayed", extra={"rows": replayed, "file": path.name})


class _StopWriting(Exception):
    """The stop deadline passed while the database was away: the run loop spools the rest."""
