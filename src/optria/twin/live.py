"""Live twin updates: one LISTEN connection per web process, fanned out to the open pages by tenant.

The ingest writer (after each committed batch) and the scoring job (after a score changed)
send ``NOTIFY optria_live`` with a tiny payload naming the tenant. The hub listens on one
dedicated connection, started with the first subscriber. A notification for a tenant with
subscribers wakes that tenant's feed, which reads what changed since its previous read —
once, whatever the number of subscribers — builds the changed cards and hands each
subscriber the ones it shows. Notifications arriving while a read runs are coalesced into
the next read (at most one read per ``MIN_GAP_S``).

Isolation: a feed reads inside ``db.tenant(tenant)`` and only subscribers of that tenant are
in it; the payload is used to pick the feed, never as data. Back-pressure: every subscriber
has a bounded queue; when a client cannot keep up its queue overflows and that subscriber
is dropped (its stream ends, the browser reconnects and catches up) — the others never wait.
Subscribers hold no database connection; reads borrow a pooled one for a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg

from optria.db import Database
from optria.twin import cards, store

log = logging.getLogger("optria.twin.live")

CHANNEL = "optria_live"
QUEUE_SIZE = 32
MIN_GAP_S = 0.05
READ_SHARE = 4
OVERLAP = timedelta(seconds=3)
TOP_VALUES = 4
CLOSE = object()


@dataclass
class Event:
    """One message for subscribers: its id (database time of the read, ms), the cards by asset id,
    and — when a status changed — the tenant's asset counts by site and status (for the status strip)."""

    id: int
    now: float
    cards: dict[int, str]           # asset id -> the card's JSON
    counts: str | None = None       # JSON {site id: {status: n}}

    def payload(self, only: frozenset[int] | None) -> str | None:
        chosen = [c for a, c in self.cards.items() if only is None or a in only]
        if not chosen and self.counts is None:
            return None
        counts = f',"counts":{self.counts}' if self.counts is not None else ""
        return '{"now":%s,"cards":[%s]%s}' % (json.dumps(self.now), ",".join(chosen), counts)


@dataclass(eq=False)
class Subscriber:
    tenant_id: UUID
    only: frozenset[int] | None = None          # asset ids shown by the page (None: every asset)
    detail: frozenset[int] = frozenset()        # assets whose every signal the page shows
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False


@dataclass(eq=False)
class Feed:
    tenant_id: UUID
    subscribers: set[Subscriber] = field(default_factory=set)
    since: datetime = field(default_factory=lambda: datetime.now(timezone.utc) - OVERLAP)
    sent: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


def event_from_rows(rows: list[dict[str, Any]], now: datetime, counts: dict | None = None) -> Event:
    built = {r["id"]: json.dumps(cards.stream_card(cards.card(r)), separators=(",", ":")) for r in rows}
    return Event(id=int(now.timestamp() * 1000), now=round(now.timestamp(), 3), cards=built,
                 counts=None if counts is None else json.dumps(counts, separators=(",", ":")))


def next_read_in(read_s: float) -> float:
    """Seconds to wait after a read that took ``read_s``: reads start at least ``MIN_GAP_S`` and
    ``READ_SHARE`` times the read's own duration apart."""
    return max(0.0, max(MIN_GAP_S, READ_SHARE * read_s) - read_s)


class LiveHub:
    def __init__(self, db: Database, dsn: str | None = None) -> None:
        self.db = db
        self.dsn = dsn or db.dsn
        self.feeds: dict[UUID, Feed] = {}
        self.listening = asyncio.Event()
        self.notifications = 0
        self.dropped = 0
        self._listener: asyncio.Task | None = None
        self._closed = False

    # ----- subscribers -------------------------------------------------------------------

    def subscribe(self, tenant_id: UUID, *, only: frozenset[int] | None = None,
                  detail: frozenset[int] = frozenset()) -> Subscriber:
        sub = Subscriber(tenant_id, only, detail)
        if self._closed:  # the server is stopping: the stream ends at once
            sub.queue.put_nowait(CLOSE)
            return sub
        self._ensure_listener()
        feed = self.feeds.get(tenant_id)
        if feed is None:
            feed = self.feeds[tenant_id] = Feed(tenant_id)
            feed.task = asyncio.create_task(self._run_feed(feed), name=f"twin-feed-{tenant_id}")
        feed.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        feed = self.feeds.get(sub.tenant_id)
        if feed is None:
            return
        feed.subscribers.discard(sub)
        if not feed.subscribers:
            self.feeds.pop(sub.tenant_id, None)
            if feed.task is not None:
                feed.task.cancel()

    def subscriber_count(self, tenant_id: UUID | None = None) -> int:
        if tenant_id is not None:
            feed = self.feeds.get(tenant_id)
            return len(feed.subscribers) if feed else 0
        return sum(len(f.subscribers) for f in self.feeds.values())

    def _drop(self, feed: Feed, sub: Subscriber) -> None:
        """A subscriber whose queue is full: end its stream (it reconnects and catches up)."""
        sub.dropped = True
        self.dropped += 1
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(CLOSE)
        feed.subscribers.discard(sub)
        log.info("twin.live_subscriber_dropped", extra={"tenant_id": str(feed.tenant_id)})

    # ----- listening ---------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="twin-live-listener")

    async def _listen(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5,
                                                                 application_name="optria-web-live") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    for feed in list(self.feeds.values()):  # whatever happened while we were away
                        feed.wake.set()
                    async for note in conn.notifies():
                        self.notifications += 1
                        tenant = _tenant_of(note.payload)
                        feed = self.feeds.get(tenant) if tenant else None
                        if feed is not None:
                            feed.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                if self._closed:
                    return
                log.warning("twin.live_listener_lost", extra={"error": str(exc).splitlines()[0][:200] if str(exc) else
                                                              type(exc).__name__, "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # ----- per-tenant feeds --------------------------------------------------------------

    async def _run_feed(self, feed: Feed) -> None:
        while True:
            await feed.wake.wait()
            feed.wake.clear()
            if not feed.subscribers:
                return
            started = time.monotonic()
            try:
                await self._push(feed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("twin.live_read_failed", extra={"tenant_id": str(feed.tenant_id),
                                                            "error": str(exc).splitlines()[0][:200]})
                await asyncio.sleep(1.0)
                feed.wake.set()
            await asyncio.sleep(next_read_in(time.monotonic() - started))

    async def _push(self, feed: Feed) -> None:
        subs = list(feed.subscribers)
        only = None if any(s.only is None for s in subs) else sorted(set().union(*(s.only for s in subs)))  # type: ignore[arg-type]
        detail = sorted(set().union(*(s.detail for s in subs)))
        async with self.db.tenant(feed.tenant_id) as conn:
            now, rows = await store.changed_cards(conn, feed.tenant_id, feed.since, top=TOP_VALUES, only=only,
                                                  detail=detail)
            moved = [r for r in rows if feed.statuses.get(r["id"]) != r["status"]]
            counts = await store.status_by_site(conn, feed.tenant_id) if moved else None
        feed.since = now - OVERLAP
        feed.statuses.update({r["id"]: r["status"] for r in moved})
        event = event_from_rows(rows, now, counts)
        fresh = {a: c for a, c in event.cards.items() if feed.sent.get(a) != c}
        feed.sent.update(fresh)
        if not fresh and counts is None:
            return
        event.cards = fresh
        built: dict[frozenset[int] | None, str | None] = {}
        for sub in subs:
            if sub.dropped:
                continue
            if sub.only not in built:
                built[sub.only] = event.payload(sub.only)
            data = built[sub.only]
            if data is None:
                continue
            try:
                sub.queue.put_nowait((event.id, data))
            except asyncio.QueueFull:
                self._drop(feed, sub)

    # ----- lifecycle ---------------------------------------------------------------------

    def _end_all(self) -> None:
        """Every open stream ends (a full queue is dropped instead), new ones end at once."""
        self._closed = True
        for feed in list(self.feeds.values()):
            for sub in list(feed.subscribers):
                try:
                    sub.queue.put_nowait(CLOSE)
                except asyncio.QueueFull:
                    self._drop(feed, sub)

    def end_streams(self) -> None:
        """Stop serving: every open stream ends, new ones end at once (the server is stopping)."""
        self._end_all()
        log.info("twin.live_streams_ended", extra={"subscribers": self.subscriber_count()})

    async def close(self) -> None:
        self._end_all()
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        self.feeds.clear()
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass


def _tenant_of(payload: str) -> UUID | None:
    try:
        return UUID(str(json.loads(payload)["t"]))
    except (ValueError, KeyError, TypeError):
        return None


async def catch_up(db: Database, tenant_id: UUID, since: datetime, *, only: frozenset[int] | None,
                   detail: frozenset[int]) -> Event:
    """Cards changed after ``since`` (a reconnecting or just-opened page), read once for one subscriber."""
    async with db.tenant(tenant_id) as conn:
        now, rows = await store.changed_cards(conn, tenant_id, since - OVERLAP, top=TOP_VALUES,
                                              only=None if only is None else sorted(only), detail=sorted(detail))
        counts = await store.status_by_site(conn, tenant_id)
    return event_from_rows(rows, now, counts)


def hub_of(app: Any) -> LiveHub:
    """The app's hub, created on first use in the serving event loop."""
    hub = app.state.get("twin_hub")
    if hub is None:
        hub = LiveHub(app.state.db)
        app.state.twin_hub = hub
        if "granian" in sys.modules:
            _end_streams_on_exit_signal(hub)
    return hub


def _end_streams_on_exit_signal(hub: LiveHub) -> None:
    """Let a stopping server finish: granian waits for open requests before it shuts the app
    down, and an event stream never finishes by itself. On SIGTERM/SIGINT the hub ends every
    stream (browsers reconnect elsewhere, or here once the server is back).

    The previous Python-level handler is chained, not replaced: under asyncio's
    ``add_signal_handler`` (how granian's worker listens) it is a no-op and the loop is woken
    through the wakeup fd, which this does not touch."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, _previous=previous):
            loop.call_soon_threadsafe(hub.end_streams)
            if callable(_previous):
                _previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            return


async def close_hub(app: Any) -> None:
    """Shutdown hook: end open streams and stop listening."""
    hub = app.state.get("twin_hub")
    if hub is not None:
        await hub.close()
        app.state.twin_hub = None
