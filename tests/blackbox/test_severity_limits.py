"""The severity mapping and the hysteresis machine, cell by cell (pure functions)."""

from __future__ import annotations

import pytest

from optria.blackbox.limits import step
from optria.blackbox.severity import (
    SeverityError,
    alert_severity,
    limit_severity,
    opcua_severity,
    text_severity,
    work_order_severity,
    worst,
)
from optria.timeseries.limits import Limits, raw_level


@pytest.mark.parametrize("value, expected", [
    (1, "info"), (200, "info"), (201, "low"), (400, "low"), (401, "medium"), (600, "medium"), (601, "high"),
    (800, "high"), (801, "critical"), (1000, "critical"), ("750", "high"), (500.0, "medium"),
])
def test_opcua_bands(value, expected) -> None:
    assert opcua_severity(value) == expected


@pytest.mark.parametrize("value", [0, 1001, -5, "loud", None, True, 500.5])
def test_opcua_out_of_range_is_rejected(value) -> None:
    with pytest.raises(SeverityError):
        opcua_severity(value)


def test_alerts_work_orders_limits() -> None:
    assert [alert_severity(s) for s in ("info", "low", "medium", "high", "critical")] == [
        "info", "low", "medium", "high", "critical"]
    with pytest.raises(SeverityError):
        alert_severity("urgent")
    assert [work_order_severity(p) for p in ("low", "medium", "high", "urgent")] == ["low", "medium", "high", "high"]
    with pytest.raises(SeverityError):
        work_order_severity("asap")
    assert [limit_severity(lv) for lv in ("warn_high", "warn_low", "crit_high", "crit_low", "normal")] == [
        "medium", "medium", "critical", "critical", "info"]


@pytest.mark.parametrize("value, expected", [
    ("Critical", "critical"), ("warning", "medium"), ("ERROR", "high"), ("fatal", "critical"), ("minor", "low"),
    (" info ", "info"), ("900", "critical"), (150, "info"),
])
def test_text_severity(value, expected) -> None:
    assert text_severity(value) == expected


@pytest.mark.parametrize("value", ["", "   ", "whatever", None, ["high"]])
def test_text_severity_rejects(value) -> None:
    with pytest.raises(SeverityError):
        text_severity(value)


def test_worst() -> None:
    assert worst("low", "critical", "medium") == "critical"
    assert worst(None, "info") == "info"
    assert worst() == "info"


# ----------------------------------------------------------------------------- hysteresis

VIB = Limits(warn_high=7.1, crit_high=11.0)


def run(limits: Limits, values: list[float], state: str = "normal") -> tuple[str, list[tuple[str, str]]]:
    out = []
    for v in values:
        state, transitions = step(limits, state, v)
        out += [(t.kind, t.level) for t in transitions]
    return state, out


def test_deadband_is_two_percent_of_the_span() -> None:
    assert VIB.deadband == pytest.approx(0.22)                       # one-sided: of the largest limit
    assert Limits(crit_low=2, crit_high=18).deadband == pytest.approx(0.32)  # two-sided: of high − low
    assert Limits(warn_high=0.0).deadband == pytest.approx(0.02)      # a zero span falls back to 1.0


def test_enter_escalate_and_return_with_hysteresis() -> None:
    assert run(VIB, [5, 8, 11.5, 10.9, 11.2, 10.7, 7.0, 6.0]) == (
        "normal", [("breach", "warn_high"), ("breach", "crit_high"), ("return", "crit_high"), ("return", "warn_high")])


def test_hovering_on_the_limit_is_one_breach() -> None:
    assert run(VIB, [10.99, 11.01] * 100) == ("crit_high", [("breach", "warn_high"), ("breach", "crit_high")])


def test_equal_to_the_limit_is_not_a_breach() -> None:
    assert raw_level(VIB, 11.0) == "warn_high" and raw_level(VIB, 7.1) == "normal"


def test_straight_to_critical_and_straight_back() -> None:
    assert run(VIB, [3, 20, 3]) == ("normal", [("breach", "crit_high"), ("return", "crit_high")])


def test_jump_to_the_other_side() -> None:
    limits = Limits(warn_low=5, warn_high=15, crit_low=2, crit_high=18)
    assert run(limits, [10, 19, 1]) == ("crit_low", [("breach", "crit_high"), ("return", "crit_high"),
                                                     ("breach", "crit_low")])
    assert run(limits, [16, 4]) == ("warn_low", [("breach", "warn_high"), ("return", "warn_high"),
                                                 ("breach", "warn_low")])


def test_low_side_hysteresis() -> None:
    limits = Limits(crit_low=10.0)    # deadband 0.2
    assert run(limits, [9.9, 10.1, 9.95, 10.19, 10.21]) == ("normal", [("breach", "crit_low"), ("return", "crit_low")])


def test_removed_limit_returns_the_state_to_normal() -> None:
    assert run(Limits(warn_high=7.1), [12.0], state="crit_high") == ("warn_high", [("return", "crit_high")])
