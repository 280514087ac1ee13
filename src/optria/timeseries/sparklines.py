"""Recent history for small trend drawings: the twin cards' sparklines and the held value of a
change-only signal.

A signal that reports only changes (a pump's running state, a set point) has few samples: its
last value holds until the next change. :func:`recent` returns, per signal, the 1-minute
buckets of the window *and* the last value before it, so a drawing can start the window at
the value that held then and draw steps instead of a lone dot.

Tenant scope: every query takes the tenant id and filters by it, on top of row-level security.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

LOOKBACK = timedelta(days=7)   # how far before a window the value that held at its start is looked for

WINDOW = """
SELECT r.signal_id, extract(epoch FROM r.bucket)::float8 AS bucket, r.avg, r.last
FROM signal_1m r
WHERE r.tenant_id = %(tenant)s AND r.signal_id = ANY(%(signals)s::int8[]) AND r.bucket >= %(since)s
  AND r.bucket < %(until)s
ORDER BY r.signal_id, r.bucket
"""

# The last 1-minute bucket before the window, per signal (its ``last`` is the value that held).
BEFORE = """
SELECT s.signal_id, b.bucket, b.last
FROM unnest(%(signals)s::int8[]) AS s(signal_id)
CROSS JOIN LATERAL (
    SELECT r.bucket, r.last FROM signal_1m r
    WHERE r.tenant_id = %(tenant)s AND r.signal_id = s.signal_id AND r.bucket < %(since)s
      AND r.bucket >= %(lookback)s
    ORDER BY r.bucket DESC LIMIT 1
) b
"""

# Both in one round trip (a twin page draws 144 sparklines): the window's buckets, then the held values.
RECENT = f"""
SELECT w.*, false AS held FROM ({WINDOW}) w
UNION ALL
SELECT h.signal_id, NULL::double precision, NULL::double precision, h.last, true FROM ({BEFORE}) h
ORDER BY held, signal_id, bucket
"""


Bucket = tuple[float, float | None, float | None]   # a drawn bucket: start (epoch seconds), mean, last value


@dataclass
class Recent:
    """One signal's window: the value that held when it began (None: unknown) and its minute buckets
    as (start in epoch seconds, mean, last value), oldest first."""

    before: float | None = None
    buckets: list[Bucket] = field(default_factory=list)


async def recent(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], since: datetime,
                 until: datetime) -> dict[int, Recent]:
    """Per signal: the minute buckets with ``since <= bucket < until`` and the last value before ``since``."""
    out = {sid: Recent() for sid in signal_ids}
    if not signal_ids:
        return out
    params = {"tenant": tenant_id, "signals": list(signal_ids), "since": since, "until": until,
              "lookback": since - LOOKBACK}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(RECENT, params)
    for sid, bucket, avg, last, held in await cur.fetchall():
        r = out.setdefault(sid, Recent())
        if not held:
            r.buckets.append((bucket, avg, last))
        elif last is not None:
            r.before = last
    return out


class SettledWindows:
    """:func:`recent` for windows of settled minutes, kept per process between reads.

    The twin page draws the same signals' last hour again on every load (a control-room screen
    reloads it all day, and colleagues look at the same plant): its buckets end at minutes that
    have settled (``optria.twin.cards.settled_until``) and only move on once a minute. A signal's
    window is read again when its bounds move (at most about twice a minute); rows that arrive
    late for an already settled minute show from then on. Keyed by tenant and signal, so a
    tenant's read can never answer another's; at most ``max_signals`` signals are kept (the least
    recently drawn go first): 4,000 signals, 28 pages of cards, hold at most ~35 MB (an hour of
    minutes each), most often far less."""

    def __init__(self, max_signals: int = 4_000) -> None:
        self.max_signals = max_signals
        self._kept: OrderedDict[tuple[UUID, int], tuple[tuple[datetime, datetime], Recent]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def recent(self, conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], since: datetime,
                     until: datetime) -> dict[int, Recent]:
        """As :func:`recent` (with ``since`` taken to the next whole minute: the same buckets)."""
        since = _next_minute(since)
        bounds = (since, until)
        out: dict[int, Recent] = {}
        missing = []
        for sid in signal_ids:
            kept = self._kept.get((tenant_id, sid))
            if kept is not None and kept[0] == bounds:
                self._kept.move_to_end((tenant_id, sid))
                out[sid] = kept[1]
            else:
                missing.append(sid)
        if missing:
            for sid, r in (await recent(conn, tenant_id, missing, since, until)).items():
                self._kept[(tenant_id, sid)] = (bounds, r)
                self._kept.move_to_end((tenant_id, sid))
                out[sid] = r
            while len(self._kept) > self.max_signals:
                self._kept.popitem(last=False)
        return out


def _next_minute(t: datetime) -> datetime:
    """``t`` rounded up to a whole minute: minute buckets at or after it are the same as at or after ``t``."""
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=1)


async def held_before(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], at: datetime
                      ) -> dict[int, tuple[datetime, float]]:
    """Per signal, the last value stored before ``at`` (within ``LOOKBACK``) and its minute: the value
    that held at ``at`` for a signal that reports only changes."""
    if not signal_ids:
        return {}
    params = {"tenant": tenant_id, "signals": list(signal_ids), "since": at, "lookback": at - LOOKBACK}
    rows = await (await conn.execute(BEFORE, params)).fetchall()
    return {r["signal_id"]: (r["bucket"], r["last"]) for r in rows if r["last"] is not None}
