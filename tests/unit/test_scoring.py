"""The health-scoring rules (optria.twin.scoring), case by case as the module docstring states them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from optria.twin import scoring
from optria.twin.cards import gauge, risk_level
from optria.twin.scoring import AiScore, Baseline, Limits, SignalInput, baseline_from_aggregates, limit_state, score_asset

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
VIB_LIMITS = Limits(warn_high=7.1, crit_high=11.0)
TEMP_LIMITS = Limits(warn_low=10.0, warn_high=95.0, crit_low=0.0, crit_high=110.0)
FLAT_BASELINE = Baseline(mean=2.2, spread=0.1, level=2.25, source="1h")


def sig(role: str = "vibration", value: float | None = 2.2, *, age_s: float = 5, quality: int = 0,
        limits: Limits = VIB_LIMITS, interval: int = 60, scale: float = 1.0, offset: float = 0.0,
        baseline: Baseline | None = None, signal_id: int = 1, live: bool = False,
        heartbeat_age_s: float | None = None) -> SignalInput:
    seen = None if heartbeat_age_s is None else NOW - timedelta(seconds=heartbeat_age_s)
    return SignalInput(signal_id=signal_id, name=f"{role}-{signal_id}", role=role, unit="mm/s", scale=scale,
                       offset=offset, limits=limits, expected_interval_s=interval,
                       time=None if value is None else NOW - timedelta(seconds=age_s), value=value, quality=quality,
                       since=NOW - timedelta(days=1), baseline=baseline, source_live=live, source_seen=seen,
                       marked_at=None if quality != 4 else NOW - timedelta(seconds=2))


# (case, signals, expected status, health range, probability range, reasons expected in contributing)
CASES = [
    ("all within limits", [sig(value=2.2), sig("temperature", 72, limits=TEMP_LIMITS, signal_id=2)],
     "normal", (99, 100), (0.0, 0.05), []),
    ("critical high limit breached", [sig(value=12.0), sig("temperature", 72, limits=TEMP_LIMITS, signal_id=2)],
     "critical", (0, 40), (0.8, 1.0), ["crit_high"]),
    ("critical low limit breached", [sig("temperature", -3.0, limits=TEMP_LIMITS)],
     "critical", (0, 40), (0.8, 1.0), ["crit_low"]),
    ("warning high limit", [sig(value=7.5)], "warning", (55, 75), (0.3, 0.4), ["warn_high"]),
    ("warning close to critical raises risk", [sig(value=10.8)], "warning", (40, 75), (0.55, 0.61), ["warn_high"]),
    ("warning low limit", [sig("temperature", 8.0, limits=TEMP_LIMITS)], "warning", (40, 75), (0.3, 0.6), ["warn_low"]),
    ("exactly on a limit is not past it", [sig(value=7.1)], "normal", (99, 100), (0.0, 0.05), []),
    ("scale and offset apply before the limits",  # raw 1.2 → 1.2 × 10 − 0.5 = 11.5 mm/s > 11
     [sig(value=1.2, scale=10.0, offset=-0.5)], "critical", (0, 40), (0.8, 1.0), ["crit_high"]),
    ("drifting vibration below the limits",
     [sig(value=3.4, baseline=Baseline(mean=2.2, spread=0.1, level=3.4))], "warning", (45, 75), (0.4, 0.75), ["drift"]),
    ("slight rise only watched", [sig(value=2.6, baseline=Baseline(mean=2.2, spread=0.1, level=2.6))],
     "normal", (90, 100), (0.05, 0.25), ["drift_watch"]),
    ("flat vibration with a baseline", [sig(value=2.25, baseline=FLAT_BASELINE)], "normal", (99, 100), (0.0, 0.05), []),
    ("drift is judged only for vibration",
     [sig("temperature", 80, limits=TEMP_LIMITS, baseline=Baseline(mean=72, spread=0.1, level=80))],
     "normal", (99, 100), (0.0, 0.05), []),
    ("every signal stale → nodata, never normal", [sig(value=2.2, age_s=600), sig("temperature", 72, age_s=600,
                                                                                    limits=TEMP_LIMITS, signal_id=2)],
     "nodata", None, None, ["stale", "stale"]),
    ("source lost (quality 4) → nodata", [sig(value=2.2, quality=4)], "nodata", None, None, ["stale"]),
    ("bad quality is not trusted", [sig(value=2.2, quality=3)], "nodata", None, None, ["bad_quality"]),
    ("never received data → nodata", [sig(value=None)], "nodata", None, None, ["no_data"]),
    ("no mapped signals → nodata", [], "nodata", None, None, []),
    ("some signals stale → at least warning",
     [sig(value=2.2), sig("temperature", 72, age_s=600, limits=TEMP_LIMITS, signal_id=2)],
     "warning", (0, 75), (0.0, 0.05), ["stale"]),
    ("stale critical value is not judged, the fresh one is",
     [sig(value=15.0, age_s=600), sig("temperature", 100, limits=TEMP_LIMITS, signal_id=2)],
     "warning", (0, 75), (0.3, 0.6), ["warn_high", "stale"]),
    ("questionable quality costs a little", [sig(value=2.2, quality=1)], "normal", (90, 96), (0.0, 0.05), ["quality"]),
    ("two warnings combine their probabilities",
     [sig(value=7.5), sig("temperature", 100, limits=TEMP_LIMITS, signal_id=2)], "warning", (40, 75), (0.5, 0.75),
     ["warn_high", "warn_high"]),
    ("fresh within two intervals", [sig(value=2.2, age_s=110, interval=60)], "normal", (99, 100), (0.0, 0.05), []),
    ("a live source vouches for an unchanged value",
     [sig(value=2.2, age_s=3600, live=True, heartbeat_age_s=1)], "normal", (99, 100), (0.0, 0.05), []),
    ("a live source still judges its limits", [sig(value=12.0, age_s=3600, live=True, heartbeat_age_s=1)],
     "critical", (0, 40), (0.8, 1.0), ["crit_high"]),
    ("a source marked stale is no data even while connected", [sig(value=2.2, quality=4, live=True, heartbeat_age_s=1)],
     "nodata", None, None, ["stale"]),
    ("an old value of a lost worker is stale", [sig(value=2.2, age_s=3600, live=False, heartbeat_age_s=90)],
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
        assert probability[0] <= result.failure_probability <= probability[1], (case, result.failure_probability)
    assert sorted(c["reason"] for c in result.contributing) == sorted(reasons), case
    assert result.source == "rules"


def test_failure_probability_rises_with_drift() -> None:
    probabilities = []
    for level in (2.4, 2.7, 3.0, 3.3, 3.8, 4.5, 6.0):
        s = sig(value=level, baseline=Baseline(mean=2.2, spread=0.1, level=level))
        probabilities.append(score_asset([s], NOW).failure_probability)
    assert probabilities == sorted(probabilities)
    assert probabilities[0] < 0.05 < probabilities[2] and probabilities[-1] >= 0.7
    assert [score_asset([sig(value=v, baseline=Baseline(2.2, 0.1, v))], NOW).status for v in (2.4, 3.0, 6.0)] == \
        ["normal", "warning", "warning"]


def test_contributing_lists_the_worst_first_with_values_and_limits() -> None:
    result = score_asset([sig(value=7.5, signal_id=5), sig("temperature", -3, limits=TEMP_LIMITS, signal_id=6)], NOW)
    first, second = result.contributing
    assert first == {"signal_id": 6, "name": "temperature-6", "role": "temperature", "value": -3.0, "unit": "mm/s",
                     "reason": "crit_low", "status": "critical", "penalty": 65.0, "limit": 0.0}
    assert second["reason"] == "warn_high" and second["limit"] == 7.1


def test_result_time_is_the_data_time_so_reruns_write_the_same_row() -> None:
    fresh = score_asset([sig(value=2.2, age_s=5)], NOW)
    assert fresh.time == NOW - timedelta(seconds=5)
    assert score_asset([sig(value=2.2, age_s=5)], NOW + timedelta(seconds=30)).time == fresh.time
    stale = score_asset([sig(value=2.2, age_s=600, interval=60)], NOW)
    assert stale.time == NOW - timedelta(seconds=600) + timedelta(seconds=60 * scoring.STALE_AFTER_INTERVALS)


def test_times_of_live_sources_and_of_their_loss() -> None:
    live = score_asset([sig(value=2.2, age_s=3600, live=True, heartbeat_age_s=1)], NOW)
    assert live.time == NOW - timedelta(seconds=1)                       # current as of the last heartbeat
    lost = score_asset([sig(value=2.2, age_s=3600, live=False, heartbeat_age_s=90)], NOW)
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
