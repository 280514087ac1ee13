"""The health-scoring rules (optria.twin.scoring), case by case as the module docstring states them."""

from __future__ import annotations

from dataclasses import replace
import math
from datetime import datetime, timedelta, timezone

import pytest

from optria.twin import scoring
from optria.twin.cards import gauge, risk_level
from optria.twin.scoring import (AiScore, Baseline, Limits, SignalInput, Trend, baseline_from_aggregates, limit_state,
                                 score_asset)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
VIB_LIMITS = Limits(warn_high=7.1, crit_high=11.0)
TEMP_LIMITS = Limits(warn_low=10.0, warn_high=95.0, crit_low=0.0, crit_high=110.0)
FLAT_BASELINE = Baseline(mean=2.2, spread=0.1, level=2.25, source="1h")


def sig(role: str = "vibration", value: float | None = 2.2, *, age_s: float = 5, quality: int = 0,
        limits: Limits = VIB_LIMITS, interval: int = 60, scale: float = 1.0, offset: float = 0.0,
        baseline: Baseline | None = None, signal_id: int = 1, live: bool = False,
        heartbeat_age_s: float | None = None, trend: Trend | None = None) -> SignalInput:
    """A signal ``age_s`` old; with ``heartbeat_age_s`` its source's worker has reported (connected when ``live``)."""
    seen = None if heartbeat_age_s is None else NOW - timedelta(seconds=heartbeat_age_s)
    return SignalInput(signal_id=signal_id, name=f"{role}-{signal_id}", role=role, unit="mm/s", scale=scale,
                       offset=offset, limits=limits, expected_interval_s=interval,
                       time=None if value is None else NOW - timedelta(seconds=age_s), value=value, quality=quality,
                       since=NOW - timedelta(days=1), baseline=baseline,
                       source_connected=None if heartbeat_age_s is None else live, source_seen=seen,
                       marked_at=None if quality != 4 else NOW - timedelta(seconds=2), trend=trend)


# A steady signal: six hours of minute means without a slope, scattered ±0.15 (σ) around their line.
STEADY = Trend(buckets=360, slope_per_h=0.0, slope_se=0.002, scatter=0.15)
LOW = (0.0, 0.01)       # far from every critical limit: a crossing within 24 h is all but impossible
CERTAIN = (1.0, 1.0)    # already past a critical limit

# (case, signals, expected status, health range, probability range, reasons expected in contributing)
CASES = [
    ("all within limits", [sig(value=2.2, trend=STEADY), sig("temperature", 72, limits=TEMP_LIMITS, signal_id=2,
                                                             trend=STEADY)],
     "normal", (99, 100), LOW, []),
    ("critical high limit breached", [sig(value=12.0), sig("temperature", 72, limits=TEMP_LIMITS, signal_id=2)],
     "critical", (0, 40), CERTAIN, ["crit_high"]),
    ("critical low limit breached", [sig("temperature", -3.0, limits=TEMP_LIMITS)],
     "critical", (0, 40), CERTAIN, ["crit_low"]),
    ("warning high limit", [sig(value=7.5, trend=STEADY)], "warning", (55, 75), LOW, ["warn_high"]),
    ("warning close to critical raises risk", [sig(value=10.8, trend=STEADY)], "warning", (40, 75), (0.8, 0.99),
     ["warn_high"]),
    ("warning low limit", [sig("temperature", 8.0, limits=TEMP_LIMITS, trend=STEADY)], "warning", (40, 75), LOW,
     ["warn_low"]),
    ("exactly on a limit is not past it", [sig(value=7.1, trend=STEADY)], "normal", (99, 100), LOW, []),
    ("scale and offset apply before the limits",  # raw 1.2 → 1.2 × 10 − 0.5 = 11.5 mm/s > 11
     [sig(value=1.2, scale=10.0, offset=-0.5)], "critical", (0, 40), CERTAIN, ["crit_high"]),
    ("drifting vibration below the limits",
     [sig(value=3.4, baseline=Baseline(mean=2.2, spread=0.1, level=3.4), trend=STEADY)], "warning", (45, 75), LOW,
     ["drift"]),
    ("slight rise only watched", [sig(value=2.6, baseline=Baseline(mean=2.2, spread=0.1, level=2.6), trend=STEADY)],
     "normal", (90, 100), LOW, ["drift_watch"]),
    ("flat vibration with a baseline", [sig(value=2.25, baseline=FLAT_BASELINE, trend=STEADY)], "normal", (99, 100),
     LOW, []),
    ("drift is judged only for vibration",
     [sig("temperature", 80, limits=TEMP_LIMITS, baseline=Baseline(mean=72, spread=0.1, level=80), trend=STEADY)],
     "normal", (99, 100), LOW, []),
    ("without enough history there is no probability, not a guess", [sig(value=7.5)], "warning", (55, 75), None,
     ["warn_high"]),
    ("every signal stale → nodata, never normal", [sig(value=2.2, age_s=600), sig("temperature", 72, age_s=600,
                                                                                    limits=TEMP_LIMITS, signal_id=2)],
     "nodata", None, None, ["stale", "stale"]),
    ("source lost (quality 4) → nodata", [sig(value=2.2, quality=4)], "nodata", None, None, ["stale"]),
    ("bad quality is not trusted", [sig(value=2.2, quality=3)], "nodata", None, None, ["bad_quality"]),
    ("never received data → nodata", [sig(value=None)], "nodata", None, None, ["no_data"]),
    ("no mapped signals → nodata", [], "nodata", None, None, []),
    ("some signals stale → at least warning",
     [sig(value=2.2, trend=STEADY), sig("temperature", 72, age_s=600, limits=TEMP_LIMITS, signal_id=2)],
     "warning", (0, 75), LOW, ["stale"]),
    ("stale critical value is not judged, the fresh one is",
     [sig(value=15.0, age_s=600), sig("temperature", 100, limits=TEMP_LIMITS, signal_id=2, trend=STEADY)],
     "warning", (0, 75), LOW, ["warn_high", "stale"]),
    ("questionable quality costs a little", [sig(value=2.2, quality=1, trend=STEADY)], "normal", (90, 96), LOW,
     ["quality"]),
    ("two warnings combine", [sig(value=7.5, trend=STEADY), sig("temperature", 100, limits=TEMP_LIMITS, signal_id=2,
                                                                trend=STEADY)],
     "warning", (40, 75), LOW, ["warn_high", "warn_high"]),
    ("fresh within three intervals", [sig(value=2.2, age_s=170, interval=60, trend=STEADY)], "normal", (99, 100), LOW,
     []),
    ("a live source vouches for an unchanged value",
     [sig(value=2.2, age_s=3600, live=True, heartbeat_age_s=1, trend=STEADY)], "normal", (99, 100), LOW, []),
    ("a live source still judges its limits", [sig(value=12.0, age_s=3600, live=True, heartbeat_age_s=1)],
     "critical", (0, 40), CERTAIN, ["crit_high"]),
    ("a source marked stale is no data even while connected", [sig(value=2.2, quality=4, live=True, heartbeat_age_s=1)],
     "nodata", None, None, ["stale"]),
    ("a lost worker's value is stale at once, however young", [sig(value=2.2, age_s=5, live=True, heartbeat_age_s=90)],
     "nodata", None, None, ["stale"]),
]


@pytest.mark.parametrize("case,signals,status,health,probability,reasons", CASES, ids=[c[0] for c in CASES])
def test_rules(case, signals, status, health, probability, reasons) -> None:
    result = score_asset(signals, NOW)
    assert result.status == status, case
    if health is None:
        assert result.health_score is None and result.failure_probability is None
    else:
        assert health[0] <= result.health_score <= health[1], (case, result.health_score)
    if probability is None:
        assert result.failure_probability is None, case
    else:
        assert probability[0] <= result.failure_probability <= probability[1], (case, result.failure_probability)
    assert sorted(c["reason"] for c in result.contributing) == sorted(reasons), case
    assert result.source == "rules"


def test_drift_raises_the_penalty_not_an_invented_probability() -> None:
    scores = [score_asset([sig(value=v, baseline=Baseline(2.2, 0.1, v), trend=STEADY)], NOW) for v in (2.4, 3.0, 6.0)]
    assert [r.status for r in scores] == ["normal", "warning", "warning"]
    assert scores[0].health_score > scores[1].health_score > scores[2].health_score
    assert all(r.failure_probability < 0.01 for r in scores)   # a steady 6 mm/s is far from 11 mm/s


def test_crossing_probability_orders_the_risks() -> None:
    """A rising signal near its limit scores higher than a steady one far from it; a breached one highest."""
    rising = Trend(buckets=360, slope_per_h=0.4, slope_se=0.01, scatter=0.15)
    steady_far = scoring.crossing_probability(2.2, VIB_LIMITS, STEADY)
    steady_near = scoring.crossing_probability(9.5, VIB_LIMITS, STEADY)
    rising_near = scoring.crossing_probability(9.5, VIB_LIMITS, rising)
    rising_far = scoring.crossing_probability(2.2, VIB_LIMITS, rising)   # trusted for the 6 h seen: 2.2 + 2.4 < 11
    long_rise = scoring.crossing_probability(2.2, VIB_LIMITS, Trend(1440, 0.4, 0.01, 0.15, span_h=24.0))
    slowly_far = scoring.crossing_probability(2.2, VIB_LIMITS, Trend(360, 0.1, 0.01, 0.15))
    breached = scoring.crossing_probability(11.2, VIB_LIMITS, STEADY)
    assert steady_far < 0.001
    assert steady_far <= slowly_far < 0.01 and steady_near < 0.01 < rising_near
    assert rising_far < 0.01 < 0.5 < long_rise      # a rise seen for a day, followed for a day, reaches 11.8
    assert rising_near < breached == 1.0                        # a forecast is never as sure as a breach
    assert rising_near > 0.9                                    # 0.4 mm/s per hour from 9.5: past 11 within 4 h
    noisy, falling = Trend(360, 0.0, 0.01, 0.8), Trend(360, -0.4, 0.01, 0.8)
    assert scoring.crossing_probability(9.5, VIB_LIMITS, falling) < scoring.crossing_probability(9.5, VIB_LIMITS, noisy)
    assert scoring.crossing_probability(9.5, Limits(warn_high=7.1), rising) is None   # no critical limit: not judged
    assert scoring.crossing_probability(9.5, VIB_LIMITS, Trend(5, 0.4, 0.01, 0.15)) is None   # too little history
    assert scoring.crossing_probability(12.0, VIB_LIMITS, None) == 1.0                     # past it: no trend needed
    low = Limits(crit_low=0.0, crit_high=110.0)
    cooling = Trend(buckets=360, slope_per_h=-1.5, slope_se=0.01, scatter=0.5)   # 8 − 1.5 × 6 h < 0
    assert scoring.crossing_probability(8.0, low, cooling) > 0.9 > scoring.crossing_probability(8.0, low, STEADY)


def test_a_short_swing_is_not_extrapolated_over_a_day() -> None:
    """Ten minutes of a rising half-wave (a process cycle) say nothing about tomorrow: the trend is
    followed only as far ahead as the data it came from."""
    swing = Trend(buckets=30, slope_per_h=9.0, slope_se=0.05, scatter=0.1, span_h=0.5)
    assert scoring.crossing_probability(2.2, VIB_LIMITS, swing) < 0.01          # 2.2 + 4.5 stays below 11
    assert scoring.crossing_probability(2.2, VIB_LIMITS, Trend(29, 0.0, 0.0, 0.1)) is None   # under half an hour


def test_probability_follows_the_horizon_and_the_scatter() -> None:
    near = Trend(buckets=360, slope_per_h=0.0, slope_se=0.0, scatter=0.5)
    day = scoring.crossing_probability(10.0, VIB_LIMITS, near)
    hour = scoring.crossing_probability(10.0, VIB_LIMITS, near, horizon_h=1)
    assert 0 < hour < day < 1                                   # a longer horizon, more chances to cross
    assert hour == pytest.approx(0.5 * math.erfc((1.0 / 0.5) / math.sqrt(2)), rel=1e-9)  # one draw: the normal tail
    assert scoring.crossing_probability(10.0, VIB_LIMITS, Trend(360, 0.0, 0.0, 0.0)) == 0.0   # no scatter, no slope


def test_asset_probability_combines_its_signals() -> None:
    near = Trend(buckets=360, slope_per_h=0.0, slope_se=0.0, scatter=0.5)
    one = score_asset([sig(value=10.2, trend=near)], NOW).failure_probability
    two = score_asset([sig(value=10.2, trend=near), sig(value=10.2, trend=near, signal_id=2)], NOW).failure_probability
    assert two == pytest.approx(1 - (1 - one) ** 2, abs=1e-3)
    listed = score_asset([sig(value=10.2, trend=near)], NOW).contributing
    assert listed[0]["p24"] == pytest.approx(one, abs=1e-3)


def test_trend_from_the_regression_figures() -> None:
    """The job reads regression sums from the aggregates; the trend is the least-squares line through them."""
    xs = [i / 60 - 6 for i in range(360)]                      # hours before now, one per minute
    ys = [2.0 + 0.3 * x + (0.1 if i % 2 else -0.1) for i, x in enumerate(xs)]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    t = scoring.trend_from_figures(buckets=360, sxx=sxx, syy=syy, sxy=sxy, rng=0.4)
    assert t.slope_per_h == pytest.approx(0.3, abs=0.01)
    assert t.scatter == pytest.approx(math.sqrt(0.1 ** 2 + 0.1 ** 2), rel=0.05)   # ±0.1 around the line, range 0.4
    assert scoring.trend_from_figures(buckets=2, sxx=1.0, syy=1.0, sxy=0.0, rng=0.0) is None


def test_contributing_lists_the_worst_first_with_values_and_limits() -> None:
    result = score_asset([sig(value=7.5, signal_id=5), sig("temperature", -3, limits=TEMP_LIMITS, signal_id=6)], NOW)
    first, second = result.contributing
    assert first == {"signal_id": 6, "name": "temperature-6", "role": "temperature", "value": -3.0, "unit": "mm/s",
                     "reason": "crit_low", "status": "critical", "penalty": 65.0, "limit": 0.0, "p24": 1.0}
    assert second["reason"] == "warn_high" and second["limit"] == 7.1


def test_result_time_is_the_data_time_so_reruns_write_the_same_row() -> None:
    fresh = score_asset([sig(value=2.2, age_s=5)], NOW)
    assert fresh.time == NOW - timedelta(seconds=5)
    assert score_asset([sig(value=2.2, age_s=5)], NOW + timedelta(seconds=30)).time == fresh.time
    stale = score_asset([sig(value=2.2, age_s=600, interval=60)], NOW)   # aged out at 3 intervals
    assert stale.time == NOW - timedelta(seconds=600) + timedelta(seconds=60 * scoring.STALE_AFTER_INTERVALS)


def test_times_of_live_sources_and_of_their_loss() -> None:
    live = score_asset([sig(value=2.2, age_s=3600, live=True, heartbeat_age_s=1)], NOW)
    assert live.time == NOW - timedelta(seconds=1)                       # current as of the last heartbeat
    lost = score_asset([sig(value=2.2, age_s=3600, live=True, heartbeat_age_s=90)], NOW)
    assert lost.time == NOW - timedelta(seconds=90 - scoring.SOURCE_HEARTBEAT_S)   # when the heartbeat lapsed
    marked = score_asset([sig(value=2.2, age_s=3600, quality=4, live=True, heartbeat_age_s=1)], NOW)
    assert marked.time == NOW - timedelta(seconds=2)                     # when the worker marked it stale
    assert lost.time > NOW - timedelta(seconds=3600) and marked.time > live.time - timedelta(seconds=5)


AI_CASES = [
    # (rules signal, ai score, expected status, health, probability, source)
    ("ai raises the risk", sig(value=2.2), AiScore(NOW - timedelta(hours=1), 55.0, 0.6, "warning"),
     "warning", 55.0, 0.6, "ai"),
    ("ai cannot clear a limit breach", sig(value=12.0), AiScore(NOW - timedelta(hours=1), 95.0, 0.01, "normal"),
     "critical", None, None, "rules"),
    ("ai cannot revive stale data", sig(value=2.2, age_s=900), AiScore(NOW - timedelta(minutes=5), 90.0, 0.1, "normal"),
     "nodata", None, None, "rules"),
    ("an old ai score is ignored", sig(value=2.2), AiScore(NOW - timedelta(hours=7), 20.0, 0.9, "critical"),
     "normal", None, None, "rules"),
]


@pytest.mark.parametrize("case,signal,ai,status,health,probability,source", AI_CASES, ids=[c[0] for c in AI_CASES])
def test_ai_score_is_combined_conservatively(case, signal, ai, status, health, probability, source) -> None:
    result = score_asset([signal], NOW, ai)
    assert (result.status, result.source) == (status, source), case
    if health is not None:
        assert result.health_score == health and result.failure_probability == probability
        assert result.contributing[0]["reason"] == "ai_score"


@pytest.mark.parametrize("value,expected", [
    (None, "normal"), (5.0, "normal"), (7.1, "normal"), (7.2, "warning"), (11.0, "warning"), (11.01, "critical")])
def test_limit_state(value, expected) -> None:
    assert limit_state(value, VIB_LIMITS)[0] == expected


BASELINE_CASES = [
    ("hours preferred", dict(level=3.0, hour_buckets=5, hour_mean=2.2, hour_sd=0.1, hour_range=0.4,
                             minute_buckets=40, minute_mean=9.0, minute_sd=0.0, minute_range=0.0), "1h", 2.2),
    ("minutes for a young signal", dict(level=3.0, hour_buckets=1, hour_mean=2.2, hour_sd=0.0, hour_range=0.4,
                                        minute_buckets=20, minute_mean=2.3, minute_sd=0.05, minute_range=0.2), "1m", 2.3),
    ("too little history", dict(level=3.0, hour_buckets=2, hour_mean=2.2, hour_sd=0.0, hour_range=0.4,
                                minute_buckets=5, minute_mean=2.3, minute_sd=0.0, minute_range=0.2), None, None),
    ("no recent level", dict(level=None, hour_buckets=5, hour_mean=2.2, hour_sd=0.1, hour_range=0.4,
                             minute_buckets=40, minute_mean=2.2, minute_sd=0.1, minute_range=0.4), None, None),
]


@pytest.mark.parametrize("case,kw,source,mean", BASELINE_CASES, ids=[c[0] for c in BASELINE_CASES])
def test_baseline_from_aggregates(case, kw, source, mean) -> None:
    b = baseline_from_aggregates(**kw)
    if source is None:
        assert b is None
    else:
        assert (b.source, b.mean) == (source, mean)
        assert b.spread > 0


@pytest.mark.parametrize("status,p,risk", [
    ("nodata", 0.9, "none"), ("normal", 0.02, "low"), ("normal", 0.25, "mid"), ("warning", 0.05, "mid"),
    ("normal", 0.6, "high"), ("critical", 0.1, "high")])
def test_risk_colour(status, p, risk) -> None:
    assert risk_level(status, p) == risk


def test_gauge_scale_comes_from_the_limits_only() -> None:
    a, b = gauge(2.2, VIB_LIMITS), gauge(50.0, VIB_LIMITS)
    assert a["marks"] == b["marks"]                 # marks do not move with the value
    assert 0 < a["pos"] < a["marks"][0]["pos"] < a["marks"][1]["pos"] < 100
    assert b["pos"] == 100.0
    assert gauge(3.0, Limits()) == {"pos": None, "marks": []}


def test_scale_of_a_negative_factor() -> None:
    s = replace(sig(value=-1.2, scale=-10.0), limits=VIB_LIMITS)   # shown = 12 > 11
    assert score_asset([s], NOW).status == "critical"
