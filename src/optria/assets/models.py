"""Vocabularies and msgspec Structs of the assets area: API bodies in and out, and page forms.

The value tuples mirror the CHECK constraints of sql/migrations/0003_assets.sql; the label
dicts hold the English msgids the pages translate (listed for the catalog checker in
optria.shell.i18n_sources). API bodies are typed loosely where a friendly message beats a
type error (enumerations and lengths are checked by optria.assets.validation, once, for
both forms and the API).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

CRITICALITIES = ("low", "medium", "high")
HEALTH_STATUSES = ("normal", "warning", "critical", "nodata")
SEVERITIES = ("info", "low", "medium", "high", "critical")
ALERT_STATUSES = ("open", "acknowledged", "cleared")
ALERT_SOURCES = ("manual", "rule", "ingest", "ai")
WO_PRIORITIES = ("low", "medium", "high", "urgent")
WO_STATUSES = ("open", "in_progress", "closed")
ASSET_TYPES = ("pump", "compressor", "turbine", "heat_exchanger", "motor", "generator", "fan", "valve", "vessel",
               "tank", "boiler", "column", "other")

# List filters accept "active" besides the stored statuses: everything not yet cleared / closed.
ALERT_STATUS_FILTERS = ("active", *ALERT_STATUSES)
WO_STATUS_FILTERS = ("active", *WO_STATUSES)

# A health row older than this many expected intervals is stale: the asset shows "no data".
STALE_AFTER_INTERVALS = 2

LABELS: dict[str, dict[str, str]] = {
    "criticality": {"low": "Low", "medium": "Medium", "high": "High"},
    "health_status": {"normal": "Normal", "warning": "Warning", "critical": "Critical", "nodata": "No data"},
    "severity": {"info": "Info", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"},
    "alert_status": {"open": "Open", "acknowledged": "Acknowledged", "cleared": "Cleared", "active": "Active (not cleared)"},
    "alert_source": {"manual": "Manual", "rule": "Rule", "ingest": "Ingest", "ai": "AI"},
    "priority": {"low": "Low", "medium": "Medium", "high": "High", "urgent": "Urgent"},
    "wo_status": {"open": "Open", "in_progress": "In progress", "closed": "Closed", "active": "Active (not closed)"},
    "asset_type": {"pump": "Pump", "compressor": "Compressor", "turbine": "Turbine", "heat_exchanger": "Heat exchanger",
                   "motor": "Motor", "generator": "Generator", "fan": "Fan", "valve": "Valve", "vessel": "Vessel",
                   "tank": "Tank", "boiler": "Boiler", "column": "Column", "other": "Other"},
    "history_action": {"raised": "Raised", "acknowledged": "Acknowledged", "cleared": "Cleared", "opened": "Opened",
                       "status_changed": "Status changed", "closed": "Closed"},
}


def label_msgids() -> set[str]:
    return {text for group in LABELS.values() for text in group.values()}


# --------------------------------------------------------------------------- API: in


class SiteIn(Struct, forbid_unknown_fields=True):
    code: str
    name: str
    name_ar: str | None = None
    description: str = ""
    description_ar: str | None = None
    timezone: str = "UTC"


class UnitIn(Struct, forbid_unknown_fields=True):
    site_id: int
    code: str
    name: str
    name_ar: str | None = None


class AssetIn(Struct, forbid_unknown_fields=True):
    site_id: int
    code: str
    name: str
    unit_id: int | None = None
    name_ar: str | None = None
    asset_type: str = "other"
    criticality: str = "medium"
    description: str = ""
    description_ar: str | None = None
    expected_interval_s: int = 60


class AssetPatch(Struct, forbid_unknown_fields=True):
    """Only the fields sent change; ``unit_id: null`` takes the asset out of its unit."""

    site_id: int | UnsetType = UNSET
    unit_id: int | None | UnsetType = UNSET
    code: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    name_ar: str | None | UnsetType = UNSET
    asset_type: str | UnsetType = UNSET
    criticality: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    description_ar: str | None | UnsetType = UNSET
    expected_interval_s: int | UnsetType = UNSET

    def provided(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not UNSET}


class AlertIn(Struct, forbid_unknown_fields=True):
    severity: str
    title: str
    description: str = ""
    source: str = "manual"
    source_ref: str | None = None


class NoteIn(Struct, forbid_unknown_fields=True):
    note: str = ""


class WorkOrderIn(Struct, forbid_unknown_fields=True):
    title: str
    description: str = ""
    priority: str = "medium"
    alert_id: int | None = None


class WorkOrderPatch(Struct, forbid_unknown_fields=True):
    status: str
    note: str = ""


# --------------------------------------------------------------------------- API: out


class Ref(Struct):
    id: int
    code: str
    name: str
    name_ar: str | None = None


class SiteOut(Struct):
    id: int
    code: str
    name: str
    name_ar: str | None
    description: str
    timezone: str
    unit_count: int
    asset_count: int
    created_at: datetime
    description_ar: str | None = None


class UnitOut(Struct):
    id: int
    site_id: int
    code: str
    name: str
    name_ar: str | None
    asset_count: int
    created_at: datetime


class HealthOut(Struct):
    """``status`` is what readers should show: "nodata" without a fresh row; ``stale`` says why."""

    status: str
    stale: bool
    time: datetime | None = None
    health_score: float | None = None
    failure_probability: float | None = None
    reported_status: str | None = None
    source: str | None = None


class AssetOut(Struct):
    id: int
    code: str
    name: str
    name_ar: str | None
    asset_type: str
    criticality: str
    description: str
    expected_interval_s: int
    site: Ref
    unit: Ref | None
    health: HealthOut
    active_alerts: int
    active_work_orders: int
    created_at: datetime
    updated_at: datetime
    description_ar: str | None = None


class AssetPage(Struct):
    items: list[AssetOut]
    total: int
    page: int
    page_size: int


class SiteList(Struct):
    items: list[SiteOut]


class UnitList(Struct):
    items: list[UnitOut]


class AlertOut(Struct):
    id: int
    asset_id: int
    asset_code: str
    severity: str
    title: str
    description: str
    status: str
    source: str
    source_ref: str | None
    raised_at: datetime
    raised_by: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None


class AlertList(Struct):
    items: list[AlertOut]
    total: int
    page: int
    page_size: int


class WorkOrderOut(Struct):
    id: int
    asset_id: int
    asset_code: str
    alert_id: int | None
    title: str
    description: str
    priority: str
    status: str
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    closed_at: datetime | None
    closed_by: str | None


class WorkOrderList(Struct):
    items: list[WorkOrderOut]
    total: int
    page: int
    page_size: int


# --------------------------------------------------------------------------- page forms
# Every field is a string with a default, so a half-filled or tampered form still parses and
# gets field messages from the validator instead of a bare 400.


class SiteForm(Struct):
    code: str = ""
    name: str = ""
    name_ar: str = ""
    description: str = ""
    description_ar: str = ""
    timezone: str = "UTC"


class UnitForm(Struct):
    site_id: str = ""
    code: str = ""
    name: str = ""
    name_ar: str = ""


class AssetForm(Struct):
    site_id: str = ""
    unit_id: str = ""
    code: str = ""
    name: str = ""
    name_ar: str = ""
    asset_type: str = "other"
    criticality: str = "medium"
    description: str = ""
    description_ar: str = ""
    expected_interval_s: str = "60"


class AlertForm(Struct):
    severity: str = ""
    title: str = ""
    description: str = ""


class WorkOrderForm(Struct):
    title: str = ""
    description: str = ""
    priority: str = "medium"
    alert_id: str = ""


class TransitionForm(Struct):
    status: str = ""
    note: str = ""
    next: str = ""


def form_values(form: Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(form)
