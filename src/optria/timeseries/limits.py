"""A signal's limits, and the one rule that judges a value against them.

A mapping carries up to four limits on the engineering value (raw × scale + offset):
``warn_low``, ``warn_high``, ``crit_low``, ``crit_high``. A value is in a band when it is
strictly past the band's limit; the most severe band wins (critical before warning, high
before low). The twin's cards and scores, the analytics engine, the data-source pages and
the Black Box's limit events all ask :func:`raw_level`, so a value drawn red on one page is
the value the others count as beyond its limit. The Black Box adds hysteresis on top
(optria.blackbox.limits), with the deadband of :attr:`Limits.deadband`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEADBAND_FRACTION = 0.02


@dataclass(frozen=True)
class Limits:
    warn_low: float | None = None
    warn_high: float | None = None
    crit_low: float | None = None
    crit_high: float | None = None

    @classmethod
    def of_mapping(cls, row: dict[str, Any]) -> "Limits":
        """The limits of a mapping row (its ``warn_low`` … ``crit_high`` columns)."""
        return cls(row.get("warn_low"), row.get("warn_high"), row.get("crit_low"), row.get("crit_high"))

    def of(self, state: str) -> float | None:
        """The limit of a band ("warn_high", …); None for "normal"."""
        return getattr(self, state) if state != "normal" else None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.warn_low, self.warn_high, self.crit_low, self.crit_high))

    @property
    def deadband(self) -> float:
        """How far back inside a limit a value must come to leave its band: ``DEADBAND_FRACTION`` of
        the limit span — the distance between the lowest and the highest limit when there are limits
        on both sides, else the largest limit's magnitude (a one-sided limit on a positive process
        value measured from zero); 1.0 when that is zero."""
        lows = [v for v in (self.warn_low, self.crit_low) if v is not None]
        highs = [v for v in (self.warn_high, self.crit_high) if v is not None]
        if lows and highs:
            span = max(highs) - min(lows)
        else:
            span = max((abs(v) for v in lows + highs), default=0.0)
        return DEADBAND_FRACTION * (span if span > 0 else 1.0)


def raw_level(limits: Limits, value: float) -> str:
    """The most severe band the value is in ("crit_high", "crit_low", "warn_high", "warn_low" or
    "normal"), without hysteresis."""
    if limits.crit_high is not None and value > limits.crit_high:
        return "crit_high"
    if limits.crit_low is not None and value < limits.crit_low:
        return "crit_low"
    if limits.warn_high is not None and value > limits.warn_high:
        return "warn_high"
    if limits.warn_low is not None and value < limits.warn_low:
        return "warn_low"
    return "normal"
