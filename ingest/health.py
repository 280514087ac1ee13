"""Per-integration ingest figures: state, rate, live lag, backfill, errors, rejects, restarts.

- **Lag** is commit time minus source time of *live* samples only (a subscription's
  notifications, a poll's new values), observed after each commit, so it counts queueing
  and the database round trip; percentiles over the last minute, from an even sample of
  each commit's rows. Rows read back from history (backfill, spool replay) are
  counted apart: how many, and how old the oldest was.
- **Rate** is rows committed over a window (60 s, or four poll intervals for slow polls)
  divided by the window, or by the time since the worker started when that is shorter: no
  overstatement from a short span, no 0.0/s between slow polls.
- **Errors**: ``last_error`` is the current, unresolved error of the source; a worker calls
  :meth:`IntegrationHealth.resolved` once the source works again, which clears it (the
  episode stays in ``ingest_errors`` as history).
- **Rejects** are counted per reason and per signal, with the source's own words for
  per-item errors; the health loop flushes the per-signal part to ``ingest_signal_status``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from ingest import metrics

STATES = ("starting", "connecting", "streaming", "backfilling", "reconnecting", "error", "stopped")
RATE_WINDOW_S = 60.0
LAG_WINDOW_S = 60.0


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[idx]


@dataclass
class SignalStatus:
    """Rejects of one signal since the last flush, and the latest reason."""

    rejected: int = 0
    reason: str | None = None
    detail: str | None = None
    at: datetime | None = None


@dataclass
class IntegrationHealth:
    tenant_id: UUID
    integration_id: int
    worker_id: str
    state: str = "starting"
    connected: bool = False
    samples_total: int = 0
    backfill_total: int = 0
    rejected_total: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    restarts: int = 0
    last_restart_reason: str | None = None
    last_restart_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    error_since: datetime | None = None
    last_sample_time: datetime | None = None
    backfill_oldest_s: float | None = None
    backfill_at: datetime | None = None
    rate_window_s: float = RATE_WINDOW_S
    _started: float = field(default_factory=time.monotonic)
    _lags_ms: deque = field(default_factory=lambda: deque(maxlen=30_000))    # (monotonic, lag ms), live only, sampled
    _commits: deque = field(default_factory=lambda: deque(maxlen=20_000))    # (monotonic, rows)
    _signals: dict[int, SignalStatus] = field(default_factory=dict)

    def set_state(self, state: str, *, connected: bool | None = None) -> None:
        self.state = state
        if connected is not None:
            self.connected = connected

    # ----- errors ------------------------------------------------------------------------

    def error(self, message: str) -> None:
        """The source is failing now (shown until :meth:`resolved`)."""
        now = datetime.now(timezone.utc)
        self.last_error = message[:500]
        self.last_error_at = now
        if self.error_since is None:
            self.error_since = now

    def resolved(self) -> None:
        """The source works again: the current error becomes history."""
        self.last_error = None
        self.last_error_at = None
        self.error_since = None

    def restarted(self, reason: str) -> None:
        self.restarts += 1
        self.last_restart_reason = reason[:300]
        self.last_restart_at = datetime.now(timezone.utc)

    # ----- rejects -----------------------------------------------------------------------

    def reject(self, reason: str, n: int = 1, *, signal_id: int | None = None, detail: str | None = None) -> None:
        self.rejected_total += n
        self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + n
        metrics.REJECTED.labels(str(self.integration_id), reason).inc(n)
        if signal_id is not None:
            st = self._signals.setdefault(signal_id, SignalStatus())
            st.rejected += n
            st.reason = reason
            st.detail = detail[:300] if detail else None
            st.at = datetime.now(timezone.utc)

    def take_signal_status(self) -> dict[int, SignalStatus]:
        """Per-signal rejects since the last call (the health loop stores them)."""
        out, self._signals = self._signals, {}
        return out

    def give_back_signal_status(self, pending: dict[int, SignalStatus]) -> None:
        """A flush failed: keep its counts for the next one."""
        for sid, st in pending.items():
            cur = self._signals.get(sid)
            if cur is None:
                self._signals[sid] = st
            else:
                cur.rejected += st.rejected

    # ----- commits -----------------------------------------------------------------------

    def committed(self, count: int, lags_ms: list[float], newest: datetime | None) -> None:
        """``count`` live rows committed, with their lags."""
        now = time.monotonic()
        self.samples_total += count
        self._commits.append((now, count))
        for lag in lags_ms[-2000:]:
            self._lags_ms.append((now, lag))
        self._newest(newest)

    def backfilled(self, count: int, oldest: datetime | None, newest: datetime | None) -> None:
        """``count`` rows read back from history committed; the oldest one's age is reported."""
        now = datetime.now(timezone.utc)
        self.samples_total += count
        self.backfill_total += count
        self._commits.append((time.monotonic(), count))
        if oldest is not None:
            self.backfill_oldest_s = max(0.0, (now - oldest).total_seconds())
        self.backfill_at = now
        self._newest(newest)

    def _newest(self, newest: datetime | None) -> None:
        if newest is not None and (self.last_sample_time is None or newest > self.last_sample_time):
            self.last_sample_time = newest

    def samples_per_s(self) -> float:
        now = time.monotonic()
        window = max(self.rate_window_s, 1.0)
        rows = sum(n for t, n in self._commits if now - t <= window)
        return rows / max(min(window, now - self._started), 1.0)

    def lag_percentiles(self) -> tuple[float | None, float | None]:
        now = time.monotonic()
        values = sorted(lag for t, lag in self._lags_ms if now - t <= LAG_WINDOW_S)
        return percentile(values, 0.5), percentile(values, 0.99)

    def row(self, queue_depth: int, spool_bytes: int) -> dict[str, Any]:
        p50, p99 = self.lag_percentiles()
        return {
            "tenant_id": self.tenant_id, "integration_id": self.integration_id, "worker_id": self.worker_id,
            "state": self.state, "connected": self.connected, "samples_per_s": round(self.samples_per_s(), 3),
            "samples_total": self.samples_total, "rejected_total": self.rejected_total, "reconnects": self.reconnects,
            "lag_p50_ms": p50, "lag_p99_ms": p99, "queue_depth": queue_depth, "spool_bytes": spool_bytes,
            "last_error": self.last_error, "last_error_at": self.last_error_at, "error_since": self.error_since,
            "last_sample_time": self.last_sample_time, "backfill_rows": self.backfill_total,
            "backfill_oldest_s": self.backfill_oldest_s, "backfill_at": self.backfill_at, "restarts": self.restarts,
            "last_restart_reason": self.last_restart_reason, "last_restart_at": self.last_restart_at,
        }
