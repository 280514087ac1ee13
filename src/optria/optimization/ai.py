"""AI runs: a compact, tenant-scoped context to an OpenAI-compatible model, a validated answer back.

The context holds one tenant's assets of the run's scope (code, name, type, criticality, unit),
their health, the figures of their mapped signals (latest value, limits, recent and baseline
statistics, slope), the analytics engine's findings and the open incidents — built from
:class:`~optria.optimization.inputs.RunInputs`, which only ever holds rows of that tenant. It
never holds a credential, an integration's configuration, a user or another tenant's row.

The model is asked for structured output (a JSON schema): recommendations in Arabic (title,
rationale, action, expected impact, confidence, priority) and a score per asset (failure
probability, health score, status). The answer is validated with msgspec; recommendations
naming an asset outside the context are dropped.

Anything that stops the model from answering well raises :class:`AiUnavailable` with a short
reason code and an English message: no API key, a timeout (``ai_timeout_s``, 30 s by
default), a refused key, a server error, an answer that is not JSON or not the schema. The
run then falls back to the analytics result, labelled with that reason.

``OPENAI_BASE_URL`` points the client at Azure OpenAI (its ``/openai/v1/`` endpoint) or any
OpenAI-compatible server; ``OPENAI_MODEL`` names the model (or Azure deployment).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Annotated, Any, Literal

import msgspec

from optria.config import Settings
from optria.optimization.analytics import AssetAnalysis
from optria.optimization.inputs import RunInputs

log = logging.getLogger("optria.optimization.ai")

DEFAULT_TIMEOUT_S = 30.0
MAX_CONTEXT_ASSETS = 30
MAX_CONTEXT_SIGNALS = 12
MAX_CONTEXT_FINDINGS = 8
MAX_RECOMMENDATIONS = 40

Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1500)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class AiRecommendation(msgspec.Struct, kw_only=True):
    asset_code: str
    title: Title
    rationale: Text
    action: Text
    expected_impact: Text
    confidence: Probability
    priority: Literal["low", "medium", "high"] = "medium"


class AiAssetScore(msgspec.Struct, kw_only=True):
    asset_code: str
    failure_probability: Probability
    health_score: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
    status: Literal["normal", "warning", "critical"]


class AiAnswer(msgspec.Struct, kw_only=True):
    recommendations: list[AiRecommendation]
    assets: list[AiAssetScore] = msgspec.field(default_factory=list)


class AiUnavailable(Exception):
    """Why the model's answer cannot be used. ``reason`` is a short code, ``message`` plain English."""

    def __init__(self, reason: str, params: dict[str, Any] | None = None, detail: str = "") -> None:
        self.reason = reason
        self.params = params or {}
        self.message = REASON_MESSAGES[reason] % self.params + (f" ({detail})" if detail else "")
        super().__init__(self.message)


REASON_MESSAGES = {
    "no_key": "OPENAI_API_KEY is not set, so the analytics result is shown.",
    "timeout": "The AI model did not answer within %(timeout)s s, so the analytics result is shown.",
    "invalid_json": "The AI model's answer was not valid JSON, so the analytics result is shown.",
    "invalid_answer": "The AI model's answer did not match the expected structure, so the analytics result is shown.",
    "refused": "The AI service refused the request (status %(status)s), so the analytics result is shown.",
    "unreachable": "The AI service could not be reached, so the analytics result is shown.",
    "no_assets": "There were no assets with data to send to the AI model, so the analytics result is shown.",
}

SYSTEM_PROMPT = (
    "You are a senior reliability and energy-optimization engineer for oil, gas and petrochemical plants. "
    "You receive measured data of one plant's assets as JSON: their signals' latest values, limits, recent and "
    "baseline statistics, trends, findings of a deterministic analytics engine and open incidents. "
    "Recommend concrete actions that reduce failure risk or energy use. Use only the data given; never invent "
    "measurements. Write every title, rationale, action and expected_impact in Modern Standard Arabic. "
    "Each asset_code must be one of the codes in the data. Give each recommendation a confidence between 0 and 1 "
    "and a priority (low, medium, high). Also score every asset: failure_probability (0 to 1), health_score "
    "(0 to 100) and status (normal, warning, critical). Answer with JSON matching the schema only."
)

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["recommendations", "assets"],
    "properties": {
        "recommendations": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["asset_code", "title", "rationale", "action", "expected_impact", "confidence", "priority"],
            "properties": {
                "asset_code": {"type": "string"}, "title": {"type": "string"}, "rationale": {"type": "string"},
                "action": {"type": "string"}, "expected_impact": {"type": "string"},
                "confidence": {"type": "number"}, "priority": {"type": "string", "enum": ["low", "medium", "high"]},
            }}},
        "assets": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["asset_code", "failure_probability", "health_score", "status"],
            "properties": {
                "asset_code": {"type": "string"}, "failure_probability": {"type": "number"},
                "health_score": {"type": "number"},
                "status": {"type": "string", "enum": ["normal", "warning", "critical"]},
            }}},
    },
}


def timeout_for(settings: Settings) -> float:
    """The AI call's time limit: ``OPENAI_TIMEOUT_S`` when the settings carry it, else 30 s."""
    value = getattr(settings, "openai_timeout_s", None)
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S


def has_key(settings: Settings) -> bool:
    key = settings.openai_api_key
    return bool(key is not None and key.get_secret_value().strip())


# ------------------------------------------------------------------------------------------ context

def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def build_context(inputs: RunInputs, analyses: list[AssetAnalysis], scope: dict[str, Any]) -> dict[str, Any]:
    """The compact JSON the model sees: the run's assets and nothing else."""
    codes = {a.asset_id: inputs.meta[a.asset_id]["code"] for a in analyses if a.asset_id in inputs.meta}
    assets = []
    for analysis in analyses[:MAX_CONTEXT_ASSETS]:
        meta = inputs.meta.get(analysis.asset_id)
        if meta is None:
            continue
        health = inputs.health.get(analysis.asset_id)
        assets.append({
            "code": meta["code"], "name": meta["name"], "type": meta["type"], "criticality": meta["criticality"],
            "unit": meta["unit"],
            "health": None if health is None else {
                "status": health["status"], "health_score": health["health_score"],
                "failure_probability": health["failure_probability"], "time": _iso(health["time"])},
            "signals": [{k: v for k, v in s.as_dict().items() if k not in ("signal_id",) and v is not None}
                        for s in analysis.signals[:MAX_CONTEXT_SIGNALS]],
            "specific_energy_kwh_per_m3": analysis.specific_energy,
            "findings": [{"kind": f.kind, "severity": f.severity, "title": f.title, "rationale": f.rationale,
                          "expected_impact": f.expected_impact, "confidence": f.confidence}
                         for f in analysis.findings[:MAX_CONTEXT_FINDINGS]],
        })
    incidents = [{"asset_code": codes.get(i["asset_id"]), "title": i["title"], "type": i["incident_type"],
                  "severity": i["severity"], "status": i["status"], "started_at": _iso(i["started_at"]),
                  "last_event_at": _iso(i["last_event_at"]), "event_count": i["event_count"]}
                 for i in inputs.incidents if i["asset_id"] in codes]
    return {"scope": scope, "assets": assets, "open_incidents": incidents,
            "units": {"time": "UTC", "limits": "shown engineering units"}}


def messages_for(context: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Plant data (JSON):\n" + json.dumps(context, ensure_ascii=False, default=str)}]


# ------------------------------------------------------------------------------------------ answer

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_answer(content: str | None, known_codes: set[str]) -> AiAnswer:
    """Validate the model's text; raises AiUnavailable(invalid_json | invalid_answer)."""
    text = (content or "").strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        json.loads(text)
    except ValueError:
        raise AiUnavailable("invalid_json") from None
    try:
        answer = msgspec.json.decode(text.encode(), type=AiAnswer)
    except msgspec.ValidationError as exc:
        raise AiUnavailable("invalid_answer", detail=str(exc)[:160]) from None
    answer.recommendations = [r for r in answer.recommendations if r.asset_code in known_codes][:MAX_RECOMMENDATIONS]
    answer.assets = [a for a in answer.assets if a.asset_code in known_codes]
    return answer


async def ask(settings: Settings, context: dict[str, Any], *, timeout_s: float | None = None) -> tuple[AiAnswer, str]:
    """Ask the model; returns (validated answer, model name) or raises AiUnavailable."""
    if not has_key(settings):
        raise AiUnavailable("no_key")
    if not context.get("assets"):
        raise AiUnavailable("no_assets")
    import openai

    limit = float(timeout_s or timeout_for(settings))
    model = settings.openai_model
    client = openai.AsyncOpenAI(api_key=settings.openai_api_key.get_secret_value().strip(),  # type: ignore[union-attr]
                                base_url=settings.openai_base_url or None, timeout=limit, max_retries=0)
    try:
        async with asyncio.timeout(limit):
            completion = await client.chat.completions.create(
                model=model, messages=messages_for(context), temperature=0.2,  # type: ignore[arg-type]
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "optimization_recommendations", "strict": True,
                                                 "schema": RESPONSE_SCHEMA}})
    except (TimeoutError, openai.APITimeoutError):
        log.warning("optimization.ai_timeout", extra={"timeout_s": limit, "model": model})
        raise AiUnavailable("timeout", {"timeout": f"{limit:g}"}) from None
    except openai.APIStatusError as exc:
        log.warning("optimization.ai_refused", extra={"status": exc.status_code, "model": model})
        raise AiUnavailable("refused", {"status": exc.status_code}) from None
    except openai.APIError as exc:
        log.warning("optimization.ai_unreachable", extra={"error": type(exc).__name__, "model": model})
        raise AiUnavailable("unreachable") from None
    finally:
        await client.close()
    choice = completion.choices[0] if completion.choices else None
    content = choice.message.content if choice is not None else None
    codes = {a["code"] for a in context["assets"]}
    answer = parse_answer(content, codes)
    log.info("optimization.ai_answer", extra={"model": completion.model or model,
                                              "recommendations": len(answer.recommendations)})
    return answer, completion.model or model
