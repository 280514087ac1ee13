"""The AI answer's validation, the context's contents, and demo-tenant identifiers."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from optria.optimization.ai import AiUnavailable, build_context, parse_answer
from optria.optimization.analytics import AssetData, SignalData, analyze_asset
from optria.optimization.inputs import RunInputs
from optria.platform.demo_tenants import slug_base
from optria.twin.scoring import Limits

GOOD = {"recommendations": [{"asset_code": "P-1", "title": "فحص المحمل", "rationale": "اهتزاز مرتفع",
                             "action": "خفض الحمل", "expected_impact": "تجنب توقف", "confidence": 0.7,
                             "priority": "high"}],
        "assets": [{"asset_code": "P-1", "failure_probability": 0.6, "health_score": 40, "status": "critical"}]}


@pytest.mark.parametrize("content, reason", [
    ("not json at all", "invalid_json"),
    ("", "invalid_json"),
    (json.dumps({"advice": []}), "invalid_answer"),
    (json.dumps({**GOOD, "recommendations": [{**GOOD["recommendations"][0], "confidence": 1.7}]}), "invalid_answer"),
    (json.dumps({**GOOD, "assets": [{**GOOD["assets"][0], "status": "exploded"}]}), "invalid_answer"),
    (json.dumps({**GOOD, "recommendations": [{**GOOD["recommendations"][0], "title": ""}]}), "invalid_answer"),
])
def test_invalid_answers_are_refused_with_a_reason(content, reason) -> None:
    with pytest.raises(AiUnavailable) as err:
        parse_answer(content, {"P-1"})
    assert err.value.reason == reason and "analytics" in err.value.message


def test_a_valid_answer_keeps_only_known_assets_and_accepts_a_code_fence() -> None:
    answer = {**GOOD, "recommendations": GOOD["recommendations"] + [{**GOOD["recommendations"][0], "asset_code": "X-9"}]}
    parsed = parse_answer("```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```", {"P-1"})
    assert [r.asset_code for r in parsed.recommendations] == ["P-1"]
    assert parsed.assets[0].failure_probability == 0.6


def test_context_holds_the_assets_figures_and_nothing_else() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    sig = SignalData(41, "Plant.P-1.Vibration", "vibration", "mm/s", limits=Limits(None, 7.1, None, 11.0),
                     latest=12.0, latest_time=now, quality=0)
    asset = AssetData(7, "P-1", "Pump", signals=(sig,))
    inputs = RunInputs([asset], meta={7: {"code": "P-1", "name": "Pump", "name_ar": None, "type": "pump",
                                          "criticality": "high", "unit": "Crude", "unit_code": "CU"}},
                       incidents=[{"asset_id": 7, "title": "P-1 vibration", "incident_type": "limit_breach",
                                   "severity": "critical", "status": "open", "started_at": now, "last_event_at": now,
                                   "event_count": 3},
                                  {"asset_id": 99, "title": "someone else's", "incident_type": "limit_breach",
                                   "severity": "critical", "status": "open", "started_at": now, "last_event_at": now,
                                   "event_count": 1}])
    context = build_context(inputs, [analyze_asset(asset, now)], {"kind": "asset", "label": "P-1"})
    text = json.dumps(context, default=str)
    assert context["assets"][0]["code"] == "P-1" and context["assets"][0]["findings"][0]["severity"] == "critical"
    assert [i["title"] for i in context["open_incidents"]] == ["P-1 vibration"]
    assert "signal_id" not in text and "41" not in text.replace("11.0", "")   # no internal ids


@pytest.mark.parametrize("name, slug", [
    ("Demo ARAMCO", "demo-aramco"), ("  Demo   Ras Tanura!  ", "demo-ras-tanura"), ("Café Énergie", "cafe-energie"),
    ("عرض تجريبي", "demo"), ("x", "demo"), ("A" * 80, "a" * 50),
])
def test_slug_base(name, slug) -> None:
    assert slug_base(name) == slug
