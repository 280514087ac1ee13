"""Export of an incident timeline as CSV and JSON.

Roles without black box details get neither payloads nor actors, in the file as on the page.
CSV cells that a spreadsheet would run as a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

BASE_COLUMNS = ("event_time", "last_event_time", "count", "relation", "severity", "source_system", "source_type",
                "event_category", "summary", "event_id", "signal_id", "integration_id", "correlation_id", "time_flag")
DETAIL_COLUMNS = ("actor", "payload")
INCIDENT_FIELDS = ("id", "title", "incident_type", "severity", "status", "asset_id", "asset_code", "started_at",
                   "last_event_at", "event_count", "acknowledged_at", "acknowledged_by_name", "resolved_at",
                   "resolved_by_name", "summary")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(item: dict[str, Any], details: bool) -> dict[str, Any]:
    out = {c: item.get("id") if c == "event_id" else item.get(c) for c in BASE_COLUMNS}
    if details:
        out.update({c: item.get(c) for c in DETAIL_COLUMNS})
    return out


def timeline_csv(timeline: list[dict[str, Any]], *, details: bool) -> str:
    columns = BASE_COLUMNS + (DETAIL_COLUMNS if details else ())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for item in timeline:
        row = _row(item, details)
        writer.writerow([_cell(row[c]) for c in columns])
    return "\ufeff" + buf.getvalue()   # BOM: spreadsheets then read the Arabic text as UTF-8


def timeline_json(incident: dict[str, Any], timeline: list[dict[str, Any]], *, details: bool) -> dict[str, Any]:
    return {"incident": {k: incident.get(k) for k in INCIDENT_FIELDS},
            "events": [_row(item, details) for item in timeline]}
