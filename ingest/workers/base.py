"""What every worker shares: converting connector samples, backoff, and gap bookkeeping."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timezone

from ingest.health import IntegrationHealth
from ingest.samples import QUALITY_CODES, Rejected, Sample, make_sample, time_window
from ingest.store import IngestStore, IntegrationSpec
from ingest.writer import Writer
from optria.config import Settings
from optria.connectors.base import Sample as SourceSample

log = logging.getLogger("optria.ingest.worker")


class Backoff:
    """Jittered exponential backoff: 0.5 s, 1 s, 2 s … capped, reset after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def reset(self) -> None:
        self.current = self.first

    async def wait(self) -> None:
        await asyncio.sleep(self.current * (0.5 + random.random()))
        self.current = min(self.current * 2, self.cap)


class BaseWorker:
    def __init__(self, spec: IntegrationSpec, config: dict, *, settings: Settings, writer: Writer,
                 health: IntegrationHealth, store: IngestStore) -> None:
        self.spec = spec
        self.config = config
        self.settings = settings
        self.writer = writer
        self.health = health
        self.store = store
        self.signal_by_external = spec.by_external_id()

    def convert(self, samples: list[SourceSample]) -> list[Sample]:
        """Connector samples → validated rows; malformed ones are counted per signal with their
        reason (and the source's own words for per-item errors) and dropped, never raised."""
        out: list[Sample] = []
        now = datetime.now(timezone.utc)
        earliest, latest = time_window(now)
        tenant_id, by_external = self.spec.tenant_id, self.signal_by_external
        for s in samples:
            signal_id = by_external.get(s.signal_id)
            if signal_id is None:
                self.health.reject("unknown_signal")
                continue
            if s.error:
                self.health.reject("source_error", signal_id=signal_id, detail=s.error)
                continue
            quality = QUALITY_CODES.get(s.quality, 3)
            value, t = s.value, s.time
            # the common case inline (make_sample's checks, tens of thousands a second): a finite
            # float (inf - inf and nan - nan are nan) at an aware time inside the window
            if type(value) is float and value - value == 0.0 and type(t) is datetime and t.tzinfo is not None \
                    and earliest <= t <= latest:
                out.append(Sample(tenant_id, signal_id, t, value, quality))
                continue
            try:
                out.append(make_sample(tenant_id, signal_id, t, value, quality, now))
            except Rejected as exc:
                self.health.reject(exc.reason, signal_id=signal_id)
        if len(out) < len(samples):
            log.debug("ingest.rejected", extra={"integration_id": self.spec.id, "count": len(samples) - len(out)})
        return out

    async def mark_stale(self) -> None:
        """Queue a stale mark for every signal (written in order behind the samples already queued)."""
        await self.writer.mark_stale(self.spec.tenant_id, list(self.signal_by_external.values()))

    async def close(self) -> None:
        return None
