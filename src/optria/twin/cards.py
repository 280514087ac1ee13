"""What a twin card shows, computed once for the server-rendered page and the live stream.

A card is a plain dict: the page renders it with Jinja, the stream sends it as JSON and the
page's script patches the same fields in place (text only, never markup), so a card looks
the same whether it came with the page or a second later over the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from optria.timeseries.limits import Limits
from optria.timeseries.sparklines import Bucket
from optria.twin.scoring import limit_state

# English msgids of the metric roles (translated in templates; listed in i18n_sources).
ROLE_LABELS = {
    "vibration": "Vibration", "temperature": "Temperature", "pressure": "Pressure", "flow": "Flow",
    "power": "Power", "running": "Running state", "level": "Level", "speed": "Speed", "current": "Electric current",
    "other": "Other signal",
}
# What the stale indicator and the "no data" texts say (English msgids).
DATA_STATES = {
    "unmapped": "No mapped signals",
    "waiting": "Waiting for first data",
    "all": "Data is stale",
    "some": "Some signals are stale",
    "none": "Live",
}

# Why a signal counts in the score (reason codes of optria.twin.scoring; English msgids).
REASON_LABELS = {
    "crit_high": "Above the critical limit", "crit_low": "Below the critical limit",
    "warn_high": "Above the warning limit", "warn_low": "Below the warning limit",
    "drift": "Drifting up from its recent baseline", "drift_watch": "Slightly above its recent baseline",
    "quality": "Questionable data quality", "bad_quality": "Bad data quality", "stale": "No current data",
    "no_data": "No data received yet", "ai_score": "AI model score",
    "risk": "Could pass its critical limit within 24 hours",
}

RISK_HIGH, RISK_MID = 0.5, 0.2

# Roles whose value is a state that holds until it changes (drawn as steps whatever their density).
STEP_ROLES = ("running",)
SPARK_MINUTES = 60          # a card's sparkline covers the last hour of 1-minute buckets
# ... the minutes that closed at least this long ago, then runs on to the live value: on the timescale
# tier the 1-minute aggregate has materialized them by then (10 s after a minute closes, every 15 s),
# so a page never aggregates raw samples on the fly (102 -> 11 ms for 144 signals at 10 Hz); the
# same rule on every tier.
SPARK_SETTLED_S = 40
SPARSE_GAP_S = 180          # buckets further apart than this (and 3 intervals): the source reports only changes


def risk_level(status: str, probability: float | None) -> str:
    """The card colour: none (no data), low, mid or high; the worse of status and probability."""
    if status == "nodata":
        return "none"
    p = probability or 0.0
    if status == "critical" or p >= RISK_HIGH:
        return "high"
    if status == "warning" or p >= RISK_MID:
        return "mid"
    return "low"


def fmt_value(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _limits(sig: dict[str, Any]) -> Limits:
    return Limits(sig.get("wl"), sig.get("wh"), sig.get("cl"), sig.get("ch"))


def gauge(value: float | None, limits: Limits) -> dict[str, Any]:
    """Positions (percent of the bar, left to right) of the value and the limits.

    The scale depends on the limits only, so the limit marks stay put while live values
    move; a value beyond the scale sits at its end. Without limits there is no gauge."""
    marks = [(k, v) for k, v in (("cl", limits.crit_low), ("wl", limits.warn_low), ("wh", limits.warn_high),
                                 ("ch", limits.crit_high)) if v is not None]
    if not marks:
        return {"pos": None, "marks": []}
    lo, hi = min(v for _, v in marks), max(v for _, v in marks)
    has_low = any(k in ("cl", "wl") for k, _ in marks)
    has_high = any(k in ("ch", "wh") for k, _ in marks)
    span = hi - lo or abs(hi) or 1.0
    lo = lo - span * 0.25 if has_low else (0.0 if lo > 0 else lo - span)
    hi = hi + span * 0.25 if has_high else (0.0 if hi < 0 else hi + span)
    if hi - lo <= 0:
        hi = lo + 1.0

    def at(v: float) -> float:
        return round(min(100.0, max(0.0, (v - lo) / (hi - lo) * 100.0)), 1)

    return {"pos": at(value) if value is not None else None, "marks": [{"kind": k, "pos": at(v)} for k, v in marks]}


def value_view(sig: dict[str, Any], *, with_gauge: bool = True) -> dict[str, Any]:
    value = sig.get("v")
    limits = _limits(sig)
    state = limit_state(value, limits)[0] if sig.get("fresh") else ("stale" if sig.get("t") is not None else "nodata")
    return {
        "id": sig["id"], "role": sig["role"], "role_label": ROLE_LABELS.get(sig["role"], "Other signal"),
        "name": sig["name"], "unit": sig.get("unit") or "", "text": fmt_value(value), "value": value,
        "state": state, "t": sig.get("t"), "q": sig.get("q"), "interval": sig.get("i"),
        "fresh": bool(sig.get("fresh")), "live": bool(sig.get("live")),
        "time": None if sig.get("t") is None else datetime.fromtimestamp(float(sig["t"]), timezone.utc),
        "limits": {"wl": limits.warn_low, "wh": limits.warn_high, "cl": limits.crit_low, "ch": limits.crit_high},
        "scale": sig.get("sc", 1.0), "offset": sig.get("of", 0.0),
        "gauge": gauge(value, limits) if with_gauge else {"pos": None, "marks": []},
    }


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else round(t.timestamp(), 3)


def data_state(row: dict[str, Any]) -> str:
    if not row.get("n_signals"):
        return "unmapped"
    if not row.get("n_with_data"):
        return "waiting"
    if not row.get("n_fresh"):
        return "all"
    if row["n_fresh"] < row["n_signals"]:
        return "some"
    return "none"


def card(row: dict[str, Any], *, with_gauges: bool = True) -> dict[str, Any]:
    """The card of one asset from a grid / cards query row (gauges only where a page draws them)."""
    status = row["status"]
    score = row.get("health_score")
    probability = row.get("failure_probability")
    shown = status != "nodata"
    return {
        "id": row["id"],
        "status": status,
        "score": int(round(score)) if shown and score is not None else None,
        "prob": probability if shown else None,
        "prob_pct": int(round(probability * 100)) if shown and probability is not None else None,
        "risk": risk_level(status, probability if shown else None),
        "source": row.get("health_source"),
        "data": data_state(row),
        "newest": _epoch(row.get("newest")),
        "fresh_until": _epoch(row.get("fresh_until")),
        "all_stale_at": _epoch(row.get("all_stale_at")),
        "values": [value_view(s, with_gauge=with_gauges) for s in (row.get("signals") or [])],
    }


def stream_card(c: dict[str, Any]) -> dict[str, Any]:
    """The compact JSON the stream sends (what the script needs to patch a card or a signal row)."""
    return {
        "id": c["id"], "status": c["status"], "score": c["score"], "prob_pct": c["prob_pct"], "risk": c["risk"],
        "data": c["data"], "newest": c["newest"], "fresh_until": c["fresh_until"], "all_stale_at": c["all_stale_at"],
        "values": [{"id": v["id"], "text": v["text"], "state": v["state"], "t": v["t"], "pos": v["gauge"]["pos"]}
                   for v in c["values"]],
    }


def settled_until(now: datetime) -> datetime:
    """Where a card's sparkline buckets end: the start of the minute that held ``SPARK_SETTLED_S`` ago."""
    return (now - timedelta(seconds=SPARK_SETTLED_S)).replace(second=0, microsecond=0)


def spark_series(buckets: Sequence[Bucket], *, before: float | None, role: str, current: bool, since: float,
                 now: float, interval_s: int, scale: float = 1.0, offset: float = 0.0, width_s: int = 60,
                 tail: tuple[float, float] | None = None) -> tuple[list[tuple[float, float]], bool, float | None]:
    """(points, step, hold_to) of a signal's recent buckets (oldest first), in shown units.

    A signal that reports only changes — a state role, or buckets further apart than
    ``SPARSE_GAP_S`` and three expected intervals, including the stretch from its last
    bucket to now while its value is current — is drawn as steps: each value holds until
    the next, the window starts at the value that held before it, and while the value is
    current (the one staleness rule) it runs on to now. Dense data is drawn as a line
    through the bucket means (``width_s``: the buckets' width, 60 or 3600). ``tail``: the
    latest sample (time, shown value), drawn last when it is newer than the last bucket (the
    cards' buckets end a minute or so ago, see ``settled_until``)."""
    gap = max(SPARSE_GAP_S, 3 * (interval_s or 60), 2 * width_s)
    half = width_s / 2
    ends = [b[0] for b in buckets] + ([now] if current else [])
    sparse = any(b - a > gap for a, b in zip(ends, ends[1:])) or (len(buckets) < 2 and (current or before is not None))
    step = role in STEP_ROLES or sparse
    points: list[tuple[float, float]] = []
    if step:
        if before is not None and (not buckets or buckets[0][0] > since):
            points.append((since, before * scale + offset))
        for t, avg, last in buckets:
            v = last if last is not None else avg
            if v is not None:
                points.append((t + half, v * scale + offset))
        _add_tail(points, tail)
        return points, True, now if current else None
    for t, avg, _ in buckets:
        if avg is not None:
            points.append((t + half, avg * scale + offset))
    _add_tail(points, tail)
    return points, False, None


def _add_tail(points: list[tuple[float, float]], tail: tuple[float, float] | None) -> None:
    if tail is not None and tail[1] is not None and (not points or tail[0] > points[-1][0]):
        points.append(tail)
