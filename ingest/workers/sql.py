"""SQL worker: polls the tenant's query with a watermark per tag.

Each mapped tag has its own watermark: the newest source time stored or queued for it (from
``signal_latest`` at start — a tag never stored starts an hour back — then kept in memory and
moved only when rows are queued, so a database outage never moves it). A row is kept only if
it is newer than its own tag's watermark: a tag the historian writes late is never skipped
because another tag moved on, and a row already stored is not queued again.

The query receives ``%(watermark)s`` (the oldest watermark that still matters), ``%(tags)s``
and ``%(watermarks)s`` (each tag's own); see :mod:`optria.connectors.sql` for the two forms a
historian admin can write:

- the simple form (``WHERE ts > %(watermark)s``, what existing integrations use) reads every
  tag from the oldest watermark and the worker drops what it already has. So that one tag that
  stopped (a stopped machine, a tag missing from the source) does not make every poll read
  more and more, a tag more than ``LATE_WINDOW`` behind the newest tag no longer holds
  ``%(watermark)s`` back: its rows written more than that late would be missed, and a warning
  names the tag when that starts. Use the per-tag form to have no such window;
- the per-tag form (joining ``unnest(%(tags)s, %(watermarks)s)``) returns only new rows,
  however far behind a tag is; ``%(watermark)s`` is then the plain oldest watermark.

Pages: a query ordered by time with a LIMIT is read page after page within one poll, all in
one read-only snapshot of the source. While a page's newest row is older than one poll
interval, the query runs again at once from just below that newest time (rows at that very
time are read again, in case the LIMIT cut between them) until the rows reach the present or
stop moving.

Rows of tags that are not mapped are ignored. The first pass after start or after a failure is
queued as BACKFILL, later polls as LIVE.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import psycopg

from ingest.workers.polling import PollingWorker
from optria.connectors import sql
from optria.connectors.base import ConnectorError
from optria.connectors.base import Sample as SourceSample

log = logging.getLogger("optria.ingest.sql")

LATE_WINDOW = timedelta(hours=1)          # simple form: how far behind a tag may hold the query back
MAX_PAGES = 1000                          # per poll: the next poll goes on from there


class SqlWorker(PollingWorker):
    log = log
    failures = (ConnectorError, OSError, psycopg.Error)   # psycopg: the tenant's query failed, or the session
    initial_backfill = timedelta(hours=1)     # a tag never stored before: this much history
    max_backfill = timedelta(days=30)         # a tag stored long ago: read back at most this much

    def __init__(self, spec, config: dict, *, settings, **kwargs) -> None:
        merged = sql.merge_config(config, settings)
        super().__init__(spec, merged, settings=settings, poll_interval=max(0.5, float(merged["poll_interval_s"])),
                         **kwargs)
        self.per_tag = sql.uses_tag_watermarks(self.config["query"])
        self.conn: psycopg.AsyncConnection | None = None
        self._behind: set[str] = set()    # tags past the late window (warned once)

    def is_open(self) -> bool:
        return self.conn is not None

    async def open(self) -> None:
        self.conn = await sql.connect(self.config)

    def failure_message(self, exc: BaseException) -> str:
        if isinstance(exc, psycopg.Error):
            return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        return super().failure_message(exc)

    def _floor(self, tags: list[str]) -> datetime:
        """``%(watermark)s``: the oldest watermark, bounded by the late window in the simple form."""
        marks = {t: self.positions[t] for t in tags}
        oldest = min(marks.values())
        if self.per_tag:
            return oldest
        bound = max(marks.values()) - LATE_WINDOW
        behind = {t for t, m in marks.items() if m < bound}
        for tag in sorted(behind - self._behind):
            log.warning("ingest.sql.tag_behind_late_window", extra={
                "integration_id": self.spec.id, "tag": tag[:200], "watermark": marks[tag].isoformat(),
                "late_window_h": LATE_WINDOW.total_seconds() / 3600})
        self._behind = behind
        return max(oldest, bound)

    async def poll(self, kind: str) -> None:
        """One poll: the query, page after page while the rows are older than one poll interval."""
        assert self.conn is not None
        tags = list(self.signal_by_external)
        if not tags:
            return
        cursor = self._floor(tags)
        # All pages of a poll read one snapshot of the source. Without it, rows a late tag's writer
        # committed while the pages moved on were skipped for good: a later page read that tag's
        # newer rows past its watermark, over the older ones committed behind the pages (194 rows
        # of a late tag lost in one loaded test run). In one snapshot a tag's watermark only moves
        # over rows the poll saw, and the next poll reads on from it.
        async with self.conn.transaction():
            await self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for _ in range(MAX_PAGES):
                samples = await sql.fetch_since(self.conn, self.config["query"], cursor, tags=tags,
                                                watermarks=[self.positions[t] for t in tags])
                self.answered()
                times = await self._queue(samples, kind)
                if not times:
                    break
                top = max(times)
                if top >= datetime.now(timezone.utc) - timedelta(seconds=self.poll_interval):
                    break       # reached the present
                below = max((t for t in times if t < top), default=None)
                if below is None or below <= cursor:
                    break       # the rows stopped moving: the rest is for the next poll
                cursor = below

    async def _queue(self, samples: list[SourceSample], kind: str) -> list[datetime]:
        """Queue rows newer than their tag's watermark and move the watermarks; return the times
        of the mapped tags' rows (for paging)."""
        fresh: list[SourceSample] = []
        unreadable: list[SourceSample] = []
        times: list[datetime] = []
        for s in samples:
            mark = self.positions.get(s.signal_id)
            if mark is None:
                continue                    # a tag that is not mapped
            if not isinstance(s.time, datetime):
                unreadable.append(s)        # rejected (bad_timestamp) and counted by convert
                continue
            times.append(s.time)
            if s.time > mark:
                fresh.append(s)
        rows = self.convert(fresh + unreadable)
        if rows:
            await self.writer.put(rows, kind, self.spec.id)
        now = datetime.now(timezone.utc)   # a row stamped in the future must not hold its tag back
        for s in fresh:
            self.positions.advance(s.signal_id, min(s.time, now))
        return times

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                await conn.close()
            except (psycopg.Error, OSError):
                pass
