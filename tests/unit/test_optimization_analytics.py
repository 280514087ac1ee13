"""The analytics engine, table-driven: from signal aggregates to findings, deterministically."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from optria.optimization.analytics import (
    AssetData,
    Bucket,
    SignalData,
    analyze_asset,
    slope,
    stats,
)
from optria.twin.scoring import Limits

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
VIB_LIMITS = Limits(None, 7.1, None, 11.0)


def minutes(values: list[float], spread: float = 0.1) -> tuple[Bucket, ...]:
    """Minute buckets ending one minute before NOW, oldest first."""
    n = len(values)
    return tuple(Bucket(NOW - timedelta(minutes=n - i), 60, v, v - spread, v + spread) for i, v in enumerate(values))


def hours(values: list[float], spread: float = 0.4) -> tuple[Bucket, ...]:
    """Hourly buckets ending two hours before NOW (so all are complete and before the recent hour)."""
    n = len(values)
    start = NOW.replace(minute=0) - timedelta(hours=n + 1)
    return tuple(Bucket(start + timedelta(hours=i), 3600, v, v - spread, v + spread) for i, v in enumerate(values))


def vibration(latest: float | None, mins: tuple[Bucket, ...] = (), hrs: tuple[Bucket, ...] = (), *,
              age_s: float = 5, limits: Limits = VIB_LIMITS, scale: float = 1.0, offset: float = 0.0) -> SignalData:
    return SignalData(1, "P-1.Vibration", "vibration", "mm/s", scale, offset, limits, 10, latest,
                      NOW - timedelta(seconds=age_s), 0, mins, hrs)


def kinds(asset: AssetData) -> set[tuple[str, str]]:
    return {(f.kind, f.severity) for f in analyze_asset(asset, NOW).findings}


FLAT = [2.2 + 0.02 * ((i * 7) % 5 - 2) for i in range(180)]
RAMP_TO_10 = FLAT[:150] + [2.2 + (10.0 - 2.2) * (i + 1) / 30 for i in range(30)]
SLOW_RISE = [2.2 + 0.01 * i for i in range(180)]      # 0.6 mm/s per hour: ~8 h to the warning limit


@pytest.mark.parametrize("name, signal, expected, absent", [
    ("quiet pump: nothing to report", vibration(2.2, minutes(FLAT)), set(), {"limit", "anomaly", "time_to_limit"}),
    ("beyond the critical limit", vibration(12.0, minutes(FLAT)), {("limit", "critical")}, set()),
    ("beyond the warning limit only", vibration(8.0, minutes(FLAT)), {("limit", "medium")}, set()),
    ("the last half hour climbs far above the minute baseline", vibration(10.0, minutes(RAMP_TO_10)),
     {("limit", "medium"), ("anomaly", "high")}, set()),
    ("hourly baseline of the previous day is used when present",
     vibration(6.0, minutes([6.0] * 60), hours([2.2] * 20)), {("anomaly", "high")}, {"limit"}),
    ("a steady rise towards the warning limit gives a time to limit", vibration(SLOW_RISE[-1], minutes(SLOW_RISE)),
     {("time_to_limit", "low")}, {"limit"}),
    ("a stale value is not judged against limits", vibration(12.0, minutes(FLAT), age_s=3600),
     {("stale", "low")}, {"limit", "time_to_limit"}),
    ("no data at all", vibration(None), {("stale", "low")}, {"anomaly"}),
    ("scale and offset apply before the limits", vibration(5.0, minutes([5.0] * 30), scale=2.0, offset=1.5),
     {("limit", "critical")}, set()),
])
def test_findings(name, signal, expected, absent) -> None:
    found = kinds(AssetData(7, "P-1", "Pump", signals=(signal,)))
    assert expected <= found, name
    assert not {k for k, _ in found} & absent, name


def test_short_history_compares_the_last_minutes_with_the_ones_before() -> None:
    values = [2.2] * 12 + [6.0] * 5
    result = analyze_asset(AssetData(7, "P-1", "Pump", signals=(vibration(6.0, minutes(values)),)), NOW)
    anomaly = next(f for f in result.findings if f.kind == "anomaly")
    assert anomaly.evidence["baseline_source"] == "1m-short"
    assert anomaly.confidence < 0.8


def test_efficiency_opportunity_from_power_per_flow() -> None:
    base_power, base_flow = [850.0] * 120, [340.0] * 120
    power = SignalData(2, "P-1.Power", "power", "kW", latest=1000.0, latest_time=NOW, quality=0,
                       minutes=minutes(base_power + [1000.0] * 60, 5.0))
    flow = SignalData(3, "P-1.Flow", "flow", "m3/h", latest=340.0, latest_time=NOW, quality=0,
                      minutes=minutes(base_flow + [340.0] * 60, 2.0))
    result = analyze_asset(AssetData(7, "P-1", "Pump", signals=(power, flow)), NOW)
    eff = next(f for f in result.findings if f.kind == "efficiency")
    assert eff.impact_unit == "kW" and eff.impact_value == pytest.approx(150.0, rel=0.01)
    assert eff.severity == "medium"                                  # +17.6 % specific energy
    assert result.specific_energy == pytest.approx(1000 / 340, rel=0.01)
    assert "kWh" in eff.rationale and eff.evidence["msg"]["title"] == "Specific energy above its baseline"


def test_findings_are_ordered_worst_first_and_are_deterministic() -> None:
    asset = AssetData(7, "P-1", "Pump", signals=(vibration(10.0, minutes(RAMP_TO_10)),
                                                 SignalData(9, "P-1.Temp", "temperature", "degC")))
    first, second = analyze_asset(asset, NOW), analyze_asset(asset, NOW)
    assert [f.as_dict() for f in first.findings] == [f.as_dict() for f in second.findings]
    ranks = [f.severity for f in first.findings]
    assert ranks[0] == "high" and ranks[-1] in ("info", "low")


@pytest.mark.parametrize("points, expected_slope, significant", [
    ([(0, 1), (1, 2), (2, 3), (3, 4)], 1.0, True),
    ([(0, 5), (1, 5), (2, 5)], 0.0, False),
    ([(0, 1), (1, 3), (2, 1), (3, 3), (4, 1)], 0.0, False),
])
def test_slope(points, expected_slope, significant) -> None:
    b, t, r2 = slope(points)
    assert b == pytest.approx(expected_slope, abs=1e-9)
    assert (abs(t) >= 3 and r2 >= 0.6) == significant


def test_a_process_cycle_is_not_a_trend() -> None:
    """A ten-minute oscillation (the demo plant's) over the last hour: no time-to-limit finding."""
    import math

    wave = [12.0 + 0.6 * math.sin(2 * math.pi * i / 10) for i in range(60)]
    pressure = SignalData(5, "P-1.Pressure", "pressure", "bar", limits=Limits(None, 16.0, None, 18.0),
                          latest=wave[-1], latest_time=NOW, quality=0, minutes=minutes(wave, 0.05))
    found = kinds(AssetData(7, "P-1", "Pump", signals=(pressure,)))
    assert not any(k == "time_to_limit" for k, _ in found), found


def test_stats_fold_the_bucket_range_into_sigma() -> None:
    s = stats([Bucket(NOW, 10, 5.0, 3.0, 7.0), Bucket(NOW, 10, 5.0, 3.0, 7.0)], "1m")
    assert s.mean == 5.0 and s.sigma == pytest.approx(1.0)          # range 4 ≈ 4σ
    assert stats([], "1m") is None


def test_change_only_signal_of_a_live_source_is_current() -> None:
    """A "running" state reports only changes: its last value holds while the source is live (the one
    staleness rule), so a run does not call it missing; once the worker is gone it is."""
    running = SignalData(2, "P-1.Running", "running", "", 1.0, 0.0, Limits(), 10, 1.0, NOW - timedelta(days=2), 0,
                         source_connected=True, source_seen=NOW - timedelta(seconds=2))
    asset = AssetData(1, "P-1", "Pump", "pump", "high", None, (vibration(2.2, minutes(FLAT)), running))
    assert "stale" not in {f.kind for f in analyze_asset(asset, NOW).findings}
    lost = SignalData(2, "P-1.Running", "running", "", 1.0, 0.0, Limits(), 10, 1.0, NOW - timedelta(days=2), 0,
                      source_connected=True, source_seen=NOW - timedelta(minutes=5))
    asset = AssetData(1, "P-1", "Pump", "pump", "high", None, (vibration(2.2, minutes(FLAT)), lost))
    assert ("stale", "info") in kinds(asset)
