"""Recent history for small trend drawings: the twin cards' sparklines and the held value of a
change-only signal.

A signal that reports only changes (a pump's running state, a set point) has few samples: its
last value holds until the next change. :func:`recent` returns, per signal, the 1-minute
buckets of the window *and* the last value before it, so a drawing can start the window at
the value that held then and draw steps instead of a lone dot.

Tenant scope: every query takes the tenant id and filters by it, on top of row-level security.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

LOOKBACK = timedelta(days=7)   # how far before a window the value that held at its start is looked for

WINDOW = """
SELECT r.signal_id, r.bucket, r.avg, r.last
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
SELECT h.signal_id, h.bucket, NULL::double precision, h.last, true FROM ({BEFORE}) h
ORDER BY held, signal_id, bucket
"""


@dataclass
class Recent:
    """One signal's window: the value that held when it began (None: unknown) and its minute buckets."""

    before: float | None = None
    before_time: datetime | None = None
    buckets: list[dict[str, Any]] = field(default_factory=list)   # bucket, avg, last; oldest first


async def recent(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], since: datetime,
                 until: datetime) -> dict[int, Recent]:
    """Per signal: the minute buckets with ``since <= bucket < until`` and the last value before ``since``."""
    out = {sid: Recent() for sid in signal_ids}
    if not signal_ids:
        return out
    params = {"tenant": tenant_id, "signals": list(signal_ids), "since": since, "until": until,
              "lookback": since - LOOKBACK}
    for row in await (await conn.execute(RECENT, params)).fetchall():
        r = out.setdefault(row["signal_id"], Recent())
        if not row.pop("held"):
            r.buckets.append(row)
        elif row["last"] is not None:
            r.before, r.before_time = row["last"], row["bucket"]
    return out


async def held_before(conn: AsyncConnection, tenant_id: UUID, signal_ids: Sequence[int], at: datetime
                      ) -> dict[int, tuple[datetime, float]]:
    """Per signal, the last value stored before ``at`` (within ``LOOKBACK``) and its minute: the value
    that held at ``at`` for a signal that reports only changes."""
    if not signal_ids:
        return {}
    params = {"tenant": tenant_id, "signals": list(signal_ids), "since": at, "lookback": at - LOOKBACK}
    rows = await (await conn.execute(BEFORE, params)).fetchall()
    return {r["signal_id"]: (r["bucket"], r["last"]) for r in rows if r["last"] is not None}
