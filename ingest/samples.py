"""The sample row every worker produces, its quality codes, and validation of raw values.

A sample is a plain tuple ``(tenant_id, signal_id, time, value, quality)``: hundreds of
thousands pass through a second, and a tuple is the cheapest container that COPY accepts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

GOOD, QUESTIONABLE, SUBSTITUTED, BAD, STALE = 0, 1, 2, 3, 4
QUALITY_CODES = {"good": GOOD, "questionable": QUESTIONABLE, "uncertain": QUESTIONABLE, "substituted": SUBSTITUTED,
                 "bad": BAD, "stale": STALE}
QUALITY_NAMES = {v: k for k, v in QUALITY_CODES.items() if k != "uncertain"}

# Source timestamps outside this window are rejected as malformed (clock errors, epoch zero).
MAX_PAST = timedelta(days=3650)
MAX_FUTURE = timedelta(minutes=10)
MIN_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


class Sample(NamedTuple):
    tenant_id: UUID
    signal_id: int
    time: datetime
    value: float | None
    quality: int


class Rejected(ValueError):
    """A raw value that cannot become a sample; ``reason`` is counted per integration."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_float(raw: Any) -> float | None:
    """Numbers, booleans and numeric strings become floats; NaN/inf and text are rejected."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise Rejected("not_a_number") from None
    else:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise Rejected("not_a_number") from None
    if math.isnan(value) or math.isinf(value):
        raise Rejected("nan_or_infinite")
    return value


def time_window(now: datetime) -> tuple[datetime, datetime]:
    """The earliest and latest source time accepted at ``now``."""
    return max(MIN_TIME, now - MAX_PAST), now + MAX_FUTURE


def check_time(t: datetime, now: datetime | None = None) -> datetime:
    if not isinstance(t, datetime):
        raise Rejected("bad_timestamp")
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    earliest, latest = time_window(now or datetime.now(timezone.utc))
    if not earliest <= t <= latest:
        raise Rejected("timestamp_out_of_range")
    return t


def make_sample(tenant_id: UUID, signal_id: int, t: datetime, raw: Any, quality: int = GOOD,
                now: datetime | None = None) -> Sample:
    """Validate one raw reading. A bad-quality reading may carry no value; a good one must."""
    value = to_float(raw)
    if value is None and quality == GOOD:
        raise Rejected("missing_value")
    return Sample(tenant_id, signal_id, check_time(t, now), value, quality)
