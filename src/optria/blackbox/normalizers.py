"""Normalizers for external event sources: a raw record in, an :class:`EventRecord` out.

* :func:`opcua_event` — one OPC-UA event notification (Alarms & Conditions where the server
  offers them, plain events otherwise), as a mapping of the selected event fields
  (``EventId``, ``EventType``, ``SourceNode``, ``SourceName``, ``Time``, ``Message``,
  ``Severity``, ``ConditionName``, ``ActiveState/Id``, ``AckedState/Id``, ``ClientUserId``...).
* :func:`sql_event` — one row of a SQL source's event query (an event table in a plant
  historian or CMMS): ``event_time``/``time``/``timestamp``, ``source_id``/``id``/``event_id``,
  ``severity``/``priority``/``level``, ``summary``/``message``/``description``, optional
  ``category``, ``asset``/``asset_code``/``equipment``, ``actor``/``user``/``operator``,
  ``repeat_count``/``count``; every other column goes into the payload.

A record that cannot become an event raises :class:`MalformedRecord` (counted by
:func:`normalize_all`, never stored). Wiring these to live sources — an OPC-UA event
subscription in the ingest worker, an event query in the SQL worker — is ingest work; they
only need to call :func:`normalize_all` and :func:`optria.blackbox.recording.record`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID

from optria.blackbox.events import CATEGORIES, EventRecord, MalformedRecord
from optria.blackbox.recording import Rejected
from optria.blackbox.severity import SeverityError, opcua_severity, text_severity

# OPC-UA DeviceFailureEventType (ns=0;i=2131): the server says a device failed.
DEVICE_FAILURE_TYPES = {"i=2131", "ns=0;i=2131", "DeviceFailureEventType"}

AssetRef = tuple[int, int | None, int | None]   # (asset_id, site_id, unit_id)


@dataclass
class SourceContext:
    """What a normalizer needs to know about the source: whose it is and how its names map to assets."""

    tenant_id: UUID
    integration_id: int | None = None
    assets: dict[str, AssetRef] = field(default_factory=dict)   # source name / node id / asset code → asset
    site_id: int | None = None      # where events without a known asset are shown
    timezone: tzinfo = timezone.utc  # for naive timestamps (SQL sources); OPC-UA times are UTC by specification


def _text(value: Any) -> str | None:
    """A display string from OPC-UA values (LocalizedText, QualifiedName, NodeId) or plain ones."""
    if value is None:
        return None
    for attr in ("Text", "Name"):
        inner = getattr(value, attr, None)
        if isinstance(inner, str):
            return inner
    to_string = getattr(value, "to_string", None)
    if callable(to_string):
        try:
            return str(to_string())
        except Exception:  # a NodeId without a string form
            pass
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_safe(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return str(value)[:200]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k)[:100]: _json_safe(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value[:100]]
    return _text(value)


def _time(value: Any, tz: tzinfo, field_name: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise MalformedRecord("bad_time", f"{field_name} is not an ISO 8601 timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    raise MalformedRecord("bad_time", f"{field_name} is missing or not a timestamp")


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    lowered = {str(k).lower(): k for k in row}
    for name in names:
        if name in lowered:
            key = lowered[name]
            return key, row[key]
    return None, None


def _asset(ctx: SourceContext, *names: str | None) -> AssetRef | None:
    for name in names:
        if name and name in ctx.assets:
            return ctx.assets[name]
    return None


# ----------------------------------------------------------------------------- OPC-UA events


def opcua_event(raw: Mapping[str, Any], ctx: SourceContext) -> EventRecord:
    if not isinstance(raw, Mapping):
        raise MalformedRecord("not_a_record", "the notification is not a set of event fields")
    event_id = raw.get("EventId")
    if event_id in (None, b"", ""):
        raise MalformedRecord("no_event_id", "EventId is missing")
    source_id = "ev:" + (event_id.hex() if isinstance(event_id, bytes) else str(event_id))[:290]
    when = _time(raw.get("Time"), timezone.utc, "Time")
    try:
        severity = opcua_severity(raw.get("Severity"))
    except SeverityError as exc:
        raise MalformedRecord("bad_severity", str(exc)) from None
    source_node = _text(raw.get("SourceNode"))
    source_name = _text(raw.get("SourceName"))
    condition = _text(raw.get("ConditionName"))
    message = _text(raw.get("Message")) or condition or source_name
    if not message or not message.strip():
        raise MalformedRecord("no_summary", "the event has no Message, ConditionName or SourceName")
    event_type = _text(raw.get("EventType")) or ""
    active = raw.get("ActiveState/Id")
    acked = raw.get("AckedState/Id")
    is_condition = condition is not None or active is not None
    alarm_key = None
    actor = None
    if event_type in DEVICE_FAILURE_TYPES:
        source_type, category = "opcua_device_failure", "failure"
    elif is_condition and active is True and acked is not True:
        source_type, category = "opcua_alarm_active", "alarm"
        alarm_key = f"opcua:{ctx.integration_id}:{source_node or source_name}:{condition or message}"[:300]
    elif is_condition and active is True:
        source_type, category, severity = "opcua_alarm_acknowledged", "operator_action", "info"
        actor = _text(raw.get("ClientUserId"))
    elif is_condition:
        source_type, category, severity = "opcua_alarm_inactive", "alarm", "info"
    else:
        source_type, category = "opcua_event", "process"
    ref = _asset(ctx, source_node, source_name)
    payload = {"event_type": event_type or None, "source_node": source_node, "source_name": source_name,
               "condition": condition, "opcua_severity": raw.get("Severity"), "active": active, "acked": acked,
               "retain": raw.get("Retain"), "comment": _text(raw.get("Comment"))}
    return EventRecord(
        tenant_id=ctx.tenant_id, source_system="opcua", source_type=source_type, source_id=source_id, event_time=when,
        severity=severity, event_category=category, summary=message, payload=_json_safe(payload),
        asset_id=ref[0] if ref else None, site_id=ref[1] if ref else ctx.site_id, unit_id=ref[2] if ref else None,
        integration_id=ctx.integration_id, actor=actor, alarm_key=alarm_key,
        correlation_id=f"opcua:{source_node or source_name}:{condition}"[:200] if is_condition else None)


# ----------------------------------------------------------------------------- SQL-source rows

SQL_FIELDS = {
    "time": ("event_time", "time", "timestamp", "occurred_at"),
    "id": ("source_id", "event_id", "id"),
    "severity": ("severity", "priority", "level"),
    "summary": ("summary", "message", "description", "text"),
    "category": ("category", "event_category", "type"),
    "asset": ("asset_code", "asset", "equipment", "tag"),
    "actor": ("actor", "user", "operator", "username"),
    "repeat": ("repeat_count", "count"),
}
CATEGORY_SYNONYMS = {"trip": "failure", "fault": "failure", "breakdown": "failure", "alarm": "alarm",
                     "alert": "alarm", "maintenance": "maintenance", "work_order": "maintenance",
                     "operator": "operator_action", "action": "operator_action", "quality": "quality"}


def sql_event(row: Mapping[str, Any], ctx: SourceContext) -> EventRecord:
    if not isinstance(row, Mapping):
        raise MalformedRecord("not_a_record", "the row is not a set of named columns")
    used: set[str] = set()

    def take(kind: str) -> Any:
        key, value = _pick(row, SQL_FIELDS[kind])
        if key is not None:
            used.add(key)
        return value

    when = _time(take("time"), ctx.timezone, "event_time")
    ident = take("id")
    if ident is None or str(ident).strip() == "":
        raise MalformedRecord("no_source_id", "the row has no source_id/event_id/id column value")
    try:
        severity = text_severity(take("severity"))
    except SeverityError as exc:
        raise MalformedRecord("bad_severity", str(exc)) from None
    summary = take("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise MalformedRecord("no_summary", "the row has no summary/message text")
    raw_category = take("category")
    category = "process"
    if raw_category is not None:
        text = str(raw_category).strip().lower()
        category = text if text in CATEGORIES else CATEGORY_SYNONYMS.get(text, "process")
    asset_name = take("asset")
    actor = take("actor")
    repeat = take("repeat")
    try:
        repeat_count = int(repeat) if repeat is not None else 1
    except (TypeError, ValueError):
        raise MalformedRecord("bad_repeat_count", "repeat_count is not a whole number") from None
    ref = _asset(ctx, str(asset_name)) if asset_name is not None else None
    payload = {str(k): _json_safe(v) for k, v in row.items() if k not in used}
    if asset_name is not None and ref is None:
        payload["unknown_asset"] = str(asset_name)[:100]
    alarm_key = None
    if category == "alarm":
        alarm_key = f"sql:{ctx.integration_id}:{asset_name or ''}:{summary.strip().lower()}"[:300]
    return EventRecord(
        tenant_id=ctx.tenant_id, source_system="sql", source_type="sql_event", source_id=str(ident).strip()[:300],
        event_time=when, severity=severity, event_category=category, summary=summary, payload=payload,
        asset_id=ref[0] if ref else None, site_id=ref[1] if ref else ctx.site_id, unit_id=ref[2] if ref else None,
        integration_id=ctx.integration_id, actor=str(actor) if actor is not None else None, alarm_key=alarm_key,
        repeat_count=repeat_count)


def normalize_all(records: Iterable[Any], normalizer: Callable[[Any, SourceContext], EventRecord],
                  ctx: SourceContext, source_system: str) -> list[EventRecord | Rejected]:
    """Normalize a batch; each malformed record becomes a :class:`Rejected` for :func:`record` to count."""
    out: list[EventRecord | Rejected] = []
    for raw in records:
        try:
            out.append(normalizer(raw, ctx))
        except MalformedRecord as exc:
            out.append(Rejected(ctx.tenant_id, source_system, exc))
    return out
