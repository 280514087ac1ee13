"""Health scoring rules: from an asset's mapped signals to a status, a health score and a failure probability.

Pure functions, no I/O: the scoring job (optria.twin.jobs) loads the inputs, these rules
decide, the job writes the result. The same limit check colours the live values on the
twin pages, so a value drawn red is a value the score counts as beyond its limit.

Inputs for one asset: every *enabled* mapping of a signal to the asset (metric role, unit,
scale/offset, warn/crit limits, expected interval) with the signal's latest sample from
``signal_latest``; for roles watched for drift a baseline from the 1-hour / 1-minute
aggregates; and the newest AI score, when the optimization module wrote one.

Values are compared in *shown* units: shown = raw × scale + offset, and the limits of a
mapping are in shown units.

Rules, per signal:

1. **Freshness.** A signal is stale when it has no sample, its quality is bad (3) or stale
   (4: the ingest worker lost the source and marked it), or — unless its source is live —
   its newest sample is older than ``STALE_AFTER_INTERVALS`` × its expected interval. OPC-UA
   and PI report by exception: an unchanged value sends nothing, so while the integration's
   ingest worker reports itself connected with a heartbeat younger than
   ``SOURCE_HEARTBEAT_S`` the value counts as current however old it is ("live source").
   A stale value is not judged.
2. **Limits** (strictly past a limit). Beyond ``crit_low``/``crit_high`` → *critical* (penalty 65, probability
   0.85). Beyond ``warn_low``/``warn_high`` → *warning*; penalty 20…40 and probability
   0.30…0.60, both growing as the value moves from the warning limit towards the
   critical one.
3. **Drift** (roles in ``DRIFT_ROLES``, i.e. vibration, which rises before a bearing
   fails). The recent level (mean of the last ``LEVEL_MINUTES`` minutes of ``signal_1m``)
   is compared with a baseline: the mean of the completed hours of the last day
   (``signal_1h``, at least ``MIN_HOURS`` hours), or else of the last hour without its
   newest ``BASELINE_GAP_MINUTES`` minutes (``signal_1m``, at least ``MIN_MINUTES``
   minutes). The spread σ combines the spread of the bucket means with the typical
   bucket range (range ≈ 4σ). The drift ratio is r = (level − mean) / t with
   t = max(3σ, ``DRIFT_MIN_RELATIVE`` × |mean|). r ≥ 1 → *warning* "drift", penalty
   15…35 and probability 0.25…0.75 rising with r (r = 4 or more gives the maximum);
   0.5 ≤ r < 1 stays *normal* but already raises the probability (0.05…0.25, "drift
   watch"). A value that is also beyond a limit is judged by the worse of the two.
4. **Quality.** Questionable or substituted values (1, 2) are used, with a small penalty.

Combining the signals of an asset:

- no enabled signal at all, or every signal stale → status ``nodata``, score and
  probability empty: an asset without current data is never shown as "normal";
- some signals stale → the others are judged, and the status is at least *warning*
  (a watched quantity is missing);
- status = the worst signal status; health score = 100 − the largest penalty − ¼ of the
  other penalties, within 0…100 and capped by the status (warning ≤ 75, critical ≤ 40);
  failure probability = 1 − Π(1 − pᵢ), at least ``BASE_PROBABILITY``;
- the **AI score** (newest ``source = 'ai'`` snapshot, not older than ``AI_MAX_AGE_S``)
  is combined conservatively: the lower health, the higher probability and the worse
  status win, so a model can raise a risk but never clear an alarm the rules see, and
  never turn missing data into a score. The result's source is ``ai`` when the AI score
  made it worse, else ``rules``;
- the time of the result is the newest fresh sample (for a live source: its last
  heartbeat), or the moment the data went stale (sample age limit, heartbeat lapse, or when
  the worker marked it stale), so two processes scoring the same data write the same row
  (idempotent);
- ``contributing`` lists every signal with a finding, worst first (at most
  ``MAX_CONTRIBUTING``): signal id, name, role, value, unit, reason, status, penalty and
  the limit or baseline involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from optria.assets.models import STALE_AFTER_INTERVALS

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

CRIT_PENALTY, CRIT_PROBABILITY = 65.0, 0.85
WARN_PENALTY, WARN_PENALTY_SPAN = 20.0, 20.0
WARN_PROBABILITY, WARN_PROBABILITY_SPAN = 0.30, 0.30
DRIFT_PENALTY, DRIFT_PENALTY_SPAN = 15.0, 20.0
DRIFT_PROBABILITY, DRIFT_PROBABILITY_SPAN = 0.25, 0.50
WATCH_PROBABILITY, WATCH_PROBABILITY_SPAN = 0.05, 0.20
WATCH_PENALTY_SPAN = 5.0
QUALITY_PENALTY = 5.0
STALE_PENALTY = 10.0
SOURCE_HEARTBEAT_S = 30
BASE_PROBABILITY = 0.02
STATUS_SCORE_CAP = {"normal": 100.0, "warning": 75.0, "critical": 40.0}
AI_MAX_AGE_S = 6 * 3600
MAX_CONTRIBUTING = 10


@dataclass(frozen=True)
class Limits:
    warn_low: float | None = None
    warn_high: float | None = None
    crit_low: float | None = None
    crit_high: float | None = None


@dataclass(frozen=True)
class Baseline:
    """Aggregates of the raw values (the rules apply scale/offset)."""

    mean: float
    spread: float          # σ estimate in raw units
    level: float           # recent level in raw units
    source: str = "1h"     # "1h" or "1m": which aggregate gave the baseline


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
    source_live: bool = False          # the integration's worker is connected, heartbeat fresh
    source_seen: datetime | None = None  # the worker's last heartbeat

    def shown(self, raw: float | None) -> float | None:
        return None if raw is None else raw * self.scale + self.offset

    @property
    def shown_value(self) -> float | None:
        return self.shown(self.value)

    def stale_at(self) -> datetime | None:
        """When the newest sample stops counting as current."""
        if self.time is None:
            return None
        return self.time + timedelta(seconds=self.expected_interval_s * STALE_AFTER_INTERVALS)

    def is_stale(self, now: datetime) -> bool:
        if self.time is None or self.value is None or self.quality in (QUALITY_BAD, QUALITY_STALE):
            return True
        if self.source_live:
            return False
        return now >= self.stale_at()  # type: ignore[operator]

    def current_as_of(self) -> datetime | None:
        """Up to when a fresh value is known to hold: its sample, or the live source's heartbeat."""
        if self.source_live and self.source_seen is not None and self.time is not None:
            return max(self.time, self.source_seen)
        return self.time

    def went_stale_at(self) -> datetime | None:
        """When a stale signal stopped counting: when data was first expected (none yet), when the
        worker marked it stale, the bad sample, or its age limit / the heartbeat lapse, whichever
        came later."""
        if self.time is None or self.value is None:
            return self.since
        if self.quality == QUALITY_STALE:
            return self.marked_at or self.time
        if self.quality == QUALITY_BAD:
            return self.time
        lapse = self.source_seen + timedelta(seconds=SOURCE_HEARTBEAT_S) if self.source_seen else None
        return max(t for t in (self.stale_at(), lapse) if t is not None)


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
    reason: str            # ok | crit_high | crit_low | warn_high | warn_low | drift | drift_watch | quality | stale | no_data | bad_quality
    penalty: float = 0.0
    probability: float = 0.0
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


def limit_state(value: float | None, limits: Limits) -> tuple[str, str, float | None, float]:
    """(status, reason, limit crossed, how far towards the critical limit 0..1) of a shown value.

    A limit is breached when the value is strictly past it, as in the Black Box's limit
    events (optria.blackbox.limits.raw_level), so both judge a value the same way."""
    if value is None:
        return "normal", "ok", None, 0.0
    if limits.crit_high is not None and value > limits.crit_high:
        return "critical", "crit_high", limits.crit_high, 1.0
    if limits.crit_low is not None and value < limits.crit_low:
        return "critical", "crit_low", limits.crit_low, 1.0
    if limits.warn_high is not None and value > limits.warn_high:
        frac = 0.0
        if limits.crit_high is not None and limits.crit_high > limits.warn_high:
            frac = (value - limits.warn_high) / (limits.crit_high - limits.warn_high)
        return "warning", "warn_high", limits.warn_high, _clamp(frac, 0.0, 1.0)
    if limits.warn_low is not None and value < limits.warn_low:
        frac = 0.0
        if limits.crit_low is not None and limits.crit_low < limits.warn_low:
            frac = (limits.warn_low - value) / (limits.warn_low - limits.crit_low)
        return "warning", "warn_low", limits.warn_low, _clamp(frac, 0.0, 1.0)
    return "normal", "ok", None, 0.0


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
    """The finding of one signal (rules 1–4 of the module docstring)."""
    if sig.time is None or sig.value is None:
        return Finding(sig, "stale", "no_data", STALE_PENALTY)
    if sig.quality == QUALITY_BAD:
        return Finding(sig, "stale", "bad_quality", STALE_PENALTY)
    if sig.is_stale(now):
        return Finding(sig, "stale", "stale", STALE_PENALTY)
    value = sig.shown_value
    status, reason, limit, frac = limit_state(value, sig.limits)
    if status == "critical":
        finding = Finding(sig, "critical", reason, CRIT_PENALTY, CRIT_PROBABILITY, limit)
    elif status == "warning":
        finding = Finding(sig, "warning", reason, WARN_PENALTY + WARN_PENALTY_SPAN * frac,
                          WARN_PROBABILITY + WARN_PROBABILITY_SPAN * frac, limit)
    else:
        finding = Finding(sig, "normal", "ok")
    r = drift_ratio(sig)
    if r is not None and r >= DRIFT_WATCH:
        b = sig.baseline
        detail = {"baseline": round(b.mean * sig.scale + sig.offset, 4), "level": round(b.level * sig.scale + sig.offset, 4),
                  "ratio": round(r, 2), "baseline_from": b.source}
        if r >= 1.0:
            grow = min((r - 1.0) / 3.0, 1.0)
            drift = Finding(sig, "warning", "drift", DRIFT_PENALTY + DRIFT_PENALTY_SPAN * grow,
                            DRIFT_PROBABILITY + DRIFT_PROBABILITY_SPAN * grow, None, detail)
        else:
            part = (r - DRIFT_WATCH) / (1.0 - DRIFT_WATCH)
            drift = Finding(sig, "normal", "drift_watch", WATCH_PENALTY_SPAN * part,
                            WATCH_PROBABILITY + WATCH_PROBABILITY_SPAN * part, None, detail)
        if (STATUS_RANK[drift.status], drift.probability) > (STATUS_RANK[finding.status], finding.probability):
            finding = drift
    if finding.reason == "ok" and sig.quality in (QUALITY_QUESTIONABLE, QUALITY_SUBSTITUTED):
        finding = Finding(sig, "normal", "quality", QUALITY_PENALTY, 0.0)
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
    out.update(f.detail)
    return out


def _severity(f: Finding) -> tuple:
    rank = {"critical": 3, "warning": 2, "stale": 1, "normal": 0}[f.status]
    return (rank, f.penalty, f.probability)


def _stale_time(findings: list[Finding]) -> datetime | None:
    """The moment the last of these stale signals stopped counting."""
    times = [t for t in (f.signal.went_stale_at() for f in findings) if t is not None]
    return max(times) if times else None


def score_asset(signals: list[SignalInput], now: datetime, ai: AiScore | None = None) -> AssetScore:
    """Combine the findings of an asset's signals (and an AI score) into one result."""
    findings = [assess_signal(s, now) for s in signals]
    fresh = [f for f in findings if f.status != "stale"]
    stale = [f for f in findings if f.status == "stale"]
    contributing = [_contribution(f) for f in sorted(findings, key=_severity, reverse=True) if f.reason != "ok"]
    contributing = contributing[:MAX_CONTRIBUTING]
    if not fresh:
        when = _stale_time(stale) or now
        return AssetScore("nodata", None, None, min(when, now), "rules", contributing)

    status = max((f.status for f in fresh), key=STATUS_RANK.__getitem__)
    if stale and STATUS_RANK[status] < STATUS_RANK["warning"]:
        status = "warning"
    penalties = sorted((f.penalty for f in findings if f.penalty > 0), reverse=True)
    penalty = penalties[0] + 0.25 * sum(penalties[1:]) if penalties else 0.0
    health = _clamp(100.0 - penalty, 0.0, STATUS_SCORE_CAP[status])
    survive = math.prod(1.0 - f.probability for f in fresh)
    probability = _clamp(1.0 - survive, BASE_PROBABILITY, 1.0)

    times = [t for t in (f.signal.current_as_of() for f in fresh) if t is not None]
    stale_when = _stale_time(stale)
    when = max(times + ([stale_when] if stale_when else []))
    source = "rules"

    if ai is not None and (now - ai.time).total_seconds() <= AI_MAX_AGE_S and ai.status in STATUS_RANK:
        worse = False
        if ai.health_score is not None and ai.health_score < health:
            health, worse = _clamp(ai.health_score, 0.0, 100.0), True
        if ai.failure_probability is not None and ai.failure_probability > probability:
            probability, worse = _clamp(ai.failure_probability, 0.0, 1.0), True
        if STATUS_RANK[ai.status] > STATUS_RANK[status]:
            status, worse = ai.status, True
        health = min(health, STATUS_SCORE_CAP[status])
        if worse:
            source = "ai"
            contributing = [{"reason": "ai_score", "status": ai.status, "health_score": ai.health_score,
                             "failure_probability": ai.failure_probability, "time": ai.time.isoformat()},
                            *contributing][:MAX_CONTRIBUTING]
    return AssetScore(status, round(health, 1), round(probability, 3), min(when, now) if when else now, source,
                      contributing)


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
