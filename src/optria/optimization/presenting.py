"""Shaping stored runs and opportunities for the pages: texts in the reader's language, cards per asset.

Analytics texts are stored with their English msgids and parameters, so they are translated
here at render time; AI recommendations arrive in Arabic and are shown as written.
"""

from __future__ import annotations

from typing import Any

from optria.optimization.analytics import SEVERITY_RANK, TRANSLATED_PARAMS
from optria.twin.cards import risk_level
from optria.web.i18n import gettext as translate  # dynamic msgids: not a literal for the extractor

TEXT_FIELDS = ("title", "rationale", "action", "expected_impact")


def localized(item: dict[str, Any], field: str) -> str:
    evidence = item.get("evidence") or {}
    msgid = (evidence.get("msg") or {}).get(field)
    if not msgid:
        return item.get(field) or ""
    params = dict(evidence.get("params") or {})
    for name in TRANSLATED_PARAMS:
        if isinstance(params.get(name), str):
            params[name] = translate(params[name])
    try:
        return translate(msgid, **params)
    except (KeyError, TypeError, ValueError):
        return item.get(field) or ""


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
