"""SQL worker: polls the source's query with a watermark (the newest time stored so far)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from ingest.workers.base import Backoff, BaseWorker
from optria.connectors import sql
from optria.connectors.base import ConnectorError

log = logging.getLogger("optria.ingest.sql")


class SqlWorker(BaseWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config = sql.merge_config(self.config, self.settings)
        self.conn = None

    async def run(self) -> None:
        backoff = Backoff()
        stored = await self.store.last_stored(list(self.signal_by_external.values()))
        watermark = max(stored.values(), default=datetime.now(timezone.utc) - timedelta(hours=1))
        while True:
            try:
                if self.conn is None:
                    self.health.set_state("connecting")
                    self.conn = await sql.connect(self.config)
                self.health.set_state("streaming", connected=True)
                samples = await sql.fetch_since(self.conn, self.config["query"], watermark)
                rows = self.convert(samples)
                if rows:
                    await self.writer.put(rows)
                    watermark = max(watermark, max(r.time for r in rows))
                backoff.reset()
                await asyncio.sleep(self.config["poll_interval_s"])
            except asyncio.CancelledError:
                raise
            except (ConnectorError, OSError) as exc:
                await self._failed(getattr(exc, "message", str(exc)), backoff)
            except Exception as exc:  # psycopg errors from the tenant's query
                await self._failed(str(exc).splitlines()[0][:200], backoff)

    async def _failed(self, message: str, backoff: Backoff) -> None:
        log.warning("ingest.sql.poll_failed", extra={"integration_id": self.spec.id, "error": message})
        if self.health.connected:
            await self.mark_stale()
            self.health.reconnects += 1
        self.health.set_state("reconnecting", connected=False)
        self.health.error(message)
        await self.close()
        await backoff.wait()

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
