"""Trends of an incident's asset: its mapped signals across the incident window, from the aggregates.

Values come from ``signal_1m`` (``signal_1h`` for windows longer than ``HOURLY_AFTER``), with
the mapping's scale and offset applied so they sit on the same axis as its limits, drawn by
the shared server-side SVG chart (:mod:`optria.web.charts`). A signal that reports only changes (a
running state) is drawn as steps from the value that held when the window began, not as a dot.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from markupsafe import Markup

from optria.blackbox import store
from optria.blackbox.store import Conn
from optria.timeseries import sparklines
from optria.timeseries import store as timeseries
from optria.twin.cards import ROLE_LABELS, spark_series
from optria.web import charts
from optria.web.formatting import unit_text
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
    ids = [s["signal_id"] for s in signals]
    by_signal = await timeseries.window(conn, tenant_id, ids, start, end + timedelta(microseconds=1),
                                        resolution="1h" if hourly else "1m")
    held = await sparklines.held_before(conn, tenant_id, ids, start)
    step = 3600.0 if hourly else 60.0
    out = []
    for s in signals:
        scale, offset = s["scale"], s["offset"]

        def eng(v: float | None) -> float | None:
            return None if v is None else v * scale + offset

        rows = by_signal[s["signal_id"]]
        # a signal that reports only changes is drawn as steps: its value holds until the next one
        points, stepped, hold_to = spark_series(
            [(r["bucket"].timestamp(), r["avg"], r.get("last")) for r in rows],
            before=held.get(s["signal_id"], (None, None))[1], role=s["metric_role"], current=True,
            since=start.timestamp(), now=end.timestamp(), interval_s=s["expected_interval_s"], scale=scale,
            offset=offset, width_s=int(step))
        band = [] if stepped else [(r["bucket"].timestamp(), eng(r["min"]), eng(r["max"])) for r in rows
                                   if r["min"] is not None and r["max"] is not None]
        lines = [charts.Line(s[k], kind, label) for k, kind, label in (
            ("crit_high", "crit", gettext("Critical")), ("warn_high", "warn", gettext("Warning")),
            ("warn_low", "warn", gettext("Warning")), ("crit_low", "crit", gettext("Critical"))) if s[k] is not None]
        role = gettext(ROLE_LABELS.get(s["metric_role"], "Other signal"))
        unit = unit_text(s["unit"])
        title = f"{role} — {s['signal_name']}" + (f" ({unit})" if unit else "")
        caption = Markup("{} <bdi dir=\"ltr\" class=\"tag\">{}</bdi>{}").format(
            role, s["signal_name"], Markup(" (<bdi class=\"unit\">{}</bdi>)").format(unit) if unit else "")
        chart: Markup = charts.line_chart([charts.Series(points, band=band, step=stepped, hold_to=hold_to)],
                                       x_range=(start.timestamp(), end.timestamp()),
                                       title=title, lines=lines, gap=step * 3,
                                       empty_text=gettext("No data for this signal in the incident window."),
                                       testid=f"trend-{s['signal_id']}")
        out.append({"signal_id": s["signal_id"], "title": caption, "chart": chart, "points": len(points)})
    return sorted(out, key=lambda t: t["points"] == 0)   # signals with data first
