"""PI Web API worker: ``streamsets/value`` polling plus ``streamsets/recorded`` backfill.

After start-up and after any failed poll, each signal is backfilled from its last stored
timestamp (``signal_latest``), paging through ``maxCount``, so an outage leaves no hole.
Duplicates from overlapping windows are dropped by the writer's ON CONFLICT.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from ingest.workers.base import Backoff, BaseWorker
from optria.connectors import pi
from optria.connectors.base import ConnectorError

log = logging.getLogger("optria.ingest.pi")

INITIAL_BACKFILL = timedelta(minutes=10)   # a signal never stored before: this much history
MAX_BACKFILL = timedelta(days=7)


class PiWorker(BaseWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config = pi.merge_config(self.config, self.settings)
        self.poll_interval = float(self.config.get("poll_interval_s") or 5.0)
        self.client: pi.PiClient | None = None
        self._last_seen: dict[str, datetime] = {}

    async def run(self) -> None:
        backoff = Backoff()
        need_backfill = True
        web_ids = list(self.signal_by_external)
        while True:
            try:
                if self.client is None:
                    self.health.set_state("connecting")
                    self.client = pi.PiClient(self.config)
                if need_backfill:
                    self.health.set_state("backfilling", connected=True)
                    await self.backfill(web_ids)
                    need_backfill = False
                self.health.set_state("streaming", connected=True)
                await self.poll(web_ids)
                backoff.reset()
                await asyncio.sleep(self.poll_interval)
            except asyncio.CancelledError:
                raise
            except (ConnectorError, OSError, asyncio.TimeoutError) as exc:
                message = getattr(exc, "message", None) or type(exc).__name__
                log.warning("ingest.pi.poll_failed", extra={"integration_id": self.spec.id, "error": message[:200]})
                if self.health.connected:
                    await self.mark_stale()
                    self.health.reconnects += 1
                self.health.set_state("reconnecting", connected=False)
                self.health.error(message)
                need_backfill = True
                await self.close()
                await backoff.wait()

    async def poll(self, web_ids: list[str]) -> None:
        samples = await self.client.read_current(web_ids)
        fresh = []
        for s in samples:
            if s.error is None and self._last_seen.get(s.signal_id) == s.time:
                continue  # PI repeats the current value until it changes
            fresh.append(s)
            if s.error is None:
                self._last_seen[s.signal_id] = s.time
        rows = self.convert(fresh)
        if rows:
            await self.writer.put(rows)

    async def backfill(self, web_ids: list[str]) -> None:
        """Read the recorded values each signal missed since its last stored time."""
        now = datetime.now(timezone.utc)
        stored = await self.store.last_stored([self.signal_by_external[w] for w in web_ids])
        groups: dict[datetime, list[str]] = {}
        for w in web_ids:
            last = stored.get(self.signal_by_external[w])
            start = max(last, now - MAX_BACKFILL) if last else now - INITIAL_BACKFILL
            groups.setdefault(start.replace(microsecond=0), []).append(w)
        total = 0
        for start, ids in sorted(groups.items()):
            samples = await self.client.read_recorded(ids, start, now)
            rows = self.convert(samples)
            for i in range(0, len(rows), 10_000):
                await self.writer.put(rows[i:i + 10_000])
            total += len(rows)
        if total:
            log.info("ingest.pi.backfilled", extra={"integration_id": self.spec.id, "rows": total})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
