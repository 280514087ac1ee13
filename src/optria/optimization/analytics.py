"""The analytics engine: deterministic findings from an asset's mapped signals, always available.

Pure functions, no I/O (``optria.optimization.inputs`` loads the data, ``runs`` stores the
result). The same inputs always give the same findings, so a run can be repeated and a
test can state exactly what it expects. Every value is judged in *shown* units
(raw × scale + offset), the units of the mapping's limits.

Per signal, from its 1-minute and 1-hour aggregates:

1. **Limit.** The latest fresh value beyond ``crit_*`` is a *critical* finding, beyond
   ``warn_*`` a *medium* one (the twin's own limit check, so both agree).
2. **Anomaly.** The recent level (the last ``RECENT_MINUTES`` minutes of 1-minute means)
   against a baseline: the completed hours of the previous day (``signal_1h``, at least
   ``MIN_BASELINE_HOURS``), else the older minutes of the minute window (``signal_1m``, at
   least ``MIN_BASELINE_MINUTES``). When the history is too short for both, a *short*
   comparison of the last ``SHORT_RECENT_MINUTES`` minutes against the minutes before them
   is made (lower confidence). σ combines the spread of the bucket means with the typical
   bucket range (range ≈ 4σ). z = (level − mean) / max(σ, 1 % of |mean|); |z| ≥ 3 is a
   finding (low), ≥ 4 medium, ≥ 6 high.
3. **Trend and time to limit.** A least-squares line through the minute means of the last
   ``RECENT_MINUTES`` (at least ``MIN_TREND_POINTS`` of them, so a process cycle of a few
   minutes is not read as a trend). When the slope is significant (|t| ≥ ``MIN_SLOPE_T``), the
   line explains the data (R² ≥ ``MIN_TREND_R2``) and it points at a limit not yet crossed,
   the time to reach it is ``(limit − level) / slope``; within ``HORIZON_H`` hours it is a
   finding, more severe the closer and the more critical the limit.
4. **Efficiency** (an asset with both ``power`` and ``flow`` signals): specific energy =
   mean power ÷ mean flow. A recent value above the baseline's (an hourly or a full minute
   baseline, not the short one) by more than ``EFFICIENCY_MIN_GAIN`` is an opportunity; its expected impact is the excess power at the
   current flow, in kW (and MWh per year).
5. **Stale data.** Mapped signals without a current value (the one rule of
   :mod:`optria.timeseries.staleness`: a live source keeps an unchanged value current) are
   listed, since nothing can be judged on them.

Texts are English message ids with parameters (``msg`` / ``params`` in the evidence), so
pages show them in the reader's language; ``title`` and friends hold the English text for
the API and the AI context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from optria.timeseries.staleness import Reading
from optria.twin.cards import ROLE_LABELS
from optria.twin.scoring import Limits, limit_state

RECENT_MINUTES = 60
SHORT_RECENT_MINUTES = 5
MIN_RECENT_BUCKETS = 3
MIN_BASELINE_HOURS = 3
MIN_BASELINE_MINUTES = 15
MIN_SHORT_BASELINE_MINUTES = 5
Z_LOW, Z_MEDIUM, Z_HIGH = 3.0, 4.0, 6.0
MIN_TREND_POINTS = 30
MIN_SLOPE_T = 3.0
MIN_TREND_R2 = 0.6
HORIZON_H = 72.0
EFFICIENCY_MIN_GAIN = 0.05
HOURS_PER_YEAR = 8760

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

# English msgids (translated on the pages; listed in optria.shell.i18n_sources).
M = {
    "limit_crit_title": "%(role)s beyond its critical limit",
    "limit_warn_title": "%(role)s beyond its warning limit",
    "limit_rationale": "The latest value %(value)s %(unit)s is past the limit of %(limit)s %(unit)s.",
    "limit_crit_action": "Reduce the load or take the asset out of service and inspect it before the damage spreads.",
    "limit_warn_action": "Schedule an inspection and watch the trend closely.",
    "limit_impact": "Avoids an unplanned shutdown and secondary damage.",
    "ttl_crit_title": "%(role)s will reach its critical limit in about %(hours)s h",
    "ttl_warn_title": "%(role)s will reach its warning limit in about %(hours)s h",
    "ttl_rationale": "The value rises by %(slope)s %(unit)s per hour over the last %(minutes)s minutes; "
                     "now %(value)s %(unit)s, limit %(limit)s %(unit)s.",
    "ttl_rationale_down": "The value falls by %(slope)s %(unit)s per hour over the last %(minutes)s minutes; "
                          "now %(value)s %(unit)s, limit %(limit)s %(unit)s.",
    "ttl_action": "Plan an intervention before the limit is reached.",
    "ttl_impact": "About %(hours)s h of warning before the limit: time to act without an unplanned stop.",
    "anomaly_title": "%(role)s unusual compared with its recent baseline",
    "anomaly_rationale": "The mean of the last %(minutes)s minutes is %(level)s %(unit)s against a baseline of "
                         "%(mean)s ± %(sigma)s %(unit)s (z = %(z)s).",
    "anomaly_action": "Check the asset and its instrument; compare with the process conditions.",
    "anomaly_impact": "Early warning of a developing fault.",
    "efficiency_title": "Specific energy above its baseline",
    "efficiency_rationale": "Power per flow is %(recent)s kWh/m³ now against %(baseline)s kWh/m³ before (+%(gain)s %%).",
    "efficiency_action": "Check for wear, recirculation or throttling and restore the best operating point.",
    "efficiency_impact": "About %(kw)s kW less power at the current flow (%(mwh)s MWh per year).",
    "stale_title": "No current data for %(count)s signal(s)",
    "stale_rationale": "Signals without a current value: %(names)s.",
    "stale_action": "Check the data source and the tag mappings of this asset.",
    "stale_impact": "Restores monitoring of the asset.",
}
# Parameters whose values are English msgids themselves (translated before formatting).
TRANSLATED_PARAMS = ("role",)


@dataclass(frozen=True)
class Bucket:
    """One aggregate bucket in raw units."""

    bucket: datetime
    n: int
    avg: float
    min: float | None
    max: float | None


@dataclass(frozen=True)
class SignalData:
    signal_id: int
    name: str
    role: str
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    limits: Limits = field(default_factory=Limits)
    expected_interval_s: int = 60
    latest: float | None = None         # raw
    latest_time: datetime | None = None
    quality: int | None = None
    minutes: tuple[Bucket, ...] = ()    # 1-minute buckets, oldest first
    hours: tuple[Bucket, ...] = ()      # 1-hour buckets, oldest first
    source_connected: bool | None = None  # the integration's ingest worker is connected (None: none has reported)
    source_seen: datetime | None = None   # its last heartbeat

    def shown(self, raw: float | None) -> float | None:
        return None if raw is None else raw * self.scale + self.offset

    def fresh(self, now: datetime) -> bool:
        return Reading(time=self.latest_time, has_value=self.latest is not None, quality=self.quality,
                       expected_interval_s=self.expected_interval_s, connected=self.source_connected,
                       heartbeat_at=self.source_seen).is_current(now)


@dataclass(frozen=True)
class AssetData:
    asset_id: int
    code: str
    name: str
    asset_type: str = "other"
    criticality: str = "medium"
    unit_id: int | None = None
    signals: tuple[SignalData, ...] = ()


@dataclass
class Finding:
    asset_id: int
    kind: str                  # limit | time_to_limit | anomaly | trend | efficiency | stale
    severity: str              # info | low | medium | high | critical
    title: str
    rationale: str
    action: str
    expected_impact: str
    confidence: float
    impact_value: float | None = None
    impact_unit: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"asset_id": self.asset_id, "kind": self.kind, "severity": self.severity, "title": self.title,
                "rationale": self.rationale, "action": self.action, "expected_impact": self.expected_impact,
                "confidence": self.confidence, "impact_value": self.impact_value, "impact_unit": self.impact_unit,
                "evidence": self.evidence}


@dataclass(frozen=True)
class Stats:
    mean: float
    sigma: float
    buckets: int
    source: str                # 1h | 1m | 1m-short


@dataclass
class SignalSummary:
    """The figures of one signal a run was based on (stored with the run, sent to the AI)."""

    signal_id: int
    name: str
    role: str
    unit: str | None
    latest: float | None
    fresh: bool
    limits: dict[str, float | None]
    recent_mean: float | None = None
    recent_min: float | None = None
    recent_max: float | None = None
    baseline_mean: float | None = None
    baseline_sigma: float | None = None
    baseline_source: str | None = None
    z: float | None = None
    slope_per_h: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (_round(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class AssetAnalysis:
    asset_id: int
    code: str
    signals: list[SignalSummary]
    findings: list[Finding]
    specific_energy: float | None = None

    @property
    def worst(self) -> str:
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__, default="info")


# ------------------------------------------------------------------------------------------- helpers

def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}") if abs(x) < 1e15 else x


def fmt(x: float | None) -> str:
    """A figure for a sentence: three significant digits, no exponent for plant-sized values."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, "Other signal")


def _text(key: str, params: dict[str, Any]) -> str:
    return M[key] % params


def shown_buckets(sig: SignalData, buckets: tuple[Bucket, ...]) -> list[Bucket]:
    """Buckets in shown units (a negative scale swaps min and max)."""
    out = []
    for b in buckets:
        lo, hi = sig.shown(b.min), sig.shown(b.max)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        out.append(Bucket(b.bucket, b.n, sig.shown(b.avg), lo, hi))  # type: ignore[arg-type]
    return out


def stats(buckets: list[Bucket], source: str) -> Stats | None:
    """Weighted mean and σ of bucket means, with the typical bucket range folded in (range ≈ 4σ)."""
    usable = [b for b in buckets if b.n > 0 and b.avg is not None and math.isfinite(b.avg)]
    if not usable:
        return None
    weight = sum(b.n for b in usable)
    mean = sum(b.avg * b.n for b in usable) / weight
    between = sum(b.n * (b.avg - mean) ** 2 for b in usable) / weight
    ranges = [(b.max - b.min) for b in usable if b.max is not None and b.min is not None]
    within = (sum(ranges) / len(ranges) / 4.0) ** 2 if ranges else 0.0
    return Stats(mean, math.sqrt(between + within), len(usable), source)


def slope(points: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(slope, t statistic, R²) of a least-squares line through (x, y); None when it cannot be fitted."""
    n = len(points)
    if n < 3:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    a = my - b * mx
    residual = sum((y - (a + b * x)) ** 2 for x, y in points)
    total = sum((y - my) ** 2 for _, y in points)
    r2 = 1.0 - residual / total if total > 0 else 0.0
    se = math.sqrt(residual / (n - 2) / sxx)
    if se == 0:
        return b, (math.copysign(math.inf, b) if b else 0.0), r2
    return b, b / se, r2


def _severity_for_z(z: float) -> str | None:
    a = abs(z)
    if a >= Z_HIGH:
        return "high"
    if a >= Z_MEDIUM:
        return "medium"
    if a >= Z_LOW:
        return "low"
    return None


# ------------------------------------------------------------------------------------------- windows

def windows(sig: SignalData, now: datetime) -> tuple[list[Bucket], Stats | None, int]:
    """(recent minute buckets, baseline stats, recent window minutes) of a signal."""
    minutes = [b for b in shown_buckets(sig, sig.minutes) if b.bucket <= now]
    hours = shown_buckets(sig, sig.hours)
    cut = now - timedelta(minutes=RECENT_MINUTES)
    recent = [b for b in minutes if b.bucket >= cut]
    older_minutes = [b for b in minutes if b.bucket < cut]
    complete_hours = [b for b in hours if b.bucket + timedelta(hours=1) <= cut
                      and b.bucket >= cut - timedelta(hours=24)]
    if len(recent) >= MIN_RECENT_BUCKETS:
        if len(complete_hours) >= MIN_BASELINE_HOURS:
            return recent, stats(complete_hours, "1h"), RECENT_MINUTES
        if len(older_minutes) >= MIN_BASELINE_MINUTES:
            return recent, stats(older_minutes, "1m"), RECENT_MINUTES
    # short history: the last few minutes against the minutes before them
    short_cut = now - timedelta(minutes=SHORT_RECENT_MINUTES)
    short_recent = [b for b in minutes if b.bucket >= short_cut]
    before = [b for b in minutes if b.bucket < short_cut]
    if len(short_recent) >= 2 and len(before) >= MIN_SHORT_BASELINE_MINUTES:
        return short_recent, stats(before, "1m-short"), SHORT_RECENT_MINUTES
    return recent, None, RECENT_MINUTES


# ------------------------------------------------------------------------------------------- rules

def _limit_finding(asset: AssetData, sig: SignalData, value: float, unit: str) -> Finding | None:
    status, reason, limit, _ = limit_state(value, sig.limits)
    if status == "normal":
        return None
    crit = status == "critical"
    params = {"role": role_label(sig.role), "value": fmt(value), "unit": unit, "limit": fmt(limit)}
    keys = {"title": "limit_crit_title" if crit else "limit_warn_title", "rationale": "limit_rationale",
            "action": "limit_crit_action" if crit else "limit_warn_action", "expected_impact": "limit_impact"}
    return _finding(asset, "limit", "critical" if crit else "medium", keys, params, 0.95,
                    evidence={"signal_id": sig.signal_id, "signal": sig.name, "role": sig.role, "value": _round(value),
                              "limit": limit, "level": reason})


def _trend_finding(asset: AssetData, sig: SignalData, summary: SignalSummary, now: datetime,
                   unit: str) -> Finding | None:
    cut = now - timedelta(minutes=RECENT_MINUTES)
    recent = [b for b in shown_buckets(sig, sig.minutes) if cut <= b.bucket <= now]
    points = [((b.bucket - now).total_seconds() / 3600.0, b.avg) for b in recent]
    if len(points) < MIN_TREND_POINTS:
        return None
    fitted = slope(points)
    if fitted is None:
        return None
    b, t, r2 = fitted
    summary.slope_per_h = _round(b)
    window_min = RECENT_MINUTES
    if abs(t) < MIN_SLOPE_T or r2 < MIN_TREND_R2 or b == 0:
        return None
    level = summary.latest if summary.latest is not None else recent[-1].avg
    lim = sig.limits
    if b > 0:
        candidates = [("warning", lim.warn_high), ("critical", lim.crit_high)]
        ahead = [(name, v) for name, v in candidates if v is not None and v > level]
    else:
        candidates = [("warning", lim.warn_low), ("critical", lim.crit_low)]
        ahead = [(name, v) for name, v in candidates if v is not None and v < level]
    if not ahead:
        return None
    name, target = min(ahead, key=lambda item: abs(item[1] - level))
    hours = (target - level) / b
    if hours <= 0 or hours > HORIZON_H:
        return None
    if name == "critical":
        severity = "high" if hours <= 4 else "medium" if hours <= 24 else "low"
    else:
        severity = "medium" if hours <= 4 else "low"
    params = {"role": role_label(sig.role), "hours": fmt(hours), "slope": fmt(abs(b)), "unit": unit,
              "minutes": window_min, "value": fmt(level), "limit": fmt(target)}
    keys = {"title": "ttl_crit_title" if name == "critical" else "ttl_warn_title", "rationale": "ttl_rationale" if b > 0 else "ttl_rationale_down",
            "action": "ttl_action", "expected_impact": "ttl_impact"}
    confidence = min(0.9, 0.5 + 0.05 * min(abs(t), 8.0))
    return _finding(asset, "time_to_limit", severity, keys, params, round(confidence, 2), impact_value=_round(hours),
                    impact_unit="h", evidence={"signal_id": sig.signal_id, "signal": sig.name, "role": sig.role,
                                               "slope_per_h": _round(b), "t": _round(t), "r2": _round(r2),
                                               "limit": target,
                                               "level": name, "value": _round(level), "hours": _round(hours)})


def _anomaly_finding(asset: AssetData, sig: SignalData, summary: SignalSummary, recent: list[Bucket],
                     base: Stats | None, window_min: int, unit: str) -> Finding | None:
    level_stats = stats(recent, "recent")
    if level_stats is None:
        return None
    summary.recent_mean = _round(level_stats.mean)
    summary.recent_min = _round(min((b.min for b in recent if b.min is not None), default=level_stats.mean))
    summary.recent_max = _round(max((b.max for b in recent if b.max is not None), default=level_stats.mean))
    if base is None or sig.role == "running":
        return None
    summary.baseline_mean, summary.baseline_sigma, summary.baseline_source = \
        _round(base.mean), _round(base.sigma), base.source
    sigma = max(base.sigma, 0.01 * abs(base.mean), 1e-9)
    z = (level_stats.mean - base.mean) / sigma
    summary.z = _round(z)
    severity = _severity_for_z(z)
    if severity is None:
        return None
    confidence = min(0.9, 0.55 + 0.05 * (abs(z) - Z_LOW)) * (0.8 if base.source == "1m-short" else 1.0)
    params = {"role": role_label(sig.role), "minutes": window_min, "level": fmt(level_stats.mean), "mean": fmt(base.mean),
              "sigma": fmt(sigma), "unit": unit, "z": fmt(z)}
    keys = {"title": "anomaly_title", "rationale": "anomaly_rationale", "action": "anomaly_action",
            "expected_impact": "anomaly_impact"}
    return _finding(asset, "anomaly", severity, keys, params, round(confidence, 2),
                    evidence={"signal_id": sig.signal_id, "signal": sig.name, "role": sig.role, "z": _round(z),
                              "recent_mean": _round(level_stats.mean), "baseline_mean": _round(base.mean),
                              "baseline_sigma": _round(sigma), "baseline_source": base.source,
                              "baseline_buckets": base.buckets})


def _paired(a: list[Bucket], b: list[Bucket]) -> list[tuple[float, float]]:
    by_time = {x.bucket: x.avg for x in b}
    return [(x.avg, by_time[x.bucket]) for x in a if x.bucket in by_time]


def efficiency(asset: AssetData, now: datetime) -> tuple[float | None, Finding | None]:
    """(recent specific energy in kWh/m³, an opportunity when it rose above its baseline)."""
    power = next((s for s in asset.signals if s.role == "power"), None)
    flow = next((s for s in asset.signals if s.role == "flow"), None)
    if power is None or flow is None:
        return None, None
    p_recent, p_base, window = windows(power, now)
    f_recent, f_base, _ = windows(flow, now)
    pairs = [(p, f) for p, f in _paired(p_recent, f_recent) if f > 0]
    if len(pairs) < MIN_RECENT_BUCKETS:
        return None, None
    recent_power = sum(p for p, _ in pairs) / len(pairs)
    recent_flow = sum(f for _, f in pairs) / len(pairs)
    recent_ratio = recent_power / recent_flow
    if p_base is None or f_base is None or f_base.mean <= 0 or p_base.source != f_base.source \
            or p_base.source == "1m-short":
        return recent_ratio, None
    base_ratio = p_base.mean / f_base.mean
    if base_ratio <= 0:
        return recent_ratio, None
    gain = recent_ratio / base_ratio - 1.0
    if gain <= EFFICIENCY_MIN_GAIN:
        return recent_ratio, None
    excess_kw = (recent_ratio - base_ratio) * recent_flow
    params = {"recent": fmt(recent_ratio), "baseline": fmt(base_ratio), "gain": fmt(gain * 100), "kw": fmt(excess_kw),
              "mwh": fmt(excess_kw * HOURS_PER_YEAR / 1000)}
    keys = {"title": "efficiency_title", "rationale": "efficiency_rationale", "action": "efficiency_action",
            "expected_impact": "efficiency_impact"}
    finding = _finding(asset, "efficiency", "medium" if gain >= 0.15 else "low", keys, params, 0.7,
                       impact_value=_round(excess_kw), impact_unit="kW",
                       evidence={"power_signal_id": power.signal_id, "flow_signal_id": flow.signal_id,
                                 "recent_kwh_per_m3": _round(recent_ratio), "baseline_kwh_per_m3": _round(base_ratio),
                                 "gain": _round(gain), "excess_kw": _round(excess_kw), "window_minutes": window})
    return recent_ratio, finding


def _finding(asset: AssetData, kind: str, severity: str, keys: dict[str, str], params: dict[str, Any],
             confidence: float, *, impact_value: float | None = None, impact_unit: str | None = None,
             evidence: dict[str, Any] | None = None) -> Finding:
    texts = {field_: _text(key, params) for field_, key in keys.items()}
    evidence = {**(evidence or {}), "msg": {field_: M[key] for field_, key in keys.items()}, "params": params}
    return Finding(asset.asset_id, kind, severity, texts["title"], texts["rationale"], texts["action"],
                   texts["expected_impact"], confidence, impact_value, impact_unit, evidence)


# ------------------------------------------------------------------------------------------- the engine

def analyze_asset(asset: AssetData, now: datetime) -> AssetAnalysis:
    findings: list[Finding] = []
    summaries: list[SignalSummary] = []
    stale: list[SignalData] = []
    for sig in asset.signals:
        fresh = sig.fresh(now)
        latest = sig.shown(sig.latest) if fresh else None
        summary = SignalSummary(sig.signal_id, sig.name, sig.role, sig.unit, _round(latest), fresh,
                                {"warn_low": sig.limits.warn_low, "warn_high": sig.limits.warn_high,
                                 "crit_low": sig.limits.crit_low, "crit_high": sig.limits.crit_high})
        summaries.append(summary)
        unit = sig.unit or ""
        if not fresh:
            stale.append(sig)
        elif latest is not None and (f := _limit_finding(asset, sig, latest, unit)):
            findings.append(f)
        recent, base, window_min = windows(sig, now)
        if f := _anomaly_finding(asset, sig, summary, recent, base, window_min, unit):
            findings.append(f)
        if fresh and sig.role != "running" and (f := _trend_finding(asset, sig, summary, now, unit)):
            findings.append(f)
    specific_energy, eff = efficiency(asset, now)
    if eff is not None:
        findings.append(eff)
    if stale:
        names = ", ".join(s.name for s in stale[:6]) + (" …" if len(stale) > 6 else "")
        keys = {"title": "stale_title", "rationale": "stale_rationale", "action": "stale_action",
                "expected_impact": "stale_impact"}
        findings.append(_finding(asset, "stale", "info" if len(stale) < len(asset.signals) else "low", keys,
                                 {"count": len(stale), "names": names}, 1.0,
                                 evidence={"signal_ids": [s.signal_id for s in stale]}))
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], -f.confidence, f.kind))
    return AssetAnalysis(asset.asset_id, asset.code, summaries, findings, _round(specific_energy))


def analyze(assets: list[AssetData], now: datetime) -> list[AssetAnalysis]:
    return [analyze_asset(a, now) for a in assets]
