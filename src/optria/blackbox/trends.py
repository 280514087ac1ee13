"""Trends of an incident's asset: its mapped signals across the incident window, from the aggregates.

Values come from ``signal_1m`` (``signal_1h`` for windows longer than ``HOURLY_AFTER``), with
the mapping's scale and offset applied so they sit on the same axis as its limits, drawn by
the shared server-side SVG chart (:mod:`optria.web.svg`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from markupsafe import Markup

from optria.blackbox import store
from optria.blackbox.store import Conn
from optria.timeseries import store as timeseries
from optria.web import svg
from optria.web.i18n import gettext

BEFORE = timedelta(minutes=30)     # the lead-up the grouping window looks at
AFTER = timedelta(minutes=15)
HOURLY_AFTER = timedelta(hours=12)
MAX_SIGNALS = 8


def window(incident: dict[str, Any], now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or datetime.now(timezone.utc)
    end = incident["resolved_at"] or incident["last_event_at"]
    return incident["started_at"] - BEFORE, min(max(end, incident["last_event_at"]) + AFTER, max(now, end))


async def incident_trends(conn: Conn, tenant_id: UUID, incident: dict[str, Any]) -> list[dict[str, Any]]:
    start, end = window(incident)
    signals = await store.fetch_all(conn, store.TREND_SIGNALS, {"tenant_id": tenant_id,
                                                                "asset_id": incident["asset_id"], "limit": MAX_SIGNALS})
    if not signals:
        return []
    hourly = end - start > HOURLY_AFTER
    by_signal = await timeseries.window(conn, tenant_id, [s["signal_id"] for s in signals], start,
                                        end + timedelta(microseconds=1), resolution="1h" if hourly else "1m")
    step = 3600.0 if hourly else 60.0
    out = []
    for s in signals:
        scale, offset = s["scale"], s["offset"]

        def eng(v: float | None) -> float | None:
            return None if v is None else v * scale + offset

        points = [(r["bucket"].timestamp(), eng(r["avg"])) for r in by_signal[s["signal_id"]] if r["avg"] is not None]
        band = [(r["bucket"].timestamp(), eng(r["min"]), eng(r["max"])) for r in by_signal[s["signal_id"]]
                if r["min"] is not None and r["max"] is not None]
        lines = [svg.Line(s[k], kind, label) for k, kind, label in (
            ("crit_high", "crit", gettext("Critical")), ("warn_high", "warn", gettext("Warning")),
            ("warn_low", "warn", gettext("Warning")), ("crit_low", "crit", gettext("Critical"))) if s[k] is not None]
        title = f"{s['signal_name']}" + (f" ({s['unit']})" if s["unit"] else "")
        chart: Markup = svg.line_chart([svg.Series(points, band=band)], x_range=(start.timestamp(), end.timestamp()),
                                       title=title, lines=lines, gap=step * 3,
                                       empty_text=gettext("No data for this signal in the incident window."),
                                       testid=f"trend-{s['signal_id']}")
        out.append({"signal_id": s["signal_id"], "title": title, "chart": chart, "points": len(points)})
    return sorted(out, key=lambda t: t["points"] == 0)   # signals with data first
