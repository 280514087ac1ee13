"""Vocabularies of the Black Box pages and the msgspec Structs of its forms and JSON API.

Label dicts hold English msgids the pages translate (listed for the catalog checker in
optria.shell.i18n_sources); the value tuples mirror the CHECK constraints of
sql/migrations/0006_blackbox.sql.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import Struct

from optria.blackbox.events import CATEGORY_LABELS, SOURCE_SYSTEM_LABELS, SOURCE_TYPE_LABELS
from optria.blackbox.severity import SEVERITIES

INCIDENT_STATUSES = ("open", "acknowledged", "resolved")
INCIDENT_STATUS_FILTERS = ("active", *INCIDENT_STATUSES)
INCIDENT_TYPES = ("critical_alarm", "limit_breach", "equipment_failure", "critical_event")
RELATIONS = ("trigger", "related", "action")
NOTE_MAX = 2000

LABELS: dict[str, dict[str, str]] = {
    "severity": {"info": "Info", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"},
    "incident_status": {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved",
                        "active": "Active (not resolved)"},
    "incident_type": {"critical_alarm": "Critical alarm", "limit_breach": "Limit breach",
                      "equipment_failure": "Equipment failure", "critical_event": "Critical event"},
    "relation": {"trigger": "Trigger", "related": "Related", "action": "Action"},
    "time_flag": {"future": "Time in the future", "far_past": "Arrived late (far past)"},
    "limit_state": {"warn_low": "Below warning limit", "warn_high": "Above warning limit",
                    "crit_low": "Below critical limit", "crit_high": "Above critical limit", "normal": "Normal"},
    "health_status": {"normal": "Within target", "warning": "Above target", "critical": "Alarm flood"},
    "source_type": SOURCE_TYPE_LABELS,
    "category": CATEGORY_LABELS,
    "source_system": SOURCE_SYSTEM_LABELS,
}


def label_msgids() -> set[str]:
    return {text for group in LABELS.values() for text in group.values()}


# ----------------------------------------------------------------------------- forms


class AcknowledgeForm(Struct):
    note: str = ""


class ResolveForm(Struct):
    note: str = ""


# ----------------------------------------------------------------------------- API


class NoteIn(Struct, forbid_unknown_fields=True):
    note: str = ""


class IncidentOut(Struct):
    id: int
    title: str
    incident_type: str
    severity: str
    status: str
    asset_id: int
    asset_code: str
    started_at: datetime
    last_event_at: datetime
    event_count: int
    resolved_at: datetime | None = None


class IncidentDetailOut(IncidentOut):
    site_id: int | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    summary: str = ""
    timeline: list[dict[str, Any]] = msgspec.field(default_factory=list)


class EventOut(Struct):
    id: int
    event_time: datetime
    ingest_time: datetime
    source_system: str
    source_type: str
    severity: str
    event_category: str
    summary: str
    asset_id: int | None
    site_id: int | None
    integration_id: int | None
    signal_id: int | None
    correlation_id: str | None
    alarm_key: str | None
    time_flag: str | None
    repeat_count: int = 1
    actor: str | None = None                  # only for roles that see black box details
    payload: dict[str, Any] | None = None     # only for roles that see black box details


class Page(Struct):
    items: list[Any]
    total: int
    page: int
    page_size: int
    total_is_capped: bool = False


SEVERITY_CHOICES = SEVERITIES
