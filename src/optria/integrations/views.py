"""Store rows shaped for pages and the API: an integration with its endpoint, last test and ingest
status; a mapping with its signal, asset and latest engineering value.

The API converts these dicts to its Structs; templates read them as they are. Sealed
secrets never reach here (the listing queries do not select them).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from optria.connectors.base import TEST_MESSAGES
from optria.integrations import kinds, live
from optria.integrations.messages import ACTION_MESSAGES, field_labels
from optria.web import messages
from optria.web.i18n import gettext


def integration_view(row: dict[str, Any], settings: Any) -> dict[str, Any]:
    last_test = None
    if row["last_test_at"] is not None:
        last_test = {"at": row["last_test_at"], "success": bool(row["last_test_success"]),
                     "message": row["last_test_message"] or "", "details": row["last_test_details"] or {}}
    return {
        "id": row["id"], "kind": row["kind"], "name": row["name"], "enabled": row["enabled"],
        "is_demo": row["is_demo"], "demo_stream": row["demo_stream"], "streams": live.streams(row),
        "config": row["config"], "has_password": bool(row["has_password"]),
        "endpoint": kinds.endpoint_info(row["kind"], row["config"], settings), "last_test": last_test,
        "mapped_signals": int(row["mapped_signals"]), "ingest": live.ingest_status(row),
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def mapping_view(row: dict[str, Any]) -> dict[str, Any]:
    r = live.with_latest(row)
    latest = None
    if r["latest_time"] is not None:
        latest = {"time": r["latest_time"], "value": r["latest_value"], "raw_value": r["latest_raw"],
                  "quality": r["quality"]}
    return {
        "id": r["id"], "integration_id": r["integration_id"],
        "signal": {"id": r["signal_id"], "external_id": r["external_id"], "name": r["signal_name"],
                   "path": r["signal_path"] or "", "data_type": r["data_type"], "eng_unit": r["eng_unit"]},
        "asset": {"id": r["asset_id"], "code": r["asset_code"], "name": r["asset_name"], "name_ar": r["asset_name_ar"]},
        "metric_role": r["metric_role"], "unit": r["unit"], "scale": r["scale"], "offset": r["offset"],
        "warn_low": r["warn_low"], "warn_high": r["warn_high"], "crit_low": r["crit_low"], "crit_high": r["crit_high"],
        "expected_interval_s": r["expected_interval_s"], "enabled": r["enabled"], "latest": latest,
        "level": r["level"], "created_at": r["created_at"], "updated_at": r["updated_at"],
        "rejects": {"total": int(r.get("rejected_total") or 0), "reason": r.get("reject_reason"),
                    "detail": r.get("reject_detail"), "at": r.get("last_rejected_at")},
    }


def test_text(test: dict[str, Any] | None):
    """A connection test's outcome in the reader's language: a success from its message key
    (optria.connectors.base.TEST_MESSAGES); a failure's own words (the source's, often English)
    behind a "technical detail" disclosure, its reason being shown translated beside it."""
    if not test:
        return Markup("")
    details = test.get("details") or {}
    if test.get("success"):
        return Markup('<small class="muted ds-message">{}</small>').format(
            messages.stored(details.get("msg"), TEST_MESSAGES, test.get("message")))
    text = test.get("message") or ""
    if not text:
        return Markup("")
    return Markup('<details class="ds-technical"><summary>{}</summary><small class="muted ds-message">{}</small>'
                  '</details>').format(escape(gettext("Technical detail")), messages.isolate(text[:220]))


def action_text(action: dict[str, Any]):
    """An action-log row's details in the reader's language (its stored message; a test's outcome)."""
    if action.get("action") == "test":
        return test_text(action)
    details = action.get("details") or {}
    msg = details.get("msg")
    if isinstance(msg, dict) and isinstance((msg.get("params") or {}).get("fields"), list):
        msg = {**msg, "params": {**msg["params"], "fields": field_labels(msg["params"]["fields"])}}
    return messages.stored(msg, ACTION_MESSAGES, action.get("message"))
test_text.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
