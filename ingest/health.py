"""Per-integration ingest figures: state, rate, lag percentiles, errors.

Lag is commit time minus source time, observed by the writer after each commit (so it
counts queueing and the database round trip, not only the network). Percentiles come from
a bounded window of recent observations.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

STATES = ("starting", "connecting", "streaming", "backfilling", "reconnecting", "error", "stopped")


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[idx]


@dataclass
class IntegrationHealth:
    tenant_id: UUID
    integration_id: int
    worker_id: str
    state: str = "starting"
    connected: bool = False
    samples_total: int = 0
    rejected_total: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_sample_time: datetime | None = None
    _lags_ms: deque = field(default_factory=lambda: deque(maxlen=5000))
    _rate_window: deque = field(default_factory=lambda: deque(maxlen=120))  # (monotonic, count)

    def set_state(self, state: str, *, connected: bool | None = None) -> None:
        self.state = state
        if connected is not None:
            self.connected = connected

    def error(self, message: str) -> None:
        from datetime import timezone

        self.last_error = message[:500]
        self.last_error_at = datetime.now(timezone.utc)

    def reject(self, reason: str, n: int = 1) -> None:
        self.rejected_total += n
        self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + n

    def committed(self, count: int, lags_ms: list[float], newest: datetime | None) -> None:
        self.samples_total += count
        self._rate_window.append((time.monotonic(), count))
        self._lags_ms.extend(lags_ms[-2000:])
        if newest is not None and (self.last_sample_time is None or newest > self.last_sample_time):
            self.last_sample_time = newest

    def samples_per_s(self, window_s: float = 10.0) -> float:
        now = time.monotonic()
        recent = [(t, n) for t, n in self._rate_window if now - t <= window_s]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span

    def lag_percentiles(self) -> tuple[float | None, float | None]:
        values = sorted(self._lags_ms)
        return percentile(values, 0.5), percentile(values, 0.99)

    def row(self, queue_depth: int, spool_bytes: int) -> dict[str, Any]:
        p50, p99 = self.lag_percentiles()
        return {
            "tenant_id": self.tenant_id, "integration_id": self.integration_id, "worker_id": self.worker_id,
            "state": self.state, "connected": self.connected, "samples_per_s": round(self.samples_per_s(), 3),
            "samples_total": self.samples_total, "rejected_total": self.rejected_total, "reconnects": self.reconnects,
            "lag_p50_ms": p50, "lag_p99_ms": p99, "queue_depth": queue_depth, "spool_bytes": spool_bytes,
            "last_error": self.last_error, "last_error_at": self.last_error_at,
            "last_sample_time": self.last_sample_time,
        }
