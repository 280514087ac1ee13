"""The canonical event: what every collector and normalizer produces before it is stored.

An :class:`EventRecord` is validated once (:func:`validate`) on its way into
``industrial_events``: the same checks as the table's constraints, plus the ones a
constraint cannot make (a timezone-aware time, a JSON object payload of bounded size),
and the time flag — an event stamped in the future or far in the past is kept, flagged,
and never grouped into a current incident. A record that fails is a
:class:`MalformedRecord`, counted per tenant and source in ``blackbox_rejections``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from optria.blackbox.severity import RANK

CATEGORIES: tuple[str, ...] = ("alarm", "limit", "quality", "maintenance", "operator_action", "integration",
                               "optimization", "failure", "process")

# source_system values written by this package's collectors and normalizers
SOURCE_SYSTEMS: tuple[str, ...] = ("alerts", "work_orders", "limits", "quality", "ingest", "optimization", "opcua",
                                   "sql", "blackbox")

# What each source type is called on the pages (English msgids; listed for the catalog checker).
SOURCE_TYPE_LABELS: dict[str, str] = {
    "alert_raised": "Alert raised",
    "alert_acknowledged": "Alert acknowledged",
    "alert_cleared": "Alert cleared",
    "work_order_opened": "Work order opened",
    "work_order_status_changed": "Work order status changed",
    "work_order_closed": "Work order closed",
    "limit_breach": "Limit breached",
    "limit_return": "Back within limits",
    "quality_bad": "Data quality bad",
    "quality_stale": "Data stale (source lost)",
    "quality_good": "Data quality good again",
    "integration_connected": "Integration connected",
    "integration_disconnected": "Integration disconnected",
    "integration_error": "Integration error",
    "integration_stopped": "Integration stopped",
    "integration_backfill_started": "Backfill of a data gap started",
    "integration_backfilled": "Data gap backfilled",
    "optimization_started": "Optimization run started",
    "optimization_finished": "Optimization run finished",
    "optimization_failed": "Optimization run failed",
    "optimization_recommendations": "Optimization recommendations",
    "opcua_alarm_active": "OPC-UA alarm active",
    "opcua_alarm_inactive": "OPC-UA alarm inactive",
    "opcua_alarm_acknowledged": "OPC-UA alarm acknowledged",
    "opcua_event": "OPC-UA event",
    "opcua_device_failure": "OPC-UA device failure",
    "sql_event": "Source system event",
    "incident_acknowledged": "Incident acknowledged",
    "incident_resolved": "Incident resolved",
}

CATEGORY_LABELS: dict[str, str] = {
    "alarm": "Alarm", "limit": "Limit", "quality": "Data quality", "maintenance": "Maintenance",
    "operator_action": "Operator action", "integration": "Integration", "optimization": "Optimization",
    "failure": "Failure", "process": "Process event",
}

SOURCE_SYSTEM_LABELS: dict[str, str] = {
    "alerts": "Alerts", "work_orders": "Work orders", "limits": "Signal limits", "quality": "Data quality",
    "ingest": "Ingest service", "optimization": "Optimization", "opcua": "OPC-UA server", "sql": "SQL source",
    "blackbox": "Black Box",
}

FUTURE_TOLERANCE = timedelta(minutes=5)   # clocks drift; beyond this an event is "from the future"
FAR_PAST = timedelta(days=7)              # older than this on arrival: history, not a current incident
MAX_PAYLOAD_BYTES = 16_384
MAX_SUMMARY = 500


class MalformedRecord(ValueError):
    """A source record that cannot become an event. ``reason`` is a short code (counted), ``detail`` a
    short human description (stored, logged) that never repeats the record's content wholesale."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason[:60]
        self.detail = detail[:300]


@dataclass
class EventRecord:
    tenant_id: UUID
    source_system: str
    source_type: str
    source_id: str
    event_time: datetime
    severity: str
    event_category: str
    summary: str
    payload: dict[str, Any] = field(default_factory=dict)
    asset_id: int | None = None
    site_id: int | None = None
    unit_id: int | None = None
    integration_id: int | None = None
    signal_id: int | None = None
    actor: str | None = None
    correlation_id: str | None = None
    alarm_key: str | None = None
    repeat_count: int = 1
    time_flag: str | None = None

    def row(self) -> tuple:
        """Column values in the order of ``store.EVENT_COLUMNS``."""
        return (self.tenant_id, self.event_time, self.source_system, self.source_type, self.source_id, self.severity,
                self.event_category, self.summary, json.dumps(self.payload, default=str, ensure_ascii=False),
                self.asset_id, self.site_id, self.unit_id, self.integration_id, self.signal_id, self.actor,
                self.correlation_id, self.alarm_key, self.time_flag, self.repeat_count)


def time_flag(event_time: datetime, now: datetime | None = None) -> str | None:
    now = now or datetime.now(timezone.utc)
    if event_time > now + FUTURE_TOLERANCE:
        return "future"
    if event_time < now - FAR_PAST:
        return "far_past"
    return None


def _check(condition: bool, reason: str, detail: str) -> None:
    if not condition:
        raise MalformedRecord(reason, detail)


def _short(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value[:limit] if value else None


def validate(record: EventRecord, now: datetime | None = None) -> EventRecord:
    """Check a record against the event schema, tidy its texts and set its time flag (in place)."""
    _check(isinstance(record.event_time, datetime), "bad_time", "event time is not a timestamp")
    _check(record.event_time.tzinfo is not None, "bad_time", "event time has no time zone")
    _check(record.severity in RANK, "bad_severity", f"unknown severity {str(record.severity)[:20]!r}")
    _check(record.event_category in CATEGORIES, "bad_category", f"unknown category {str(record.event_category)[:30]!r}")
    _check(bool(record.source_id) and len(record.source_id) <= 300, "bad_source_id", "source id missing or too long")
    summary = _short(record.summary, MAX_SUMMARY)
    _check(bool(summary), "no_summary", "the event has no summary text")
    record.summary = summary or ""
    _check(isinstance(record.payload, dict), "bad_payload", "payload is not a JSON object")
    try:
        encoded = json.dumps(record.payload, default=str, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MalformedRecord("bad_payload", f"payload is not valid JSON ({str(exc)[:80]})") from None
    _check(len(encoded.encode()) <= MAX_PAYLOAD_BYTES, "payload_too_large",
           f"payload is {len(encoded.encode())} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    _check(isinstance(record.repeat_count, int) and 1 <= record.repeat_count <= 1_000_000, "bad_repeat_count",
           "repeat count must be 1 to 1,000,000")
    for name in ("asset_id", "site_id", "unit_id", "integration_id", "signal_id"):
        value = getattr(record, name)
        _check(value is None or (isinstance(value, int) and 0 < value < 2**63), "bad_reference", f"{name} is not an id")
    record.actor = _short(record.actor, 200)
    record.correlation_id = _short(record.correlation_id, 200)
    record.alarm_key = _short(record.alarm_key, 300)
    record.time_flag = time_flag(record.event_time, now)
    return record


def flood_key(source_system: str, source_type: str, alarm_key: str | None, signal_id: int | None, summary: str) -> str:
    """Identity of "the same event again" for flood summarization on an incident timeline."""
    raw = "\x1f".join((source_system, source_type, alarm_key or "", str(signal_id or ""), summary))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def fmt_value(value: float | None) -> str:
    """A measured value for a summary line: up to 4 significant decimals, no trailing zeros."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
