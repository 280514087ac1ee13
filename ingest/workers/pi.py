"""PI Web API worker: every archived event of every point, whatever the poll interval.

Each poll reads ``streamsets/recorded`` from each point's *position* — the newest event time
stored or queued for it — up to now, so the events a point records between two polls are all
read, at 1 s or at 15 s polls alike. Choices that decide whether values are lost:

- Positions (:mod:`ingest.workers.polling`) come from ``signal_latest`` at start (a point never
  stored starts 10 minutes back, none more than 30 days back) and are kept in memory
  afterwards, moved only when rows are queued: a database outage never moves them, and a
  failed poll is read again from where the last queued row left off.
- One request serves many points: points are sorted by position and share a request whose
  ``startTime`` is the oldest position of the group while the events a point would read again
  stay few (its event density times the distance, at most ``REREAD_LIMIT``); events at or
  before a point's own position are dropped here (``boundaryType=Inside`` returns the event at
  ``startTime`` again). Full pages (``maxCount``) continue from their last timestamp, and each
  page is queued before the next is read, so memory stays bounded after a long outage.
- Live vs backfill: the first pass after start or after a failure reads back what was missed
  and is queued as BACKFILL; later polls are LIVE (their lag includes the poll wait, which is
  the true lag of a polled source). The rate is shown over max(60 s, four poll intervals).
- Per-item errors inside a 200/207 answer (unknown WebId, no read access, an ``Errors`` object
  on a stream or among its values) are counted per mapping with PI's own words and never stop
  the worker; the events around an error object are stored as usual.
  Digital states are stored with their number; system states (``Pt Created``, ``I/O Timeout``)
  as bad-quality rows without a value.
- Points without archive (an AF attribute without a PI point data reference) have a current
  value but no recorded values: their recorded read is refused with a per-item error, or
  stays empty. A point whose recorded read fails while its ``value`` works, or whose recorded
  reads stay empty past a current value seen earlier (a PI point's recorded data includes its
  snapshot, so with an archive that cannot happen), is polled with ``streamsets/value`` from
  then on; the choice is kept for the life of the worker and logged. Only the value current
  at each poll is stored for such points: the source keeps nothing else.
- A point never stored whose last event is older than the first read (a quiet point) gets
  that event, read with ``value`` (a PI point's current value is its newest recorded event),
  so its current value is known before it next changes.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from datetime import datetime, timedelta, timezone

from ingest.workers.polling import PollingWorker
from ingest.writer import BACKFILL, LIVE
from optria.connectors import pi
from optria.connectors.base import ConnectorError
from optria.connectors.base import Sample as SourceSample

log = logging.getLogger("optria.ingest.pi")

PAGE_SIZE = 1000                           # maxCount per stream and call
REREAD_LIMIT = 100                         # events a point may read again to share a request
PROBE_EVERY = timedelta(minutes=1)         # how often a point with empty reads has its value looked at


class PiWorker(PollingWorker):
    log = log
    failures = (ConnectorError, OSError, TimeoutError)
    initial_backfill = timedelta(minutes=10)   # a point never stored before: this much history
    max_backfill = timedelta(days=30)          # a point stored long ago: read back at most this much

    def __init__(self, spec, config: dict, *, settings, **kwargs) -> None:
        merged = pi.merge_config(config, settings)
        super().__init__(spec, merged, settings=settings, poll_interval=float(merged["poll_interval_s"]), **kwargs)
        self.client: pi.PiClient | None = None
        self.no_archive: dict[str, str] = {}          # WebId → why it is polled with `value`
        self._density: dict[str, float] = {}            # events/s before each point's position
        self._archive_seen: set[str] = set()            # recorded gave an event: the point has an archive
        self._probed_error: set[str] = set()            # value looked at after a recorded error
        self._probed_at: dict[str, datetime] = {}       # last look at the value of a point with empty reads
        self._pending: dict[str, SourceSample] = {}     # a current value newer than the position, not yet recorded

    def is_open(self) -> bool:
        return self.client is not None

    async def open(self) -> None:
        self.client = pi.PiClient(self.config)

    async def poll(self, kind: str) -> None:
        """One pass: recorded events of every archived point since its position, then current
        values of the points without archive."""
        end = datetime.now(timezone.utc)
        archived = [w for w in self.signal_by_external if w not in self.no_archive]
        if archived:
            await self._read_recorded(archived, end, kind)
        if self.no_archive:
            await self._read_values(list(self.no_archive))

    # ----- recorded ------------------------------------------------------------------------

    def _groups(self, web_ids: list[str]) -> list[tuple[datetime, list[str]]]:
        """Points sharing one request: ascending positions, each joining the current group while
        the events it would read again (between the group's start and its own position) are few."""
        assert self.client is not None
        unknown = 1.0 / max(self.poll_interval, 1.0)      # about one event per poll until measured
        groups: list[tuple[datetime, list[str]]] = []
        for web_id in sorted(web_ids, key=self.positions.__getitem__):
            position = self.positions[web_id]
            if groups:
                start, members = groups[-1]
                reread = self._density.get(web_id, unknown) * (position - start).total_seconds()
                if len(members) < self.client.batch_size and reread <= REREAD_LIMIT:
                    members.append(web_id)
                    continue
            groups.append((position, [web_id]))
        return groups

    async def _read_recorded(self, web_ids: list[str], end: datetime, kind: str) -> None:
        assert self.client is not None
        events = dict.fromkeys(web_ids, 0)      # events returned per point (re-read ones included)
        fresh_count = dict.fromkeys(web_ids, 0)
        refused: dict[str, str] = {}            # streams that failed as a whole, with PI's words
        for start, group in self._groups(web_ids):
            since = {w: self.positions[w] for w in group}
            async with aclosing(self.client.iter_recorded(group, start, end, PAGE_SIZE)) as pages:
                async for page in pages:
                    self.answered()
                    fresh, value_errors = [], []
                    at = self.positions.at      # read once per value: tens of thousands a second
                    for s in page.samples:
                        if s.error is not None:
                            value_errors.append(s)      # an error object among the values: counted
                            continue
                        events[s.signal_id] += 1
                        if s.time > at[s.signal_id]:
                            fresh.append(s)
                            fresh_count[s.signal_id] += 1
                    refused.update(page.stream_errors)
                    if value_errors:
                        self.convert(value_errors)
                    await self._queue(fresh, kind, end)
            for w in group:
                if events[w]:
                    self._archive_seen.add(w)
                    self._pending.pop(w, None)
                if fresh_count[w]:
                    self._density[w] = fresh_count[w] / max((end - since[w]).total_seconds(), 1e-3)
        if refused:
            await self._refused(refused, events, end)
        empty = [w for w in web_ids if not events[w] and w not in refused and w not in self._archive_seen]
        if empty:
            await self._empty_reads(empty, end)

    async def _queue(self, fresh: list[SourceSample], kind: str, end: datetime) -> None:
        """Queue new events and move their points' positions (rejected ones too: they were read)."""
        if not fresh:
            return
        rows = self.convert(fresh)
        if rows:
            await self.writer.put(rows, kind, self.spec.id)
        newest: dict[str, datetime] = {}          # per point, then one move each
        for s in fresh:
            t = newest.get(s.signal_id)
            if t is None or s.time > t:
                newest[s.signal_id] = s.time
        for web_id, t in newest.items():
            self.positions.advance(web_id, min(max(t, self.positions[web_id]), end))

    # ----- points without archive ----------------------------------------------------------

    async def _refused(self, refused: dict[str, str], events: dict[str, int], end: datetime) -> None:
        """Streams whose recorded read failed as a whole: if one gave no value and its current value
        reads fine, it has no archive (polled with `value` from now on); otherwise the error is the
        point's own (unknown WebId, no read access) and is counted per mapping."""
        assert self.client is not None
        probe = [w for w in refused if not events[w] and w not in self._archive_seen and w not in self._probed_error]
        switched: list[SourceSample] = []
        if probe:
            self._probed_error.update(probe)
            for s in await self.client.read_current(probe):
                if s.error is None:
                    self._no_archive(s.signal_id, f"recorded values refused: {refused[s.signal_id]}")
                    switched.append(s)
        await self._queue([s for s in switched if s.time > self.positions[s.signal_id]], LIVE, max(end, _now()))
        errors = [SourceSample(signal_id=w, time=end, value=None, quality="bad", error=message)
                  for w, message in refused.items() if w not in self.no_archive]
        if errors:
            self.convert(errors)     # counted per mapping, with PI's own words

    async def _empty_reads(self, empty: list[str], end: datetime) -> None:
        """Points whose recorded reads have given nothing yet: a current value seen newer than the
        position and older than this read's end, yet absent from it, means there is no archive."""
        assert self.client is not None
        switched, probe = [], []
        for w in empty:
            pending = self._pending.get(w)
            if pending is not None and pending.time <= end:
                del self._pending[w]
                self._no_archive(w, "recorded values stay empty while the current value changes")
                switched.append(pending)
            elif pending is None and (w not in self._probed_at or end - self._probed_at[w] >= PROBE_EVERY):
                self._probed_at[w] = end
                probe.append(w)
        await self._queue([s for s in switched if s.time > self.positions[s.signal_id]], LIVE, max(end, _now()))
        if not probe:
            return
        seeds = []
        for s in await self.client.read_current(probe):
            if s.error is not None:
                continue
            if s.time > self.positions[s.signal_id]:
                if s.quality != "bad":
                    self._pending[s.signal_id] = s
            elif s.signal_id in self.positions.unstored:
                seeds.append(s)     # a quiet point's last event, older than the first read: its current value
        await self._queue(seeds, BACKFILL, end)

    def _no_archive(self, web_id: str, reason: str) -> None:
        self.no_archive[web_id] = reason
        log.info("ingest.pi.no_archive", extra={"integration_id": self.spec.id, "web_id": web_id,
                                                "signal_id": self.signal_by_external.get(web_id),
                                                "reason": reason[:200]})

    async def _read_values(self, web_ids: list[str]) -> None:
        """Current values of the points without archive; PI repeats a value until it changes."""
        assert self.client is not None
        samples = await self.client.read_current(web_ids)
        self.answered()
        errors = [s for s in samples if s.error is not None]
        if errors:
            self.convert(errors)
        new = [s for s in samples if s.error is None and s.time > self.positions[s.signal_id]]
        await self._queue(new, LIVE, _now())

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.close()



def _now() -> datetime:
    return datetime.now(timezone.utc)
