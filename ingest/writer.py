"""The batch writer: the one path by which samples reach the database.

Workers put lists of samples (one OPC-UA publish response, one PI poll) on a bounded
queue; ``put`` waits when it is full, which is the backpressure. The writer drains
whatever is queued (so each publish batch is flushed at once, and batches grow by
themselves under load) and commits in one transaction:

1. binary COPY straight into ``signal_samples`` inside a savepoint — the common case of
   fresh data; when a row already exists (a replayed backfill), the savepoint is rolled
   back and the batch goes through a staging table with ``INSERT … ON CONFLICT DO NOTHING
   RETURNING``, so a replay never duplicates;
2. forward-only upsert of ``signal_latest`` and, in tiers without continuous aggregates,
   of the 1-minute and 1-hour rollups — computed only from rows actually inserted, so they
   stay exact under replays — with binary array parameters;
3. ``NOTIFY optria_live`` with a compact per-tenant summary.

When the database is unreachable the writer keeps the batch, retries with jittered
backoff and lets the queue fill; ``put_or_spool`` (for callers that cannot wait) appends
to the fsynced spool instead, which is replayed first once the database answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

import psycopg
from psycopg import sql

from ingest.samples import Sample
from ingest.spool import Spool
from optria.db import APP_ROLE, INGEST_ROLE

log = logging.getLogger("optria.ingest.writer")

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS _optria_staging (
    tenant_id uuid, signal_id bigint, time timestamptz, value double precision, quality smallint,
    ingest_time timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _optria_latest (
    tenant_id uuid, signal_id bigint, time timestamptz, value double precision, quality smallint,
    ingest_time timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS _optria_rollup (
    width integer, tenant_id uuid, signal_id bigint, bucket timestamptz, n integer, sum double precision,
    min double precision, max double precision, last double precision, last_time timestamptz
) ON COMMIT DELETE ROWS
"""
COPY_COLUMNS = "(tenant_id, signal_id, time, value, quality, ingest_time)"
COPY_TYPES = ["uuid", "int8", "timestamptz", "float8", "int2", "timestamptz"]
ROLLUP_TYPES = ["int4", "uuid", "int8", "timestamptz", "int4", "float8", "float8", "float8", "float8", "timestamptz"]

INSERT_FROM_STAGING = """
INSERT INTO signal_samples (tenant_id, signal_id, time, value, quality, ingest_time)
SELECT tenant_id, signal_id, time, value, quality, ingest_time FROM _optria_staging
ON CONFLICT DO NOTHING
RETURNING tenant_id, signal_id, time, value, quality
"""

UPSERT_LATEST = """
INSERT INTO signal_latest AS l (tenant_id, signal_id, time, value, quality, ingest_time)
SELECT tenant_id, signal_id, time, value, quality, ingest_time FROM _optria_latest
ON CONFLICT (tenant_id, signal_id) DO UPDATE
SET time = EXCLUDED.time, value = EXCLUDED.value, quality = EXCLUDED.quality, ingest_time = EXCLUDED.ingest_time
WHERE EXCLUDED.time > l.time OR (EXCLUDED.time = l.time AND l.quality = 4)
"""

UPSERT_ROLLUP = """
INSERT INTO {table} AS r (tenant_id, signal_id, bucket, n, sum, min, max, last, last_time)
SELECT tenant_id, signal_id, bucket, n, sum, min, max, last, last_time FROM _optria_rollup WHERE width = %(width)s
ON CONFLICT (tenant_id, signal_id, bucket) DO UPDATE
SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min),
    max = greatest(r.max, EXCLUDED.max),
    last = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
    last_time = greatest(r.last_time, EXCLUDED.last_time)
"""
ROLLUP_TABLES = {60: "signal_1m_rollup", 3600: "signal_1h_rollup"}

KNOWN_SIGNALS = "SELECT id, tenant_id FROM signals WHERE id = ANY(%(ids)s::int8[])"
MARK_STALE = """
UPDATE signal_latest SET quality = 4, ingest_time = now()
WHERE tenant_id = %(tenant)s AND signal_id = ANY(%(signals)s::int8[]) AND quality <> 4
"""


@dataclass
class WriterStats:
    committed: int = 0          # rows newly stored
    duplicates: int = 0         # rows already present (replays)
    rejected_unknown: int = 0   # unknown signal id or tenant mismatch
    batches: int = 0
    retries: int = 0
    spooled: int = 0
    last_commit_at: float = 0.0
    db_up: bool = True


@dataclass
class _Pending:
    samples: list[Sample]
    done: asyncio.Future | None = None


def rollup_rows(rows: Iterable[Sample]) -> list[tuple]:
    """1-minute partial aggregates of inserted rows in one pass, and 1-hour partials folded from
    those (so each row is touched once). Rows: (width, tenant, signal, bucket, n, sum, min, max,
    last, last_time), ready for COPY."""
    minute: dict[tuple, list] = {}
    for s in rows:
        v = s.value
        if v is None:
            continue
        ts = s.time.timestamp()
        key = (s.tenant_id, s.signal_id, int(ts // 60))
        a = minute.get(key)
        if a is None:
            minute[key] = [1, v, v, v, v, s.time]
        else:
            a[0] += 1
            a[1] += v
            if v < a[2]:
                a[2] = v
            elif v > a[3]:
                a[3] = v
            if s.time >= a[5]:
                a[4] = v
                a[5] = s.time
    hour: dict[tuple, list] = {}
    out: list[tuple] = []
    for (tenant, signal, m), (n, total, mn, mx, last, last_time) in minute.items():
        out.append((60, tenant, signal, datetime.fromtimestamp(m * 60, timezone.utc), n, total, mn, mx, last, last_time))
        key = (tenant, signal, m // 60)
        h = hour.get(key)
        if h is None:
            hour[key] = [n, total, mn, mx, last, last_time]
        else:
            h[0] += n
            h[1] += total
            h[2] = min(h[2], mn)
            h[3] = max(h[3], mx)
            if last_time >= h[5]:
                h[4], h[5] = last, last_time
    for (tenant, signal, hr), (n, total, mn, mx, last, last_time) in hour.items():
        out.append((3600, tenant, signal, datetime.fromtimestamp(hr * 3600, timezone.utc), n, total, mn, mx, last, last_time))
    return out


def latest_rows(rows: Iterable[Sample], ingest_time: datetime) -> list[tuple]:
    """The newest row per signal, for the forward-only upsert of signal_latest."""
    newest: dict[int, Sample] = {}
    for s in rows:
        cur = newest.get(s.signal_id)
        if cur is None or s.time > cur.time:
            newest[s.signal_id] = s
    return [(s.tenant_id, s.signal_id, s.time, s.value, s.quality, ingest_time) for s in newest.values()]


async def copy_rows(conn: psycopg.AsyncConnection, table: str, columns: str, types: list[str], rows: Iterable[tuple]) -> None:
    async with conn.cursor().copy(f"COPY {table} {columns} FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(types)
        for row in rows:
            await cp.write_row(row)


class Writer:
    def __init__(self, dsn: str, *, maintain_rollups: bool | None = None, queue_batches: int = 256,
                 max_batch_rows: int = 20_000, spool: Spool | None = None,
                 on_commit: Callable[[list[Sample], float], None] | None = None,
                 notify: bool = True) -> None:
        self.dsn = dsn
        # None: decided by the storage tier (continuous aggregates do it in the `timescale` tier)
        self._rollups_setting = maintain_rollups
        self.maintain_rollups = True if maintain_rollups is None else maintain_rollups
        self.max_batch_rows = max_batch_rows
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_batches)
        self.spool = spool
        self.on_commit = on_commit
        self.notify = notify
        self.stats = WriterStats()
        self._conn: psycopg.AsyncConnection | None = None
        self._known: dict[int, UUID] = {}
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._direct_copy = True

    # ----- producer side -----------------------------------------------------------------

    async def put(self, samples: list[Sample]) -> None:
        """Queue samples; waits while the queue is full (backpressure)."""
        if samples:
            await self.queue.put(_Pending(samples))

    def put_or_spool(self, samples: list[Sample]) -> bool:
        """Queue without waiting; when the queue is full the samples go to the spool. Returns True if queued."""
        if not samples:
            return True
        try:
            self.queue.put_nowait(_Pending(samples))
            return True
        except asyncio.QueueFull:
            if self.spool is None:
                raise
            self.spool.append(samples)
            self.stats.spooled += len(samples)
            return False

    async def write_and_wait(self, samples: list[Sample]) -> None:
        """Queue samples and return once they are committed (acknowledgement after commit)."""
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(samples, fut))
        await fut

    @property
    def depth(self) -> int:
        return sum(len(p.samples) for p in list(self.queue._queue))  # type: ignore[attr-defined]

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name="optria-writer")
        return self._task

    async def stop(self, timeout: float = 30.0) -> None:
        """Flush everything queued, then close."""
        self._stopping = True
        await self.queue.put(_Pending([]))  # wake the loop
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
                log.error("writer.stop_timeout", extra={"pending": self.depth})
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def run(self) -> None:
        await self._replay_spool()
        while True:
            first = await self.queue.get()
            batch = [first]
            rows = len(first.samples)
            while rows < self.max_batch_rows:
                try:
                    nxt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                batch.append(nxt)
                rows += len(nxt.samples)
            samples = [s for p in batch for s in p.samples]
            if samples:
                await self._write_with_retry(samples)
                if self.spool is not None and self.spool.pending_bytes():
                    await self._replay_spool()
            for p in batch:
                if p.done is not None and not p.done.done():
                    p.done.set_result(None)
            if self._stopping and self.queue.empty():
                return

    # ----- database side -----------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=False, connect_timeout=5,
                                                         application_name="optria-ingest-writer")
            has_ingest_role = (await (await conn.execute(
                "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
                [INGEST_ROLE])).fetchone() or [False])[0]
            self._direct_copy = bool(has_ingest_role)
            await conn.execute(f"SET ROLE {INGEST_ROLE if has_ingest_role else APP_ROLE}")
            await conn.execute(STAGING_DDL)
            if self._rollups_setting is None:
                row = await (await conn.execute("SELECT tier FROM storage_capabilities")).fetchone()
                self.maintain_rollups = not (row and row[0] == "timescale")
            await conn.commit()
            self._conn = conn
        return self._conn

    async def _write_with_retry(self, samples: list[Sample]) -> None:
        delay = 0.2
        while True:
            try:
                await self.write_batch(samples)
                if not self.stats.db_up:
                    log.info("writer.database_back", extra={"retries": self.stats.retries})
                self.stats.db_up = True
                return
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                self.stats.db_up = False
                self.stats.retries += 1
                log.warning("writer.database_unavailable", extra={"error": str(exc).splitlines()[0][:200],
                                                                   "retry_in_s": round(delay, 2), "rows": len(samples)})
                if self._conn is not None:
                    try:
                        await self._conn.close()
                    except Exception:
                        pass
                    self._conn = None
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    async def _filter_known(self, conn: psycopg.AsyncConnection, samples: list[Sample]) -> list[Sample]:
        """Drop samples whose signal id is unknown or belongs to another tenant (counted, logged)."""
        missing = {s.signal_id for s in samples if s.signal_id not in self._known}
        if missing:
            cur = await conn.execute(KNOWN_SIGNALS, {"ids": list(missing)})
            for row in await cur.fetchall():
                self._known[row[0]] = row[1]
        good = [s for s in samples if self._known.get(s.signal_id) == s.tenant_id]
        bad = len(samples) - len(good)
        if bad:
            self.stats.rejected_unknown += bad
            log.warning("writer.rejected_unknown_signals", extra={"count": bad})
        return good

    async def write_batch(self, samples: list[Sample]) -> int:
        """One transaction for the batch; returns the number of rows newly stored."""
        started = time.perf_counter()
        conn = await self._connection()
        ingest_time = datetime.now(timezone.utc)
        async with conn.transaction():
            await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
            samples = await self._filter_known(conn, samples)
            if not samples:
                return 0
            inserted = await self._insert_samples(conn, samples, ingest_time)
            if inserted:
                await copy_rows(conn, "_optria_latest", COPY_COLUMNS, COPY_TYPES, latest_rows(inserted, ingest_time))
                await conn.execute(UPSERT_LATEST, prepare=True)
                if self.maintain_rollups:
                    partials = rollup_rows(inserted)
                    if partials:
                        await copy_rows(conn, "_optria_rollup", "", ROLLUP_TYPES, partials)
                        for width, table in ROLLUP_TABLES.items():
                            await conn.execute(sql.SQL(UPSERT_ROLLUP).format(table=sql.Identifier(table)),
                                               {"width": width}, prepare=True)
                if self.notify:
                    await self._notify(conn, inserted, ingest_time)
        self.stats.committed += len(inserted)
        self.stats.duplicates += len(samples) - len(inserted)
        self.stats.batches += 1
        self.stats.last_commit_at = time.time()
        if self.on_commit is not None:
            self.on_commit(inserted, time.perf_counter() - started)
        return len(inserted)

    async def _insert_samples(self, conn: psycopg.AsyncConnection, samples: list[Sample],
                              ingest_time: datetime) -> list[Sample]:
        if not self._direct_copy:
            return await self._insert_via_staging(conn, samples, ingest_time)
        try:
            async with conn.transaction():  # savepoint: the fast path may conflict
                await copy_rows(conn, "signal_samples", COPY_COLUMNS, COPY_TYPES,
                                ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, ingest_time) for s in samples))
            return samples
        except psycopg.errors.UniqueViolation:
            pass
        return await self._insert_via_staging(conn, samples, ingest_time)

    async def _insert_via_staging(self, conn: psycopg.AsyncConnection, samples: list[Sample],
                                  ingest_time: datetime) -> list[Sample]:
        await copy_rows(conn, "_optria_staging", COPY_COLUMNS, COPY_TYPES,
                        ((s.tenant_id, s.signal_id, s.time, s.value, s.quality, ingest_time) for s in samples))
        cur = await conn.execute(INSERT_FROM_STAGING)
        rows = await cur.fetchall()
        await conn.execute("TRUNCATE _optria_staging")
        return [Sample(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def _notify(self, conn: psycopg.AsyncConnection, inserted: list[Sample], ingest_time: datetime) -> None:
        per_tenant: dict[UUID, int] = {}
        for s in inserted:
            per_tenant[s.tenant_id] = per_tenant.get(s.tenant_id, 0) + 1
        for tenant, n in per_tenant.items():
            payload = json.dumps({"t": str(tenant), "n": n, "at": ingest_time.isoformat()})
            await conn.execute("SELECT pg_notify('optria_live', %s)", [payload])

    async def mark_stale(self, tenant_id: UUID, signal_ids: list[int]) -> None:
        """A source went away: its signals' latest values are no longer current."""
        if not signal_ids:
            return
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute("SELECT set_config('optria.platform', 'ingest', true)")
            await conn.execute(MARK_STALE, {"tenant": tenant_id, "signals": signal_ids})
            if self.notify:
                await conn.execute("SELECT pg_notify('optria_live', %s)",
                                   [json.dumps({"t": str(tenant_id), "n": 0, "stale": True})])

    async def _replay_spool(self) -> None:
        if self.spool is None:
            return
        for path in self.spool.take():
            replayed = 0
            for batch in Spool.read_batches(path):
                await self._write_with_retry(batch)
                replayed += len(batch)
            Spool.done(path)
            log.info("writer.spool_replayed", extra={"rows": replayed, "file": path.name})
