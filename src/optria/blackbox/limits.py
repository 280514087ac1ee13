"""Limit evaluation with hysteresis: when a mapped signal breaches its limits, and when it is back.

A mapping has up to four limits (warn_low, warn_high, crit_low, crit_high) on the
engineering value (raw × scale + offset), judged by the one rule of
:mod:`optria.timeseries.limits`. Entering a band needs the value strictly past its limit
(:func:`~optria.timeseries.limits.raw_level`); leaving it needs the value back inside the
limit by the deadband of :attr:`~optria.timeseries.limits.Limits.deadband` (a small fraction
of the limit span), so a value hovering on a limit yields one breach, not a flood.

The state machine is pure (no I/O): :func:`step` takes the current state and one value and
returns the new state and the transitions to record. The collector keeps the state per
signal in ``blackbox_signal_state``, so it survives restarts and is shared by processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from optria.timeseries.limits import Limits, raw_level

STATES = ("normal", "warn_low", "warn_high", "crit_low", "crit_high")
_RANK = {"normal": 0, "warn_low": 1, "warn_high": 1, "crit_low": 2, "crit_high": 2}
_SIDE = {"warn_low": "low", "crit_low": "low", "warn_high": "high", "crit_high": "high"}
_LOWER = {"crit_high": "warn_high", "crit_low": "warn_low"}


@dataclass(frozen=True)
class Transition:
    kind: str          # "breach" (entered ``level``) or "return" (left ``level``)
    level: str         # the band entered or left
    to_state: str      # the state after this transition
    limit: float | None


def side(state: str) -> str | None:
    """"high", "low", or None for normal."""
    return _SIDE.get(state)


def holds(limits: Limits, state: str, value: float) -> bool:
    """True while the value has not come back inside ``state``'s limit by the deadband."""
    limit = limits.of(state)
    if limit is None:
        return False
    if _SIDE[state] == "high":
        return value > limit - limits.deadband
    return value < limit + limits.deadband


def step(limits: Limits, state: str, value: float) -> tuple[str, list[Transition]]:
    """Feed one engineering value; returns (new state, transitions in order)."""
    out: list[Transition] = []
    if state not in _RANK:
        state = "normal"
    if state != "normal" and not holds(limits, state, value):
        lower = _LOWER.get(state)
        if lower is not None and holds(limits, lower, value):
            out.append(Transition("return", state, lower, limits.of(state)))
            state = lower
        else:
            out.append(Transition("return", state, "normal", limits.of(state)))
            state = "normal"
    level = raw_level(limits, value)
    if level != "normal":
        if state == "normal" or _RANK[level] > _RANK[state]:
            if state != "normal" and _SIDE[state] != _SIDE[level]:
                out.append(Transition("return", state, "normal", limits.of(state)))
            out.append(Transition("breach", level, level, limits.of(level)))
            state = level
        elif _SIDE[state] != _SIDE[level]:  # jumped to the other side at the same rank
            out.append(Transition("return", state, "normal", limits.of(state)))
            out.append(Transition("breach", level, level, limits.of(level)))
            state = level
    return state, out
