"""msgspec Structs of the optimization API and forms, and the labels pages show for stored values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

# English msgids of stored values (translated on the pages; listed in optria.shell.i18n_sources).
STATUS_LABELS = {"queued": "Queued", "running": "Running", "succeeded": "Succeeded", "failed": "Failed",
                 "fallback": "Analytics fallback"}
ENGINE_LABELS = {"analytics": "Analytics", "ai": "AI"}
SCOPE_LABELS = {"tenant": "All assets", "unit": "Unit", "asset": "Asset", "integration": "Data source"}
KIND_LABELS = {"limit": "Limit", "time_to_limit": "Time to limit", "anomaly": "Anomaly", "trend": "Trend",
               "efficiency": "Efficiency", "stale": "Missing data", "recommendation": "AI recommendation"}
SOURCE_LABELS = {"analytics": "Analytics", "ai": "AI"}
ORIGIN_LABELS = {"web": "Optimization page", "api": "API", "integration": "Data Sources card",
                 "poc": "Proof of concept", "job": "Scheduled"}


class RunForm(msgspec.Struct):
    """The Run form of /optimization: scope "tenant", "unit:<id>" or "asset:<id>" (one select)."""

    target: str = "tenant"
    engine: str = "ai"


class RunCreate(msgspec.Struct, forbid_unknown_fields=True):
    scope: str = "tenant"
    scope_id: int | None = None
    engine: str = "ai"


class RunStarted(msgspec.Struct):
    id: int
    status: str
    url: str


class Recommendation(msgspec.Struct):
    source: str
    kind: str
    asset_id: int
    asset_code: str | None
    severity: str
    title: str
    rationale: str
    action: str
    expected_impact: str
    confidence: float | None = None
    impact_value: float | None = None
    impact_unit: str | None = None
    priority: str | None = None


class RunSummary(msgspec.Struct):
    id: int
    scope: str
    scope_id: int | None
    scope_label: str
    engine: str
    model: str | None
    status: str
    requested_by_name: str
    origin: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    asset_count: int
    recommendation_count: int = 0
    error: str | None = None
    fallback_reason: str | None = None


class RunDetail(RunSummary):
    recommendations: list[Recommendation] = msgspec.field(default_factory=list)
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)


class RunList(msgspec.Struct):
    items: list[RunSummary]
    total: int
    page: int
    page_size: int


class Opportunity(msgspec.Struct):
    id: int
    run_id: int
    asset_id: int
    asset_code: str
    source: str
    kind: str
    severity: str
    title: str
    rationale: str
    action: str
    expected_impact: str
    impact_value: float | None
    impact_unit: str | None
    confidence: float | None
    created_at: datetime


class OpportunityList(msgspec.Struct):
    items: list[Opportunity]


def summary_of(row: dict[str, Any]) -> RunSummary:
    return RunSummary(**{f: row.get(f) for f in RunSummary.__struct_fields__ if f in row},  # type: ignore[arg-type]
                      **({} if "recommendation_count" in row else
                         {"recommendation_count": len(row.get("recommendations") or [])}))


def detail_of(row: dict[str, Any]) -> RunDetail:
    base = {f: row.get(f) for f in RunSummary.__struct_fields__ if f in row}
    base["recommendation_count"] = len(row.get("recommendations") or [])
    recs = [Recommendation(**{f: r.get(f) for f in Recommendation.__struct_fields__})  # type: ignore[arg-type]
            for r in row.get("recommendations") or []]
    return RunDetail(**base, recommendations=recs, inputs=row.get("inputs") or {})  # type: ignore[arg-type]
