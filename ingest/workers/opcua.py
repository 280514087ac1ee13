"""OPC-UA worker: one session and one subscription for the integration's mapped NodeIds.

Choices that decide whether values are lost:

- Monitored items ask for the sampling interval explicitly (0 = the server's fastest, or
  the configured one) and a queue size sized for the changes expected per publish; with
  server defaults (queue 1) a fast signal silently loses changes between publishes.
- Notifications are handled per publish response in one synchronous callback that turns
  the whole response into one batch for the writer — no task per value, and no bounded
  client-side queue that drops (asyncua's iterator queue drops the oldest by default).
  The callback never blocks the publish loop: when the writer's queue is full the batch
  goes to the fsynced spool.
- Any session, subscription or keep-alive failure builds a fresh client and session (the
  old one is discarded, never reused), with jittered exponential backoff; the window
  missed while disconnected is read back with HistoryRead from each signal's last stored
  time, where the server keeps history.
- Creation of monitored items respects the server's MaxMonitoredItemsPerCall.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asyncua import ua

from ingest.samples import BAD, GOOD, QUESTIONABLE, MAX_FUTURE, Sample
from ingest.workers.base import Backoff, BaseWorker
from optria.connectors import opcua
from optria.connectors.base import ConnectorError

log = logging.getLogger("optria.ingest.opcua")

MAX_BACKFILL = timedelta(hours=24)
DEFAULT_ITEMS_PER_CALL = 1000
_EPOCH_FLOOR = datetime(2000, 1, 1, tzinfo=timezone.utc)


class SessionLost(Exception):
    pass


class OpcUaWorker(BaseWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.merged = opcua.merge_config(self.config, self.settings)
        self.pki_dir = Path(self.settings.data_dir) / "pki"
        self.publishing_ms = float(self.merged.get("publishing_interval_ms") or 1000)
        self.sampling_ms = float(self.merged.get("sampling_interval_ms") or 0)
        self.queue_size = int(self.config.get("queue_size") or self._default_queue_size())
        self._handles: dict[int, int] = {}  # client handle → signal id
        self._last_publish = 0.0
        self._lost: asyncio.Event | None = None
        self.notifications = 0          # values received (for the benchmark)

    def _default_queue_size(self) -> int:
        per_publish = self.publishing_ms / max(self.sampling_ms or 50.0, 1.0)
        return max(10, int(math.ceil(per_publish * 4)))

    async def run(self) -> None:
        backoff = Backoff(first=0.5, cap=30.0)
        first = True
        while True:
            self.health.set_state("connecting" if first else "reconnecting", connected=False)
            try:
                async with opcua.open_client(self.merged, self.pki_dir) as client:
                    self._lost = asyncio.Event()
                    await self._subscribe(client)
                    self.health.set_state("backfilling", connected=True)
                    await self._backfill(client)
                    self.health.set_state("streaming", connected=True)
                    backoff.reset()
                    first = False
                    await self._watch(client)
            except asyncio.CancelledError:
                raise
            except (ConnectorError, SessionLost, ua.UaError, OSError, asyncio.TimeoutError, TimeoutError) as exc:
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                log.warning("ingest.opcua.session_failed", extra={"integration_id": self.spec.id,
                                                                  "error": message[:200]})
                if self.health.connected or not first:
                    await self.mark_stale()
                self.health.reconnects += 0 if first else 1
                first = False
                self.health.set_state("reconnecting", connected=False)
                self.health.error(message)
                await backoff.wait()

    async def _items_per_call(self, client) -> int:
        try:
            node = client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall))
            value = await node.read_value()
            return int(value) if value else DEFAULT_ITEMS_PER_CALL
        except Exception:
            return DEFAULT_ITEMS_PER_CALL

    async def _subscribe(self, client) -> None:
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = self.publishing_ms
        params.RequestedLifetimeCount = 10000
        params.RequestedMaxKeepAliveCount = max(3, int(5000 / max(self.publishing_ms, 1)))
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        result = await client.uaclient.create_subscription(params, self._on_publish)
        self.publishing_ms = result.RevisedPublishingInterval or self.publishing_ms
        self._handles = {}
        per_call = await self._items_per_call(client)
        signals = list(self.signal_by_external.items())
        failed = 0
        for start in range(0, len(signals), per_call):
            chunk = signals[start:start + per_call]
            items = []
            for offset, (external_id, signal_id) in enumerate(chunk):
                handle = start + offset + 1
                self._handles[handle] = signal_id
                rv = ua.ReadValueId()
                rv.NodeId = ua.NodeId.from_string(external_id)
                rv.AttributeId = ua.AttributeIds.Value
                mparams = ua.MonitoringParameters()
                mparams.ClientHandle = handle
                mparams.SamplingInterval = self.sampling_ms
                mparams.QueueSize = self.queue_size
                mparams.DiscardOldest = True
                req = ua.MonitoredItemCreateRequest()
                req.ItemToMonitor = rv
                req.MonitoringMode = ua.MonitoringMode.Reporting
                req.RequestedParameters = mparams
                items.append(req)
            cparams = ua.CreateMonitoredItemsParameters()
            cparams.SubscriptionId = result.SubscriptionId
            cparams.TimestampsToReturn = ua.TimestampsToReturn.Both
            cparams.ItemsToCreate = items
            for res in await client.uaclient.create_monitored_items(cparams):
                if not res.StatusCode.is_good():
                    failed += 1
        if failed:
            self.health.reject("monitored_item_failed", failed)
            log.warning("ingest.opcua.items_failed", extra={"integration_id": self.spec.id, "failed": failed})
        self._last_publish = time.monotonic()

    def _on_publish(self, result: ua.PublishResult) -> None:
        """One publish response → one batch. Runs inside asyncua's publish loop: keep it short."""
        self._last_publish = time.monotonic()
        data = result.NotificationMessage.NotificationData
        if not data:
            return
        rows: list[Sample] = []
        tenant = self.spec.tenant_id
        handles = self._handles
        now = datetime.now(timezone.utc)
        latest_ok = now + MAX_FUTURE
        rejected = 0
        for notif in data:
            if isinstance(notif, ua.DataChangeNotification):
                for item in notif.MonitoredItems:
                    signal_id = handles.get(item.ClientHandle)
                    dv = item.Value
                    if signal_id is None or dv is None:
                        rejected += 1
                        continue
                    row = _row(tenant, signal_id, dv, now, latest_ok)
                    if row is None:
                        rejected += 1
                    else:
                        rows.append(row)
            elif isinstance(notif, ua.StatusChangeNotification):
                if self._lost is not None:
                    self._lost.set()
        self.notifications += len(rows) + rejected
        if rejected:
            self.health.reject("malformed_value", rejected)
        if rows:
            self.writer.put_or_spool(rows)

    async def _watch(self, client) -> None:
        """Return (by raising) when the session, subscription or keep-alive fails."""
        from asyncua.client.ua_client import UaClientState

        stale_after = max(5.0, 4 * self.publishing_ms / 1000 + 5.0)
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), timeout=0.5)
                raise SessionLost("the server reported the subscription as lost")
            except asyncio.TimeoutError:
                pass
            if client.uaclient.state is not UaClientState.CONNECTED:
                raise SessionLost("connection to the OPC-UA server lost")
            if time.monotonic() - self._last_publish > stale_after:
                raise SessionLost(f"no publish response for {stale_after:.0f} s (keep-alive failed)")

    async def _backfill(self, client) -> None:
        """Read back, per signal, what the server kept since the last stored sample."""
        now = datetime.now(timezone.utc)
        stored = await self.store.last_stored(list(self.signal_by_external.values()))
        by_start: dict[datetime, list[str]] = {}
        for external_id, signal_id in self.signal_by_external.items():
            last = stored.get(signal_id)
            if last is None:
                continue  # never stored: nothing missed yet
            start = max(last, now - MAX_BACKFILL)
            by_start.setdefault(start, []).append(external_id)
        total = 0
        for start, node_ids in by_start.items():
            try:
                samples = await opcua.history_read(client, node_ids, start, now)
            except (ua.UaError, asyncio.TimeoutError) as exc:
                log.info("ingest.opcua.no_history", extra={"integration_id": self.spec.id, "error": str(exc)[:200]})
                return
            rows = self.convert(samples)
            for i in range(0, len(rows), 10_000):
                await self.writer.put(rows[i:i + 10_000])
            total += len(rows)
        if total:
            log.info("ingest.opcua.backfilled", extra={"integration_id": self.spec.id, "rows": total})


def _row(tenant, signal_id: int, dv: ua.DataValue, now: datetime, latest_ok: datetime) -> Sample | None:
    status = dv.StatusCode
    code = status.value if status is not None else 0
    severity = code >> 30  # 0 good, 1 uncertain, 2/3 bad
    quality = GOOD if severity == 0 else QUESTIONABLE if severity == 1 else BAD
    t = dv.SourceTimestamp or dv.ServerTimestamp
    if t is None:
        t = now
    elif t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    if t < _EPOCH_FLOOR or t > latest_ok:
        return None
    variant = dv.Value
    raw = variant.Value if variant is not None else None
    if quality == BAD:
        return Sample(tenant, signal_id, t, None, BAD)
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
    elif isinstance(raw, (int, float)):
        value = float(raw)
        if value != value or value in (math.inf, -math.inf):
            return None
    else:
        return None
    return Sample(tenant, signal_id, t, value, quality)
