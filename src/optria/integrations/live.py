"""Live status read from what the ingest service writes: an integration's ingest state, and a
mapped signal's latest value against its limits.

Pure functions over store rows, shared by the Data Sources cards, the API, the dashboard
panel and the asset detail page, so all of them tell the same story.
"""

from __future__ import annotations

from typing import Any

from optria.integrations.models import QUALITY_LABELS, QUALITY_NAMES, ROLE_LABELS
from optria.timeseries import staleness
from optria.timeseries.limits import Limits, raw_level

HEARTBEAT_STALE_S = staleness.SOURCE_HEARTBEAT_S


def streams(row: dict[str, Any]) -> bool:
    """Whether the ingest service runs this integration (the supervisor's own rule)."""
    return bool(row["enabled"] and (not row["is_demo"] or row["demo_stream"]))


def ingest_status(row: dict[str, Any]) -> dict[str, Any]:
    """Flags (disabled, no_mappings, stale, no_worker, error) and a level for the badge colour."""
    flags: set[str] = set()
    if not streams(row):
        flags.add("disabled")
    elif not row.get("enabled_mappings"):
        flags.add("no_mappings")
    else:
        verdict = staleness.judge(sample_age_s=row.get("sample_age_s"),
                                  expected_interval_s=row.get("expected_interval_s") or 60,
                                  connected=bool(row.get("ingest_connected")), heartbeat_age_s=row.get("heartbeat_age_s"))
        if not verdict.current:   # the one staleness rule: a connected worker vouches for a quiet source
            flags.add("stale")
        beat = row.get("heartbeat_age_s")
        if beat is None or beat > HEARTBEAT_STALE_S:
            flags.add("no_worker")
    if row.get("ingest_state") == "error" or row.get("last_error"):
        flags.add("error")   # unresolved: the ingest service clears it once the source works again
    if flags & {"error", "no_worker"}:
        level = "critical"
    elif "stale" in flags:
        level = "warning"
    elif flags & {"disabled", "no_mappings"}:
        level = "nodata"
    else:
        level = "normal"
    return {
        "state": row.get("ingest_state") or "not_running", "connected": bool(row.get("ingest_connected")),
        "samples_per_s": row.get("samples_per_s"), "last_sample_time": row.get("last_sample_time"),
        "last_sample_age_s": row.get("sample_age_s"), "last_error": row.get("last_error"),
        "last_error_at": row.get("last_error_at"), "error_since": row.get("error_since"),
        "lag_p50_ms": row.get("lag_p50_ms"), "lag_p99_ms": row.get("lag_p99_ms"),
        "backfill_rows": row.get("backfill_rows"), "backfill_oldest_s": row.get("backfill_oldest_s"),
        "rejected_total": row.get("rejected_total"), "last_reject_reason": row.get("last_reject_reason"),
        "restarts": row.get("restarts"), "last_restart_reason": row.get("last_restart_reason"),
        "heartbeat_at": row.get("heartbeat_at"), "flags": sorted(flags), "level": level,
    }


def quality_name(code: int | None) -> str | None:
    return None if code is None else QUALITY_NAMES.get(int(code), "bad")


_LEVEL_OF_BAND = {"normal": "normal", "warn_low": "warning", "warn_high": "warning", "crit_low": "critical",
                  "crit_high": "critical"}


def limit_level(value: float | None, row: dict[str, Any]) -> str:
    """normal / warning / critical for a value against the mapping's limits; nodata without a value."""
    if value is None:
        return "nodata"
    return _LEVEL_OF_BAND[raw_level(Limits.of_mapping(row), value)]


def with_latest(row: dict[str, Any]) -> dict[str, Any]:
    """A mapping row plus ``quality`` (name) and ``level`` of its latest value, and the English labels
    of its role and quality (msgids, for pages outside this area); a bad or stale sample counts as no
    data whatever its number."""
    quality = quality_name(row.get("latest_quality"))
    usable = row.get("latest_time") is not None and quality not in ("bad", "stale")
    level = limit_level(row.get("latest_value"), row) if usable else "nodata"
    return {**row, "quality": quality, "level": level, "role_label": ROLE_LABELS.get(row.get("metric_role"), "Other"),
            "quality_label": QUALITY_LABELS.get(quality) if quality else None}
