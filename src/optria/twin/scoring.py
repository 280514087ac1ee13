"""Health scoring rules: from an asset's mapped signals to a status, a health score and a failure probability.

Pure functions, no I/O: the scoring job (optria.twin.jobs) loads the inputs, these rules
decide, the job writes the result. The same limit check colours the live values on the
twin pages, so a value drawn red is a value the score counts as beyond its limit.

Inputs for one asset: every *enabled* mapping of a signal to the asset (metric role, unit,
scale/offset, warn/crit limits, expected interval) with the signal's latest sample from
``signal_latest`` and its source's ingest worker (``ingest_health``); for roles watched for
drift a baseline from the 1-hour / 1-minute aggregates; for signals with a critical limit
the trend of their recent 1-minute means (:class:`Trend`); and the newest AI score, when
the optimization module wrote one.

Values are compared in *shown* units: shown = raw × scale + offset, and the limits of a
mapping are in shown units.

Rules, per signal:

1. **Freshness** is the one rule of :mod:`optria.timeseries.staleness`: no value, bad
   quality, a stale mark (the ingest worker lost the source) or a lapsed worker heartbeat →
   stale at once; a live source (worker connected, heartbeat fresh) keeps an unchanged
   value current however old (OPC-UA and PI report by exception); otherwise a value counts
   for ``STALE_AFTER_INTERVALS`` expected intervals. A stale value is not judged.
2. **Limits** (strictly past a limit). Beyond ``crit_low``/``crit_high`` → *critical*
   (penalty 65). Beyond ``warn_low``/``warn_high`` → *warning*, penalty 20…40 growing as the
   value moves from the warning limit towards the critical one.
3. **Drift** (roles in ``DRIFT_ROLES``, i.e. vibration, which rises before a bearing
   fails). The recent level (mean of the last ``LEVEL_MINUTES`` minutes of ``signal_1m``)
   is compared with a baseline: the mean of the completed hours of the last day
   (``signal_1h``, at least ``MIN_HOURS`` hours), or else of the last hour without its
   newest ``BASELINE_GAP_MINUTES`` minutes (``signal_1m``, at least ``MIN_MINUTES``
   minutes). The spread σ combines the spread of the bucket means with the typical
   bucket range (range ≈ 4σ). The drift ratio is r = (level − mean) / t with
   t = max(3σ, ``DRIFT_MIN_RELATIVE`` × |mean|). r ≥ 1 → *warning* "drift", penalty
   15…35 rising with r; 0.5 ≤ r < 1 stays *normal* with a small penalty ("drift watch").
   A value that is also beyond a limit is judged by the worse of the two.
4. **Quality.** Questionable or substituted values (1, 2) are used, with a small penalty.
5. **Failure probability** (signals with a critical limit): the chance that the signal
   passes a critical limit within the next ``HORIZON_H`` hours, from its own data. A
   least-squares line through the 1-minute means of the last ``TREND_HOURS`` hours gives a
   slope *b* (with its standard error *se*) and the scatter σ of the means around the line
   (with the typical spread inside a minute, range ≈ 4σ). A trend is trusted no further ahead
   than the hours *h* of data it was fitted on: starting from the current value x₀, the value
   expected *t* hours ahead is x₀ + b·min(t, h) with uncertainty s(t) = √(σ² + (se·min(t, h))²)
   (an oscillation seen over minutes is not extrapolated over a day); each hour of the horizon
   is one draw, so
   p = 1 − Π_{t=1…H} (1 − P(beyond the limit at t)), P from the normal distribution, both
   sides (high and low) combined. A value already past a critical limit gives 1 (the
   highest; a forecast is capped at ``FORECAST_MAX``); a signal with fewer than
   ``MIN_TREND_BUCKETS`` minute means, or no critical limit, gives none. See :func:`crossing_probability`.

Combining the signals of an asset:

- no enabled signal at all, or every signal stale → status ``nodata``, score and
  probability empty: an asset without current data is never shown as "normal";
- some signals stale → the others are judged, and the status is at least *warning*
  (a watched quantity is missing);
- status = the worst signal status; health score = 100 − the largest penalty − ¼ of the
  other penalties, within 0…100 and capped by the status (warning ≤ 75, critical ≤ 40);
  failure probability = 1 − Π(1 − pᵢ) over the fresh signals that have one (none when no
  signal has one: not enough history, or no critical limit to judge);
- the **AI score** (newest ``source = 'ai'`` snapshot, not older than ``AI_MAX_AGE_S``)
  is combined conservatively: the lower health, the higher probability and the worse
  status win, so a model can raise a risk but never clear an alarm the rules see, and
  never turn missing data into a score. The result's source is ``ai`` when the AI score
  made it worse (the pages then label the figure as the AI model's), else ``rules``;
- the time of the result is the newest fresh sample (for a live source: its last
  heartbeat), or the moment the data went stale (sample age limit, heartbeat lapse, or when
  the worker marked it stale), so two processes scoring the same data write the same row
  (idempotent);
- ``contributing`` lists every signal with a finding, worst first (at most
  ``MAX_CONTRIBUTING``): signal id, name, role, value, unit, reason, status, penalty, the
  limit or baseline involved, and its 24-hour crossing probability (``p24``) where it has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optria.timeseries.limits import Limits, raw_level
from optria.timeseries.staleness import SOURCE_HEARTBEAT_S, STALE_AFTER_INTERVALS, Reading

STATUS_RANK = {"normal": 0, "warning": 1, "critical": 2}
QUALITY_GOOD, QUALITY_QUESTIONABLE, QUALITY_SUBSTITUTED, QUALITY_BAD, QUALITY_STALE = 0, 1, 2, 3, 4

DRIFT_ROLES = ("vibration",)
LEVEL_MINUTES = 5
BASELINE_GAP_MINUTES = 10
MIN_HOURS = 3
MIN_MINUTES = 15
DRIFT_SIGMAS = 3.0
DRIFT_MIN_RELATIVE = 0.25
DRIFT_WATCH = 0.5

HORIZON_H = 24            # the failure probability is the chance of a critical limit crossing within this many hours
TREND_HOURS = 6           # ... judged from the trend of the 1-minute means of this many hours
MIN_TREND_BUCKETS = 30    # ... and only with at least this many of them (half an hour)
FORECAST_MAX = 0.99       # a forecast crossing is never certain; only a value already past the limit scores 1

CRIT_PENALTY = 65.0
WARN_PENALTY, WARN_PENALTY_SPAN = 20.0, 20.0
DRIFT_PENALTY, DRIFT_PENALTY_SPAN = 15.0, 20.0
WATCH_PENALTY_SPAN = 5.0
QUALITY_PENALTY = 5.0
STALE_PENALTY = 10.0
STATUS_SCORE_CAP = {"normal": 100.0, "warning": 75.0, "critical": 40.0}
AI_MAX_AGE_S = 6 * 3600
MAX_CONTRIBUTING = 10
CONTRIBUTING_MIN_P = 0.01  # a signal whose crossing probability reaches this is listed among the reasons


@dataclass(frozen=True)
class Baseline:
    """Aggregates of the raw values (the rules apply scale/offset)."""

    mean: float
    spread: float          # σ estimate in raw units
    level: float           # recent level in raw units
    source: str = "1h"     # "1h" or "1m": which aggregate gave the baseline


@dataclass(frozen=True)
class Trend:
    """A least-squares line through a signal's recent 1-minute means, in raw units (rule 5)."""

    buckets: int           # how many minute means the line went through
    slope_per_h: float     # raw units per hour
    slope_se: float        # standard error of the slope
    scatter: float         # σ of a minute mean around the line, the spread inside a minute folded in
    span_h: float = TREND_HOURS   # the hours those means cover: the trend is trusted no further ahead


@dataclass(frozen=True)
class SignalInput:
    signal_id: int
    name: str
    role: str
    unit: str | None
    scale: float = 1.0
    offset: float = 0.0
    limits: Limits = field(default_factory=Limits)
    expected_interval_s: int = 60
    time: datetime | None = None       # newest sample (source time)
    value: float | None = None         # raw
    quality: int | None = None
    since: datetime | None = None      # when data was first expected (the mapping's last change)
    baseline: Baseline | None = None
    marked_at: datetime | None = None  # when the newest row was written (signal_latest.ingest_time)
    source_connected: bool | None = None  # the integration's ingest worker is connected (None: none has reported)
    source_seen: datetime | None = None   # the worker's last heartbeat
    trend: Trend | None = None

    def shown(self, raw: float | None) -> float | None:
        return None if raw is None else raw * self.scale + self.offset

    @property
    def shown_value(self) -> float | None:
        return self.shown(self.value)

    def reading(self) -> Reading:
        return Reading(time=self.time, has_value=self.value is not None, quality=self.quality,
                       expected_interval_s=self.expected_interval_s, connected=self.source_connected,
                       heartbeat_at=self.source_seen, marked_at=self.marked_at)

    def is_stale(self, now: datetime) -> bool:
        return not self.reading().is_current(now)

    def current_as_of(self) -> datetime | None:
        """Up to when a fresh value is known to hold: its sample, or the live source's heartbeat."""
        if self.source_connected and self.source_seen is not None and self.time is not None:
            return max(self.time, self.source_seen)
        return self.time

    def went_stale_at(self, now: datetime) -> datetime | None:
        """When a stale signal stopped counting: when data was first expected (none yet), or the
        moment the staleness rule gives (the stale mark, the bad sample, the heartbeat lapse, the
        age limit)."""
        if self.time is None or self.value is None:
            return self.since
        return self.reading().stale_since(now)


@dataclass(frozen=True)
class AiScore:
    time: datetime
    health_score: float | None
    failure_probability: float | None
    status: str


@dataclass(frozen=True)
class Finding:
    """What one signal contributes: status, health penalty, failure probability and why."""

    signal: SignalInput
    status: str            # normal | warning | critical | stale
    reason: str            # ok | crit_high | crit_low | warn_high | warn_low | drift | drift_watch | quality | stale | no_data | bad_quality | risk
    penalty: float = 0.0
    probability: float | None = None   # chance of a critical limit crossing within HORIZON_H (None: not judged)
    limit: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetScore:
    status: str                        # normal | warning | critical | nodata
    health_score: float | None
    failure_probability: float | None
    time: datetime
    source: str                        # rules | ai
    contributing: list[dict[str, Any]]

    def key(self) -> tuple:
        """What a reader sees; rows with the same key need no new snapshot."""
        return (self.status, self.health_score, self.failure_probability, self.source)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def _normal_tail(z: float) -> float:
    """P(N(0, 1) > z)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def crossing_probability(value: float | None, limits: Limits, trend: Trend | None, *,
                         horizon_h: int = HORIZON_H) -> float | None:
    """Rule 5 in shown units: the chance that a signal now at ``value`` passes ``crit_high`` or
    ``crit_low`` within ``horizon_h`` hours, given the trend of its recent minute means.

    1.0 when it is past a critical limit already; None without a critical limit, a value, or a
    trend of at least ``MIN_TREND_BUCKETS`` minute means."""
    if value is None or (limits.crit_high is None and limits.crit_low is None):
        return None
    if (limits.crit_high is not None and value > limits.crit_high) or \
            (limits.crit_low is not None and value < limits.crit_low):
        return 1.0
    if trend is None or trend.buckets < MIN_TREND_BUCKETS:
        return None
    survive = 1.0
    for hour in range(1, horizon_h + 1):
        t = min(float(hour), max(trend.span_h, 0.0))
        expected = value + trend.slope_per_h * t
        spread = math.sqrt(trend.scatter ** 2 + (trend.slope_se * t) ** 2)
        p = 0.0
        for limit, sign in ((limits.crit_high, 1.0), (limits.crit_low, -1.0)):
            if limit is None:
                continue
            distance = sign * (limit - expected)       # how far the expected value is from passing
            if spread <= 0.0:
                p += 1.0 if distance < 0 else 0.0
            else:
                p += _normal_tail(distance / spread)
        survive *= 1.0 - min(p, 1.0)
    return _clamp(1.0 - survive, 0.0, FORECAST_MAX)


def shown_trend(sig: SignalInput) -> Trend | None:
    """The raw trend of a signal in shown units (scale multiplies slope and spreads)."""
    t = sig.trend
    if t is None:
        return None
    k = abs(sig.scale)
    return Trend(t.buckets, t.slope_per_h * sig.scale, t.slope_se * k, t.scatter * k, t.span_h)


def limit_state(value: float | None, limits: Limits) -> tuple[str, str, float | None, float]:
    """(status, reason, limit crossed, how far towards the critical limit 0..1) of a shown value.

    The band is the one rule of optria.timeseries.limits (strictly past a limit), the same the
    Black Box's limit events use, so both judge a value the same way."""
    level = "normal" if value is None else raw_level(limits, value)
    if level == "normal":
        return "normal", "ok", None, 0.0
    limit = limits.of(level)
    if level in ("crit_high", "crit_low"):
        return "critical", level, limit, 1.0
    # a warning: how far the value has gone from its warning limit towards the critical one on that side
    crit = limits.crit_high if level == "warn_high" else limits.crit_low
    frac = 0.0
    if crit is not None and crit != limit and (crit > limit) == (level == "warn_high"):
        frac = (value - limit) / (crit - limit)
    return "warning", level, limit, _clamp(frac, 0.0, 1.0)


def drift_ratio(sig: SignalInput) -> float | None:
    """(level − baseline mean) / threshold in shown units, or None without a usable baseline."""
    b = sig.baseline
    if b is None or sig.role not in DRIFT_ROLES:
        return None
    mean = b.mean * sig.scale + sig.offset
    level = b.level * sig.scale + sig.offset
    spread = abs(b.spread * sig.scale)
    threshold = max(DRIFT_SIGMAS * spread, DRIFT_MIN_RELATIVE * abs(mean), 1e-9)
    return (level - mean) / threshold


def assess_signal(sig: SignalInput, now: datetime) -> Finding:
    """The finding of one signal (rules 1–5 of the module docstring)."""
    if sig.time is None or sig.value is None:
        return Finding(sig, "stale", "no_data", STALE_PENALTY)
    if sig.quality == QUALITY_BAD:
        return Finding(sig, "stale", "bad_quality", STALE_PENALTY)
    if sig.is_stale(now):
        return Finding(sig, "stale", "stale", STALE_PENALTY)
    value = sig.shown_value
    probability = crossing_probability(value, sig.limits, shown_trend(sig))
    status, reason, limit, frac = limit_state(value, sig.limits)
    if status == "critical":
        finding = Finding(sig, "critical", reason, CRIT_PENALTY, probability, limit)
    elif status == "warning":
        finding = Finding(sig, "warning", reason, WARN_PENALTY + WARN_PENALTY_SPAN * frac, probability, limit)
    else:
        finding = Finding(sig, "normal", "ok", 0.0, probability)
    r = drift_ratio(sig)
    if r is not None and r >= DRIFT_WATCH:
        b = sig.baseline
        detail = {"baseline": round(b.mean * sig.scale + sig.offset, 4), "level": round(b.level * sig.scale + sig.offset, 4),
                  "ratio": round(r, 2), "baseline_from": b.source}
        if r >= 1.0:
            grow = min((r - 1.0) / 3.0, 1.0)
            drift = Finding(sig, "warning", "drift", DRIFT_PENALTY + DRIFT_PENALTY_SPAN * grow, probability, None,
                            detail)
        else:
            part = (r - DRIFT_WATCH) / (1.0 - DRIFT_WATCH)
            drift = Finding(sig, "normal", "drift_watch", WATCH_PENALTY_SPAN * part, probability, None, detail)
        if (STATUS_RANK[drift.status], drift.penalty) > (STATUS_RANK[finding.status], finding.penalty):
            finding = drift
    if finding.reason == "ok" and sig.quality in (QUALITY_QUESTIONABLE, QUALITY_SUBSTITUTED):
        finding = Finding(sig, "normal", "quality", QUALITY_PENALTY, probability)
    if finding.reason == "ok" and probability is not None and probability >= CONTRIBUTING_MIN_P:
        finding = Finding(sig, "normal", "risk", 0.0, probability)
    return finding


def _contribution(f: Finding) -> dict[str, Any]:
    value = f.signal.shown_value
    out: dict[str, Any] = {
        "signal_id": f.signal.signal_id, "name": f.signal.name, "role": f.signal.role,
        "value": None if value is None else round(value, 4), "unit": f.signal.unit,
        "reason": f.reason, "status": f.status, "penalty": round(f.penalty, 1),
    }
    if f.limit is not None:
        out["limit"] = f.limit
    if f.probability is not None:
        out["p24"] = round(f.probability, 3)
    out.update(f.detail)
    return out


def _severity(f: Finding) -> tuple:
    rank = {"critical": 3, "warning": 2, "stale": 1, "normal": 0}[f.status]
    return (rank, f.penalty, f.probability or 0.0)


def _stale_time(findings: list[Finding], now: datetime) -> datetime | None:
    """The moment the last of these stale signals stopped counting."""
    times = [t for t in (f.signal.went_stale_at(now) for f in findings) if t is not None]
    return max(times) if times else None


def score_asset(signals: list[SignalInput], now: datetime, ai: AiScore | None = None) -> AssetScore:
    """Combine the findings of an asset's signals (and an AI score) into one result."""
    findings = [assess_signal(s, now) for s in signals]
    fresh = [f for f in findings if f.status != "stale"]
    stale = [f for f in findings if f.status == "stale"]
    contributing = [_contribution(f) for f in sorted(findings, key=_severity, reverse=True) if f.reason != "ok"]
    contributing = contributing[:MAX_CONTRIBUTING]
    if not fresh:
        when = _stale_time(stale, now) or now
        return AssetScore("nodata", None, None, min(when, now), "rules", contributing)

    status = max((f.status for f in fresh), key=STATUS_RANK.__getitem__)
    if stale and STATUS_RANK[status] < STATUS_RANK["warning"]:
        status = "warning"
    penalties = sorted((f.penalty for f in findings if f.penalty > 0), reverse=True)
    penalty = penalties[0] + 0.25 * sum(penalties[1:]) if penalties else 0.0
    health = _clamp(100.0 - penalty, 0.0, STATUS_SCORE_CAP[status])
    judged = [f.probability for f in fresh if f.probability is not None]
    probability = _clamp(1.0 - math.prod(1.0 - p for p in judged), 0.0, 1.0) if judged else None

    times = [t for t in (f.signal.current_as_of() for f in fresh) if t is not None]
    stale_when = _stale_time(stale, now)
    when = max(times + ([stale_when] if stale_when else []))
    source = "rules"

    if ai is not None and (now - ai.time).total_seconds() <= AI_MAX_AGE_S and ai.status in STATUS_RANK:
        worse = False
        if ai.health_score is not None and ai.health_score < health:
            health, worse = _clamp(ai.health_score, 0.0, 100.0), True
        if ai.failure_probability is not None and (probability is None or ai.failure_probability > probability):
            probability, worse = _clamp(ai.failure_probability, 0.0, 1.0), True
        if STATUS_RANK[ai.status] > STATUS_RANK[status]:
            status, worse = ai.status, True
        health = min(health, STATUS_SCORE_CAP[status])
        if worse:
            source = "ai"
            contributing = [{"reason": "ai_score", "status": ai.status, "health_score": ai.health_score,
                             "failure_probability": ai.failure_probability, "time": ai.time.isoformat()},
                            *contributing][:MAX_CONTRIBUTING]
    return AssetScore(status, round(health, 1), None if probability is None else round(probability, 3),
                      min(when, now) if when else now, source, contributing)


def baseline_from_aggregates(*, level: float | None, hour_buckets: int | None, hour_mean: float | None,
                             hour_sd: float | None, hour_range: float | None, minute_buckets: int | None,
                             minute_mean: float | None, minute_sd: float | None,
                             minute_range: float | None) -> Baseline | None:
    """The baseline of rule 3 from the aggregate figures the job reads (raw units), or None when
    there is not enough history: hours first, minutes as the fallback of a young signal."""
    if level is None:
        return None
    if (hour_buckets or 0) >= MIN_HOURS and hour_mean is not None:
        mean, sd, rng, source = hour_mean, hour_sd, hour_range, "1h"
    elif (minute_buckets or 0) >= MIN_MINUTES and minute_mean is not None:
        mean, sd, rng, source = minute_mean, minute_sd, minute_range, "1m"
    else:
        return None
    spread = math.sqrt((sd or 0.0) ** 2 + ((rng or 0.0) / 4.0) ** 2)
    return Baseline(mean=float(mean), spread=spread, level=float(level), source=source)


def trend_from_figures(*, buckets: int | None, sxx: float | None, syy: float | None, sxy: float | None,
                       rng: float | None, span_h: float | None = None) -> Trend | None:
    """The :class:`Trend` of rule 5 from the regression sums the job reads (raw units, x in hours):
    slope = Sxy / Sxx, residual variance = (Syy − Sxy² / Sxx) / (n − 2), se = √(variance / Sxx);
    the scatter folds in the typical spread inside a minute (range ≈ 4σ). None with fewer than
    three minute means or no spread of time."""
    if not buckets or buckets < 3 or not sxx or sxx <= 0 or syy is None or sxy is None:
        return None
    slope = sxy / sxx
    residual = max(syy - sxy * sxy / sxx, 0.0) / (buckets - 2)
    within = ((rng or 0.0) / 4.0) ** 2
    return Trend(buckets=int(buckets), slope_per_h=slope, slope_se=math.sqrt(residual / sxx),
                 scatter=math.sqrt(residual + within), span_h=float(span_h) if span_h is not None else TREND_HOURS)
