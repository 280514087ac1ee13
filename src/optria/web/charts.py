"""Server-rendered SVG line charts (no JavaScript, no external assets).

Charts are drawn left-to-right in time even in RTL pages (time axes are not mirrored in
Arabic industrial UIs); the SVG carries ``direction="ltr"`` so labels stay readable. Time labels
are in the page's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape

from optria.web.formatting import clock_text

PALETTE = ("#0b6e4f", "#2f6fdb", "#d98c00", "#d64545", "#7b4fd6", "#1f9d9d")


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float | None]]
    color: str | None = None


@dataclass
class Chart:
    series: list[Series]
    width: int = 720
    height: int = 220
    unit: str = ""
    limits: list[tuple[float, str]] = field(default_factory=list)   # (value, colour) horizontal lines
    title: str = ""


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def render(chart: Chart) -> str:
    pad_l, pad_r, pad_t, pad_b = 56, 12, 14, 26
    w, h = chart.width, chart.height
    pts = [(t, v) for s in chart.series for t, v in s.points if v is not None]
    if not pts:
        return (f'<svg class="chart chart-empty" viewBox="0 0 {w} {h}" role="img" direction="ltr" '
                f'aria-label="{escape(chart.title)}"><text x="{w / 2}" y="{h / 2}" text-anchor="middle">—</text></svg>')
    t0 = min(t for t, _ in pts).timestamp()
    t1 = max(t for t, _ in pts).timestamp()
    values = [v for _, v in pts] + [v for v, _ in chart.limits]
    lo, hi = min(values), max(values)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    span_t = max(t1 - t0, 1.0)

    def x(t: datetime) -> float:
        return pad_l + (t.timestamp() - t0) / span_t * (w - pad_l - pad_r)

    def y(v: float) -> float:
        return pad_t + (hi - v) / (hi - lo) * (h - pad_t - pad_b)

    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" direction="ltr" '
           f'aria-label="{escape(chart.title)}" preserveAspectRatio="none">']
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        out.append(f'<line x1="{pad_l}" x2="{w - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{_fmt(v)}</text>')
    for value, limit_color in chart.limits:
        color = escape(limit_color)
        out.append(f'<line x1="{pad_l}" x2="{w - pad_r}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   f'stroke="{color}" stroke-dasharray="4 3" class="limit"/>')
    for i, s in enumerate(chart.series):
        color = escape(s.color or PALETTE[i % len(PALETTE)])
        segments: list[list[str]] = [[]]
        for t, v in s.points:
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif seg:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(seg)}"/>')
    first, last = datetime.fromtimestamp(t0, timezone.utc), datetime.fromtimestamp(t1, timezone.utc)
    out.append(f'<text x="{pad_l}" y="{h - 6}" class="axis">{escape(clock_text(first))}</text>'
               f'<text x="{w - pad_r}" y="{h - 6}" text-anchor="end" class="axis">{escape(clock_text(last))}</text>')
    out.append("</svg>")
    return "".join(out)
