"""Server-rendered SVG charts, the only chart module: a line chart with a min–max band and limit lines,
an overlay of two signals on two axes, and a sparkline.

No JavaScript and no chart library: a page gets plain ``<svg>`` markup it can print, zoom and
read without a script. Charts are RTL-safe: the ``<svg>`` carries ``dir="ltr"`` so time runs
left to right and numbers keep their digit order inside an Arabic page (as in printed
Arabic engineering charts), text anchors are explicit rather than "start"/"end", and every
chart has a ``<title>`` and ``aria-label`` in the page's language. All text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from markupsafe import Markup, escape

from optria.web.formatting import clock_text


@dataclass
class Series:
    """Points (x, y) in order; an optional band of (x, low, high) drawn behind the line.

    ``step``: the value holds until the next point (a signal that reports only changes), drawn
    as steps and never split at gaps; ``hold_to``: the last value still holds at this x (its
    source is live), so the line runs on to it."""

    points: Sequence[tuple[float, float]]
    css: str = "series"
    band: Sequence[tuple[float, float, float]] = field(default_factory=list)
    step: bool = False
    hold_to: float | None = None
    axis: str = "left"        # which y axis an overlay series is read against: left | right
    label: str = ""


def stepped(points: Sequence[tuple[float, float]], hold_to: float | None = None) -> list[tuple[float, float]]:
    """The corners of a step line through ``points`` (each value holds until the next point), run on
    to ``hold_to`` when the last value still holds there."""
    out: list[tuple[float, float]] = []
    for x, y in points:
        if out:
            out.append((x, out[-1][1]))
        out.append((x, y))
    if out and hold_to is not None and hold_to > out[-1][0]:
        out.append((hold_to, out[-1][1]))
    return out


@dataclass
class Line:
    """A horizontal reference line (a limit), drawn dashed with a short label."""

    value: float
    kind: str            # warn | crit | ref
    label: str = ""


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt_num(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"
    return f"{v:g}"


def time_format(span_s: float) -> Callable[[float], str]:
    """Axis labels for a time span, in the page's time zone and language: clock time up to two days,
    then the day (optria.web.formatting)."""
    with_date = span_s > 2 * 86400
    return lambda x: clock_text(datetime.fromtimestamp(x, timezone.utc), with_date=with_date)


def _segments(points: Sequence[tuple[float, float]], gap: float | None) -> list[list[tuple[float, float]]]:
    """Split where consecutive x values are further apart than ``gap`` (missing data is not drawn over)."""
    out: list[list[tuple[float, float]]] = []
    for p in points:
        if out and (gap is None or p[0] - out[-1][-1][0] <= gap):
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _frame(css: str, title: str, testid: str, width: int, height: int,
           plot: tuple[float, float, float, float]) -> list[str]:
    """The opening of a chart with axes: the ``<svg>`` (left to right, titled) and the plot's background
    (``plot`` = left, top, width, height)."""
    left, top, plot_w, plot_h = plot
    return [
        f'<svg class="{css}" dir="ltr" direction="ltr" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" data-testid="{escape(testid)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect class="chart-bg" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
    ]


def _x_ticks(x0: float, x1: float, sx: Callable[[float], float], fmt_x: Callable[[float], str],
             height: int) -> list[str]:
    """Five labels along the time axis, the outer two anchored inside the chart."""
    out = []
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        anchor = "start" if i == 0 else ("end" if i == 4 else "middle")
        out.append(f'<text class="tick" x="{sx(x)}" y="{height - 8}" text-anchor="{anchor}">{escape(fmt_x(x))}</text>')
    return out


def line_chart(series: Sequence[Series], *, x_range: tuple[float, float], title: str, lines: Sequence[Line] = (),
               y_range: tuple[float, float] | None = None, width: int = 640, height: int = 200, gap: float | None = None,
               x_format: Callable[[float], str] | None = None, empty_text: str = "",
               testid: str = "chart") -> Markup:
    """A line chart with axes, gridlines and limit lines; ``empty_text`` shows when there are no points."""
    pad_l, pad_r, pad_t, pad_b = 52, 14, 10, 26
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1.0
    ys = [y for s in series for _, y in s.points] + [v for s in series for _, lo, hi in s.band for v in (lo, hi)]
    ys = [y for y in ys if y is not None and math.isfinite(y)]
    if y_range is not None:
        y0, y1 = y_range
    elif ys:
        limit_values = [ln.value for ln in lines if math.isfinite(ln.value)]
        y0, y1 = min(ys + limit_values), max(ys + limit_values)
        span = (y1 - y0) or abs(y1) or 1.0
        y0, y1 = y0 - span * 0.08, y1 + span * 0.08
    else:
        y0, y1 = 0.0, 1.0
    if y1 <= y0:
        y1 = y0 + 1.0

    def sx(x: float) -> float:
        return round(pad_l + (x - x0) / (x1 - x0) * plot_w, 1)

    def sy(y: float) -> float:
        return round(pad_t + (1 - (y - y0) / (y1 - y0)) * plot_h, 1)

    parts = _frame("svg-chart", title, testid, width, height, (pad_l, pad_t, plot_w, plot_h))
    for t in nice_ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line class="grid" x1="{pad_l}" x2="{pad_l + plot_w}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="tick" x="{pad_l - 6}" y="{y + 4}" text-anchor="end">{escape(_fmt_num(t))}</text>')
    parts.extend(_x_ticks(x0, x1, sx, x_format or time_format(x1 - x0), height))
    for s in series:
        for seg in _segments([(x, lo, hi) for x, lo, hi in s.band], gap):  # type: ignore[arg-type]
            if len(seg) < 2:
                continue
            upper = " ".join(f"{sx(x)},{sy(hi)}" for x, _, hi in seg)  # type: ignore[misc]
            lower = " ".join(f"{sx(x)},{sy(lo)}" for x, lo, _ in reversed(seg))  # type: ignore[misc]
            parts.append(f'<polygon class="band {escape(s.css)}" points="{upper} {lower}"/>')
        segments = [stepped(s.points, s.hold_to)] if s.step else _segments(s.points, gap)
        for seg in segments:
            if not seg:
                continue
            if len(seg) == 1:
                x, y = seg[0]
                parts.append(f'<circle class="dot {escape(s.css)}" cx="{sx(x)}" cy="{sy(y)}" r="2.5"/>')
            else:
                pts = " ".join(f"{sx(x)},{sy(y)}" for x, y in seg)
                kind = " step" if s.step else ""
                parts.append(f'<polyline class="line{kind} {escape(s.css)}" points="{pts}"/>')
    for ln in lines:
        if not (y0 <= ln.value <= y1):
            continue
        y = sy(ln.value)
        parts.append(f'<line class="limit limit-{escape(ln.kind)}" x1="{pad_l}" x2="{pad_l + plot_w}" y1="{y}" y2="{y}"/>')
        if ln.label:
            parts.append(f'<text class="limit-label limit-{escape(ln.kind)}" x="{pad_l + plot_w - 4}" y="{y - 3}" '
                         f'text-anchor="end">{escape(ln.label)}</text>')
    if not ys and empty_text:
        parts.append(f'<text class="empty" x="{pad_l + plot_w / 2}" y="{pad_t + plot_h / 2}" text-anchor="middle" '
                     f'unicode-bidi="plaintext">{escape(empty_text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[float] | Sequence[tuple[float, float]], *, title: str, width: int = 120,
              height: int = 28, lines: Sequence[Line] = (), x_range: tuple[float, float] | None = None,
              step: bool = False, hold_to: float | None = None, testid: str | None = None) -> Markup:
    """A tiny trend line (no axes) for cards and table rows.

    ``values`` are plain numbers (evenly spaced) or (x, y) points placed on ``x_range``; with
    ``step`` the value holds until the next point (and runs on to ``hold_to``), so a signal that
    reports only changes draws steps rather than a lone dot."""
    pts = [(float(i), float(v)) if not isinstance(v, tuple) else (float(v[0]), float(v[1]))
           for i, v in enumerate(values)]
    pts = [(x, y) for x, y in pts if math.isfinite(y)]
    if step:
        pts = stepped(pts, hold_to)
    x0, x1 = x_range if x_range else ((min(x for x, _ in pts), max(x for x, _ in pts)) if pts else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    tid = f' data-testid="{escape(testid)}"' if testid else ""
    kind = " step" if step else ""
    label = escape(title)
    parts = [f'<svg class="sparkline{kind}" dir="ltr" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
             f'aria-label="{label}" data-points="{len(pts)}"{tid} xmlns="http://www.w3.org/2000/svg">'
             f'<title>{label}</title>']
    # A card draws a few hundred of these: one formatted string per point, the same figures as
    # rounding each coordinate to a tenth (format and round both round the exact binary value).
    dx, w2, h4 = x1 - x0, width - 2, height - 4
    if len(pts) >= 2:
        ys = [y for _, y in pts]
        lo, hi = min(ys + [ln.value for ln in lines]), max(ys + [ln.value for ln in lines])
        span = (hi - lo) or 1.0
        base = height - 2
        for ln in lines:
            y = f"{base - (ln.value - lo) / span * h4:.1f}"
            parts.append(f'<line class="limit limit-{escape(ln.kind)}" x1="0" x2="{width}" y1="{y}" y2="{y}"/>')
        coords = " ".join([f"{1 + (x - x0) / dx * w2:.1f},{base - (y - lo) / span * h4:.1f}" for x, y in pts])
        parts.append(f'<polyline class="line" points="{coords}"/>')
    elif len(pts) == 1:
        x, y = pts[0]
        parts.append(f'<circle class="dot" cx="{1 + (x - x0) / dx * w2:.1f}" cy="{height / 2}" r="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _polylines(s: Series, sx: Callable[[float], float], sy: Callable[[float], float], gap: float | None) -> list[str]:
    out = []
    segments = [stepped(s.points, s.hold_to)] if s.step else _segments(s.points, gap)
    for seg in segments:
        if len(seg) == 1:
            x, y = seg[0]
            out.append(f'<circle class="dot {escape(s.css)}" cx="{sx(x)}" cy="{sy(y)}" r="2.5"/>')
        elif seg:
            pts = " ".join(f"{sx(x)},{sy(y)}" for x, y in seg)
            kind = " step" if s.step else ""
            out.append(f'<polyline class="line{kind} {escape(s.css)}" points="{pts}"/>')
    return out


def overlay_chart(left: Series, right: Series, *, x_range: tuple[float, float], title: str, width: int = 860,
                  height: int = 260, gap: float | None = None, x_format: Callable[[float], str] | None = None,
                  empty_text: str = "", testid: str = "overlay") -> Markup:
    """Two signals over one time axis, each read against its own y axis (``left`` on the left, ``right``
    on the right, in its colour), with a legend naming both (``Series.label``)."""
    pad_l, pad_r, pad_t, pad_b = 52, 52, 26, 26
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1.0

    def y_range(s: Series) -> tuple[float, float]:
        ys = [y for _, y in s.points if y is not None and math.isfinite(y)]
        if not ys:
            return 0.0, 1.0
        lo, hi = min(ys), max(ys)
        span = (hi - lo) or abs(hi) or 1.0
        return lo - span * 0.08, hi + span * 0.08

    def sx(x: float) -> float:
        return round(pad_l + (x - x0) / (x1 - x0) * plot_w, 1)

    parts = _frame("svg-chart overlay", title, testid, width, height, (pad_l, pad_t, plot_w, plot_h))
    scales = []
    for s, side in ((left, "a"), (right, "b")):
        y0, y1 = y_range(s)

        def sy(y: float, y0: float = y0, y1: float = y1) -> float:
            return round(pad_t + (1 - (y - y0) / (y1 - y0)) * plot_h, 1)

        scales.append(sy)
        for t in nice_ticks(y0, y1):
            x, anchor = (pad_l - 6, "end") if side == "a" else (pad_l + plot_w + 6, "start")
            if side == "a":
                parts.append(f'<line class="grid" x1="{pad_l}" x2="{pad_l + plot_w}" y1="{sy(t)}" y2="{sy(t)}"/>')
            parts.append(f'<text class="tick axis-{side}" x="{x}" y="{sy(t) + 4}" text-anchor="{anchor}">'
                         f'{escape(_fmt_num(t))}</text>')
    parts.extend(_x_ticks(x0, x1, sx, x_format or time_format(x1 - x0), height))
    for s, sy in zip((left, right), scales):
        parts.extend(_polylines(s, sx, sy, gap))
    parts.append(f'<text class="legend overlay-a" x="{pad_l}" y="16" text-anchor="start">■ {escape(left.label)}</text>')
    parts.append(f'<text class="legend overlay-b" x="{pad_l + plot_w}" y="16" text-anchor="end">'
                 f'{escape(right.label)} ■</text>')
    if not left.points and not right.points and empty_text:
        parts.append(f'<text class="empty" x="{pad_l + plot_w / 2}" y="{pad_t + plot_h / 2}" text-anchor="middle" '
                     f'unicode-bidi="plaintext">{escape(empty_text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
