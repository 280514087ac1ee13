"""Shaping stored runs and opportunities for the pages: texts in the reader's language, cards per asset.

Analytics texts are stored with their English msgids and parameters, so they are translated
here at render time; AI recommendations arrive in Arabic and are shown as written.
"""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from optria.blackbox.messages import scope_params
from optria.optimization.analytics import SEVERITY_RANK, TRANSLATED_PARAMS
from optria.twin.cards import risk_level
from optria.web import formatting, messages
from optria.web.i18n import gettext as translate  # dynamic msgids: not a literal for the extractor

TEXT_FIELDS = ("title", "rationale", "action", "expected_impact")


def localized(item: dict[str, Any], field: str):
    """A finding's text in the reader's language: its msgid translated, role names translated, units in
    the reader's language, and every figure and name isolated from the sentence around it. AI texts
    (no msgid) are shown as written, isolated."""
    evidence = item.get("evidence") or {}
    msgid = (evidence.get("msg") or {}).get(field)
    if not msgid:
        return messages.isolate(item.get(field) or "")
    params: dict[str, Any] = {}
    for name, value in dict(evidence.get("params") or {}).items():
        if name in TRANSLATED_PARAMS and isinstance(value, str):
            params[name] = escape(translate(value))
        elif name == "unit":
            params[name] = messages.isolate(formatting.unit_text(value) if value else "")
        else:
            params[name] = messages.isolate(value, "ltr" if _numeric(value) else "auto")
    try:
        return escape(translate(msgid)) % params
    except (KeyError, TypeError, ValueError):
        return messages.isolate(item.get(field) or "")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(",", "").replace(".", "", 1)
                                                 .lstrip("+-").isdigit())


def present(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, **{f"{f}_text": localized(item, f) for f in TEXT_FIELDS}}


def asset_cards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One card per asset with its current opportunities, worst first; AI recommendations lead."""
    cards: dict[int, dict[str, Any]] = {}
    for row in rows:
        card = cards.get(row["asset_id"])
        if card is None:
            status = row.get("health_status") or "nodata"
            probability = row.get("failure_probability")
            card = cards[row["asset_id"]] = {
                "asset_id": row["asset_id"], "code": row["asset_code"], "name": row["asset_name"],
                "name_ar": row.get("asset_name_ar"), "unit_id": row.get("unit_id"), "unit_name": row.get("unit_name"),
                "unit_name_ar": row.get("unit_name_ar"), "criticality": row.get("criticality"), "status": status,
                "prob_pct": int(round(probability * 100)) if probability is not None and status != "nodata" else None,
                "risk": risk_level(status, probability), "run_id": row["run_id"], "engine": row.get("engine"),
                "run_status": row.get("run_status"), "items": [], "worst": "info", "impact_kw": 0.0}
        card["items"].append(present(row))
        if SEVERITY_RANK[row["severity"]] > SEVERITY_RANK[card["worst"]]:
            card["worst"] = row["severity"]
        if row.get("impact_unit") == "kW" and row.get("impact_value"):
            card["impact_kw"] += row["impact_value"]
        card["run_id"] = max(card["run_id"], row["run_id"])
    out = list(cards.values())
    for card in out:
        card["items"].sort(key=lambda i: (i["source"] != "ai", -SEVERITY_RANK[i["severity"]], i["id"]))
    out.sort(key=lambda c: (-SEVERITY_RANK[c["worst"]], c["code"]))
    return out


def group_by_unit(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[Any, dict[str, Any]] = {}
    for card in cards:
        key = card["unit_id"]
        group = groups.setdefault(key, {"unit_id": key, "name": card["unit_name"], "name_ar": card["unit_name_ar"],
                                        "cards": [], "worst": "info"})
        group["cards"].append(card)
        if SEVERITY_RANK[card["worst"]] > SEVERITY_RANK[group["worst"]]:
            group["worst"] = card["worst"]
    return sorted(groups.values(), key=lambda g: (-SEVERITY_RANK[g["worst"]], g["name"] or "~"))


def scope_text(run: dict[str, Any]):
    """What a run covered, in the reader's language: "P-101 — مضخة شحن الخام أ", a unit's name, all assets."""
    return messages.param("scope", scope_params(run), {})
