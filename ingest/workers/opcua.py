"""OPC-UA worker: one session and one subscription for the integration's mapped NodeIds.

Choices that decide whether values are lost:

- Monitored items ask for the sampling interval explicitly (0 = the server's fastest, or
  the configured one) and a queue size sized for the changes expected per publish; with
  server defaults (queue 1) a fast signal silently loses changes between publishes.
- Notifications are handled per publish response in one synchronous callback that turns
  the whole response into one batch for the writer — no task per value, and no bounded
  client-side queue that drops (asyncua's iterator queue drops the oldest by default).
  Data-change notifications are decoded by :mod:`ingest.opcua_fastdecode` (a few µs per
  value instead of asyncua's ~13), falling back to asyncua for unusual shapes.
  The callback never blocks the publish loop: when the writer's queue is full the batch
  goes to the fsynced spool.
- Any session, subscription or keep-alive failure builds a fresh client and session (the
  old one is closed, never reused; a stopped or restarted worker closes its session too, so
  the server does not keep it until its timeout), retrying every second or so with short
  connect timeouts, so the worker is back within about two seconds of the server.
- The window missed while disconnected is read back with HistoryRead, where the server keeps
  history: per signal from the newest value received before the loss (or, at start, the
  newest stored) up to after the first notification of the new subscription, so the two
  overlap (the writer drops the duplicates) and nothing at the edge is skipped. The read runs
  beside the live stream, which is never held up by it.
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
from asyncua.client.ua_client import UaClientState

from ingest.opcua_fastdecode import FastDataChange, install as install_fast_decoder
from ingest.samples import BAD, GOOD, QUESTIONABLE, MAX_FUTURE, Sample
from ingest.workers.base import Backoff, BaseWorker
from ingest.writer import BACKFILL, LIVE
from optria.connectors import opcua
from optria.connectors.base import ConnectorError

log = logging.getLogger("optria.ingest.opcua")

MAX_BACKFILL = timedelta(hours=24)
DEFAULT_ITEMS_PER_CALL = 1000
RECONNECT_CAP_S = 1.0          # attempts every 0.5–1.5 s while the server is away
RECONNECT_TIMEOUT_S = 2.0      # a reconnect attempt gives up this fast (or 2× the last connect time)
INITIAL_WAIT_S = 3.0           # how long backfill waits for each signal's first notification
HISTORY_NODES = 50             # nodes per HistoryRead call
HISTORY_VALUES = 500           # values per node per call (continuation points for the rest)
# A HistoryRead refused for its size: the next pass asks for half as much per call.
SMALLER_PAGES = frozenset({ua.StatusCodes.BadTooManyOperations, ua.StatusCodes.BadResponseTooLarge,
                           ua.StatusCodes.BadEncodingLimitsExceeded, ua.StatusCodes.BadTimeout})
# A value whose StatusCode carries InfoType "DataValue" and the Overflow bit (OPC UA Part 4, 7.39):
# the server's queue for its monitored item overflowed and dropped older values before it.
_OVERFLOW_MASK, _OVERFLOW = 0x0C80, 0x0480
OVERFLOW_GATHER_S = 1.0        # overflows within this long are read back from history in one pass
QUEUE_SECONDS = 10.0           # monitored-item queues hold this long of changes (a client stall)
_EPOCH_FLOOR = datetime(2000, 1, 1, tzinfo=timezone.utc)
_INF = math.inf


class SessionLost(Exception):
    pass


class OpcUaWorker(BaseWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        install_fast_decoder()
        self.merged = opcua.merge_config(self.config, self.settings)
        self.pki_dir = Path(self.settings.data_dir) / "pki"
        self.publishing_ms = float(self.merged.get("publishing_interval_ms") or 1000)
        self.sampling_ms = float(self.merged.get("sampling_interval_ms") or 0)
        self.queue_size = int(self.config.get("queue_size") or self._default_queue_size())
        self._handles: dict[int, int] = {}  # client handle → signal id
        self._last_publish = 0.0
        self._lost: asyncio.Event | None = None
        self._received: dict[int, datetime] = {}   # newest source time received per signal (any session)
        self._gap_from: dict[int, datetime] = {}   # a gap not yet read back: where its backfill starts
        self._first: dict[int, datetime] = {}      # first source time received per signal in this session
        self._first_all = asyncio.Event()
        self._overflowed: dict[int, tuple[datetime, datetime]] = {}   # signal → values its server queue dropped
        self._overflow_seen = asyncio.Event()
        self.overflows = 0              # values that arrived flagged with a queue overflow
        self._connect_s = 0.0
        self.notifications = 0          # values received (for the benchmark)

    def _default_queue_size(self) -> int:
        """Room for QUEUE_SECONDS of changes at the sampling interval (the publishing interval when
        the server samples as fast as it can): a client busy for a moment (decoding a backfill, a
        slow disk) must not make the server drop values. What overflows still is read back."""
        period_ms = max(self.sampling_ms or self.publishing_ms, 1.0)
        return max(10, min(1000, int(math.ceil(QUEUE_SECONDS * 1000 / period_ms))))

    def inherit(self, previous: OpcUaWorker) -> None:
        """Carry the gap memory of the worker this one replaces (same integration, same process)."""
        self._received = dict(previous._received)
        self._gap_from = {**previous._gap_from}

    async def run(self) -> None:
        backoff = Backoff(first=0.5, cap=RECONNECT_CAP_S)
        first = True
        while True:
            self.health.set_state("connecting" if first else "reconnecting", connected=False)
            limit = None if first else max(RECONNECT_TIMEOUT_S, 2 * self._connect_s)
            started = time.monotonic()
            backfill: asyncio.Task | None = None
            overflows: asyncio.Task | None = None
            try:
                async with opcua.open_client(self.merged, self.pki_dir, connect_timeout=limit) as client:
                    self._connect_s = time.monotonic() - started
                    self._lost = asyncio.Event()
                    # a gap still open from an earlier session (its backfill did not finish) starts there
                    since = {**self._received, **self._gap_from}
                    self._gap_from = dict(since)
                    self._overflowed = {}       # this session's backfill reads those from their start
                    await self._subscribe(client)
                    # "backfilling" until the gap before this session is read back (the Black Box
                    # waits for that before judging the newest rows: see LimitCollector)
                    self.health.set_state("backfilling", connected=True)
                    self.health.resolved()
                    backoff.reset()
                    first = False
                    backfill = asyncio.create_task(self._backfill(client, since), name=f"opcua-backfill-{self.spec.id}")
                    overflows = asyncio.create_task(self._read_overflows(client, backfill),
                                                    name=f"opcua-overflows-{self.spec.id}")
                    await self._watch(client, backfill, overflows)
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
                # not ours: asyncua cancelled a request of a session that went away under it
                await self._session_failed(SessionLost("the session's request was cancelled"), first, backoff)
                first = False
            except (ConnectorError, SessionLost, ua.UaError, OSError, asyncio.TimeoutError, TimeoutError) as exc:
                await self._session_failed(exc, first, backoff)
                first = False
            finally:
                for task in (backfill, overflows):
                    if task is not None:
                        if not task.done():
                            task.cancel()
                        await asyncio.gather(task, return_exceptions=True)   # retrieved, never left dangling

    async def _session_failed(self, exc: BaseException, first: bool, backoff: Backoff) -> None:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        log.warning("ingest.opcua.session_failed", extra={"integration_id": self.spec.id, "error": message[:200]})
        if self.health.connected or not first:
            await self.mark_stale()
        self.health.reconnects += 0 if first else 1
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
        self._handles = {}
        self._first = {}
        self._first_all = asyncio.Event()
        result = await client.uaclient.create_subscription(params, self._on_publish)
        self.publishing_ms = result.RevisedPublishingInterval or self.publishing_ms
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
            results = await client.uaclient.create_monitored_items(cparams)
            for (external_id, signal_id), res in zip(chunk, results):
                if not res.StatusCode.is_good():
                    failed += 1   # e.g. BadNodeIdUnknown: the tag was renamed or removed on the server
                    self.health.reject("monitored_item_failed", signal_id=signal_id,
                                       detail=f"{res.StatusCode.name}: {external_id}")
        if failed:
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
        lost: list[tuple[int, datetime]] = []
        for notif in data:
            if isinstance(notif, FastDataChange):   # the common shape, decoded without asyncua's objects
                for handle, code, t, raw in notif.items:
                    signal_id = handles.get(handle)
                    if signal_id is None:
                        rejected += 1
                        continue
                    if t is None:
                        t = now
                    if t < _EPOCH_FLOOR or t > latest_ok:
                        rejected += 1
                        continue
                    if code & _OVERFLOW_MASK == _OVERFLOW:
                        lost.append((signal_id, t))
                    severity = code >> 30   # 0 good, 1 uncertain, 2/3 bad
                    if severity >= 2:
                        rows.append(Sample(tenant, signal_id, t, None, BAD))
                        continue
                    if raw is None:
                        rejected += 1
                        continue
                    value = float(raw)
                    if value != value or value == _INF or value == -_INF:
                        rejected += 1
                        continue
                    rows.append(Sample(tenant, signal_id, t, value, GOOD if severity == 0 else QUESTIONABLE))
            elif isinstance(notif, ua.DataChangeNotification):
                for item in notif.MonitoredItems:
                    signal_id = handles.get(item.ClientHandle)
                    dv = item.Value
                    if signal_id is None or dv is None:
                        rejected += 1
                        continue
                    row = _row(tenant, signal_id, dv, now, latest_ok)
                    if row is not None and dv.StatusCode is not None and \
                            dv.StatusCode.value & _OVERFLOW_MASK == _OVERFLOW:
                        lost.append((signal_id, row.time))
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
        if lost:
            self._note_overflow(lost)
        if rows:
            received, first = self._received, self._first
            for r in rows:
                sid = r.signal_id
                if sid not in first:
                    first[sid] = r.time
                    if len(first) >= len(handles):
                        self._first_all.set()
                prev = received.get(sid)
                if prev is None or r.time > prev:
                    received[sid] = r.time
            self.writer.put_or_spool(rows, LIVE, self.spec.id)

    def _note_overflow(self, lost: list[tuple[int, datetime]]) -> None:
        """The server's queue overflowed: it dropped the values between the last one received
        and the flagged one, which its history still holds; note them for read-back (and in the
        gap memory, so a session lost meanwhile reads them in its successor's backfill)."""
        self.overflows += len(lost)
        for signal_id, t in lost:
            start = self._received.get(signal_id)
            if start is None or t <= start:   # nothing before it in this worker's memory: the backfill's part
                continue
            self._widen_overflow(signal_id, start, t)
            self._gap_from.setdefault(signal_id, start)
        if self._overflowed:
            self._overflow_seen.set()

    def _widen_overflow(self, signal_id: int, start: datetime, end: datetime) -> None:
        cur = self._overflowed.get(signal_id)
        self._overflowed[signal_id] = (start, end) if cur is None else (min(cur[0], start), max(cur[1], end))

    async def _read_overflows(self, client, backfill: asyncio.Task) -> None:
        """Read back from history what the server's queues dropped (see ``_note_overflow``):
        after the session's backfill (whose window is fixed when it starts), a burst at a time,
        again after a pause while the server refuses."""
        await asyncio.gather(backfill, return_exceptions=True)
        external = {sid: ext for ext, sid in self.signal_by_external.items()}
        retry = Backoff(first=2.0, cap=60.0)
        while True:
            await self._overflow_seen.wait()
            await asyncio.sleep(OVERFLOW_GATHER_S)
            self._overflow_seen.clear()
            batch, self._overflowed = self._overflowed, {}
            pending = {external[sid]: start for sid, (start, _) in batch.items() if sid in external}
            if not pending:
                continue
            end = max(e for _, e in batch.values())
            failed: dict[str, str] = {}
            rows = 0
            try:
                rows = await self._read_back(client, pending, end, [HISTORY_NODES, HISTORY_VALUES], failed)
            except ua.UaStatusCodeError as exc:
                if exc.code in opcua.NO_HISTORY_SERVICE:   # nowhere to read them from: said, and let go
                    log.warning("ingest.opcua.overflow_lost", extra={"integration_id": self.spec.id,
                                                                      "signals": len(batch)})
                    self.health.reject("queue_overflow", len(batch))
                    for sid in batch:
                        self._gap_from.pop(sid, None)
                    continue
                failed[""] = ua.StatusCode(exc.code).name
            except (asyncio.TimeoutError, TimeoutError):
                if client.uaclient.state is not UaClientState.CONNECTED:
                    return                                 # the session is going: its successor's backfill reads them
                failed[""] = "timeout"
            if pending:   # what is left goes back in the queue for the next pass
                for ext, start in pending.items():
                    sid = self.signal_by_external[ext]
                    self._widen_overflow(sid, start, batch[sid][1])
                self._overflow_seen.set()
                log.warning("ingest.opcua.overflow_unread", extra={"integration_id": self.spec.id,
                                                                    "signals": len(pending),
                                                                    "error": next(iter(failed.values()), "")})
                await retry.wait()
            else:
                retry.reset()
                log.info("ingest.opcua.overflow_read_back", extra={"integration_id": self.spec.id,
                                                                    "signals": len(batch), "rows": rows})

    async def _watch(self, client, backfill: asyncio.Task, overflows: asyncio.Task | None = None) -> None:
        """Return (by raising) when the session, subscription or keep-alive fails."""
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
            for task in (backfill, overflows):
                if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()

    async def _backfill(self, client, since: dict[int, datetime]) -> None:
        """The session's backfill (``_read_gap``); the worker streams once it ends, however it ends."""
        try:
            await self._read_gap(client, since)
        finally:
            if self.health.state == "backfilling":
                self.health.set_state("streaming", connected=True)

    async def _read_gap(self, client, since: dict[int, datetime]) -> None:
        """Read back, per signal, what the server kept between the newest value received before
        this session (or stored, at start, or left unread by a worker this one replaced) and the
        first notification of this session — page by page, keeping track of how far each signal
        got, so a session lost halfway loses no progress and gives up no part of the gap."""
        missing = [sid for sid in self.signal_by_external.values() if sid not in since]
        if missing:
            stored = await self._stored_with_retry(missing)
            noted = await self._retry(self.store.open_gap, self.spec)   # a gap another process left unread
            if noted is not None:
                stored = {sid: min(t, noted) for sid, t in stored.items()}
            since = {**stored, **since}
            for sid, t in stored.items():   # live rows of this session will move the stored time on
                self._gap_from.setdefault(sid, t)
        try:   # the first notification of every signal bounds the window (or a few seconds, whichever first)
            await asyncio.wait_for(self._first_all.wait(), timeout=max(INITIAL_WAIT_S, 3 * self.publishing_ms / 1000))
        except asyncio.TimeoutError:
            pass
        now = datetime.now(timezone.utc)
        pending: dict[str, datetime] = {}   # external id → where its unread history starts
        for external_id, signal_id in self.signal_by_external.items():
            last = since.get(signal_id)
            if last is not None:   # never stored: nothing missed yet
                pending[external_id] = max(last, now - MAX_BACKFILL)
        if not pending:
            self._forget_gaps()
            await self._retry(self.store.clear_gap, self.spec)
            return
        await self._retry(self.store.note_gap, self.spec, min(pending.values()))
        end = max([now, *self._first.values()])
        self.health.set_state("backfilling", connected=True)
        total, failed_before = 0, False
        retry = Backoff(first=2.0, cap=60.0)
        sizes = [HISTORY_NODES, HISTORY_VALUES]
        try:
            while pending:
                failed: dict[str, str] = {}
                try:
                    total += await self._read_back(client, pending, end, sizes, failed)
                except ua.UaStatusCodeError as exc:
                    if exc.code in opcua.NO_HISTORY_SERVICE:
                        log.info("ingest.opcua.no_history", extra={"integration_id": self.spec.id,
                                                                    "error": str(exc)[:200]})
                        self._forget_gaps()
                        await self._retry(self.store.clear_gap, self.spec)
                        return
                    if exc.code in SMALLER_PAGES:
                        sizes[:] = [max(1, sizes[0] // 2), max(10, sizes[1] // 2)]
                    failed[""] = ua.StatusCode(exc.code).name
                except (asyncio.TimeoutError, TimeoutError):   # no answer in time: smaller pages next pass
                    if client.uaclient.state is not UaClientState.CONNECTED:
                        raise
                    sizes[:] = [max(1, sizes[0] // 2), max(10, sizes[1] // 2)]
                    failed[""] = "timeout"
                if not pending:
                    break
                if failed:   # the gap stays (here and in the database) and is read again shortly
                    reason = next(iter(failed.values()))
                    log.warning("ingest.opcua.backfill_incomplete", extra={
                        "integration_id": self.spec.id, "signals": len(pending), "error": reason})
                    self.health.error(f"history of {len(pending)} signal(s) not read back yet ({reason}); retrying")
                    failed_before = True
                    await self._retry(self.store.note_gap, self.spec, min(pending.values()))
                    await retry.wait()
        finally:
            if self.health.state == "backfilling":
                self.health.set_state("streaming", connected=True)
        self._forget_gaps()
        await self._retry(self.store.clear_gap, self.spec)
        if failed_before:
            self.health.resolved()
        if total:
            log.info("ingest.opcua.backfilled", extra={"integration_id": self.spec.id, "rows": total})

    def _forget_gaps(self) -> None:
        """The backfill is done: its gaps are read, but not the overflows noted since it began."""
        self._gap_from = {sid: t for sid, t in self._gap_from.items() if sid in self._overflowed}

    async def _read_back(self, client, pending: dict[str, datetime], end: datetime, sizes: list[int],
                         failed: dict[str, str]) -> int:
        """One pass over the unread history: writes what comes back, moves each node's start on
        as its pages arrive, drops a node from ``pending`` once done, notes node failures."""
        by_start: dict[datetime, list[str]] = {}
        for external_id, start in pending.items():
            by_start.setdefault(start, []).append(external_id)
        total = 0
        for start, node_ids in sorted(by_start.items()):
            async for page in opcua.iter_history(client, node_ids, start, end, nodes_per_call=sizes[0],
                                                 values_per_node=sizes[1]):
                for part in page:
                    signal_id = self.signal_by_external[part.node_id]
                    rows = self.convert(part.samples)
                    if rows:
                        await self.writer.put(rows, BACKFILL, self.spec.id)
                        total += len(rows)
                    if part.done:
                        pending.pop(part.node_id, None)
                        self._gap_from.pop(signal_id, None)
                        continue
                    if part.error:
                        failed[part.node_id] = part.error
                    if part.samples:   # read up to here: the next pass (or session) goes on from this point
                        last = part.samples[-1].time
                        if last <= pending[part.node_id] and not part.error and not part.more:
                            # a full page all at its start time: a reread would return the same page
                            log.warning("ingest.opcua.history_stuck", extra={"integration_id": self.spec.id,
                                                                             "node": part.node_id[:200]})
                            pending.pop(part.node_id, None)
                            self._gap_from.pop(signal_id, None)
                            continue
                        pending[part.node_id] = max(pending[part.node_id], last)
                        self._gap_from[signal_id] = max(self._gap_from.get(signal_id, last), last)

                await asyncio.sleep(0)   # a long gap must not hold the event loop
        return total

    async def _retry(self, call, *args):
        """A store call, waiting for the database if it is away (the backfill task waits; streaming goes on)."""
        delay = 1.0
        while True:
            try:
                return await call(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ingest.opcua.store_unavailable", extra={"integration_id": self.spec.id,
                                                                     "error": str(exc)[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def _stored_with_retry(self, signal_ids: list[int]) -> dict[int, datetime]:
        """Where each signal left off in the database, waiting for the database if it is away."""
        return await self._retry(self.store.last_stored, signal_ids)


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
