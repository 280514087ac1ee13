"""Starting, running and recording optimization runs.

A run is created ``queued`` (:func:`create_run`), then executed (:func:`execute`): ``running``,
its inputs loaded, the analytics engine applied, the AI model asked when the engine is
``ai``, and the result stored as ``succeeded``, ``fallback`` (an AI run answered by the
analytics engine, with the reason) or ``failed``, all within the run's ``timeout_s`` counted
from its creation. Runs started from the web are jobs of the PostgreSQL job queue
(optria.shell.job_queue), so they outlive the process that started them: an attempt that is
interrupted (a shutdown, an error while retries remain) puts the run back to ``queued`` for the
next attempt, and an attempt that finds the run ``running`` (its process died) starts it over.
The status lives in the database, so any replica can show it, and a run nobody finishes is
shown failed once its time is up (see ``store.EFFECTIVE_STATUS``).

Black Box events (started, finished or failed, recommendations) come from the run rows
themselves: the Black Box's ``OptimizationCollector`` (optria.blackbox.collectors) reads
``optimization_runs`` and writes them with source system ``optimization``. This module
writes no event itself, so each event exists exactly once.

A successful AI run also writes the model's score per asset as an ``asset_metrics_snapshot``
row with source ``ai``; the twin's scoring combines it with its rules (it can raise a
risk, never clear one).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from optria.config import Settings
from optria.db import Database
from optria.optimization import ai, store
from optria.optimization.analytics import AssetAnalysis, analyze
from optria.optimization.inputs import RunInputs, load, window_text

log = logging.getLogger("optria.optimization")

RUN_MARGIN_S = 60          # a run's time limit beyond the AI call's
MAX_RUN_TIMEOUT_S = 3600


class RunRefused(Exception):
    """A run that cannot start; ``code`` for the API, ``message`` an English msgid for pages."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


M_DISABLED = "The optimization engine is switched off on this platform (OPTIMIZATION_ENGINE_ENABLED=false)."
M_NO_SCOPE = "Choose what to optimize: all assets, a unit or an asset of your organization."
M_NOT_FOUND = "That unit, asset or data source does not exist in your organization."
M_NO_ASSETS = "There are no assets to optimize in this scope yet. Add assets and map signals to them first."
M_ALREADY = "A run for this scope is already in progress."
MESSAGES = (M_DISABLED, M_NO_SCOPE, M_NOT_FOUND, M_NO_ASSETS, M_ALREADY)


@dataclass(frozen=True)
class RunRequest:
    tenant_id: UUID
    scope: str
    scope_id: int | None
    engine: str = "ai"
    requested_by: UUID | None = None
    requested_by_name: str = "system"
    origin: str = "web"


def run_timeout(settings: Settings) -> int:
    return int(min(MAX_RUN_TIMEOUT_S, ai.timeout_for(settings) + RUN_MARGIN_S))


async def create_run(db: Database, settings: Settings, req: RunRequest) -> int:
    """Check and record a queued run; raises RunRefused. Returns the run id."""
    if not settings.optimization_engine_enabled:
        raise RunRefused(409, "engine_disabled", M_DISABLED)
    if req.scope not in store.SCOPES or req.engine not in store.ENGINES or \
            (req.scope != "tenant" and not req.scope_id) or (req.scope == "tenant" and req.scope_id):
        raise RunRefused(422, "invalid_scope", M_NO_SCOPE)
    async with db.tenant(req.tenant_id) as conn:
        label = await store.scope_label(conn, req.tenant_id, req.scope, req.scope_id)
        if label is None:
            raise RunRefused(404, "not_found", M_NOT_FOUND)
        if not await store.scope_asset_ids(conn, req.tenant_id, req.scope, req.scope_id):
            raise RunRefused(422, "no_assets", M_NO_ASSETS)
        if await store.active_run_for_scope(conn, req.tenant_id, req.scope, req.scope_id):
            raise RunRefused(409, "run_in_progress", M_ALREADY)
        row = await store.insert_run(
            conn, tenant_id=req.tenant_id, scope=req.scope, scope_id=req.scope_id, scope_label=label[:300],
            engine=req.engine, model=None, requested_by=req.requested_by,
            requested_by_name=req.requested_by_name[:200] or "system", origin=req.origin,
            timeout_s=run_timeout(settings))
    log.info("optimization.run_queued", extra={"tenant_id": str(req.tenant_id), "run_id": row["id"],
                                               "scope": req.scope, "engine": req.engine})
    return row["id"]


async def execute(db: Database, settings: Settings, tenant_id: UUID, run_id: int, *,
                  ai_timeout_s: float | None = None, from_queue: bool = False,
                  last_attempt: bool = True) -> dict[str, Any] | None:
    """Run to completion within the run's time limit. Returns the final run row.

    Called inline (the proof of concept), it never raises but for a cancellation, and every
    failure is recorded on the run. Called by the job queue (``from_queue``), one attempt owns
    the run: a run left ``running`` by an attempt whose process died starts over; a cancellation
    (the worker shuts down) and, unless this is the ``last_attempt``, an unexpected error put the
    run back to ``queued`` and raise, so the queue tries again.
    """
    async with db.tenant(tenant_id) as conn:
        if from_queue and await store.requeue_run(conn, tenant_id, run_id):
            log.warning("optimization.run_resumed", extra={"tenant_id": str(tenant_id), "run_id": run_id})
        run = await store.run(conn, tenant_id, run_id)
    if run is None or run["status"] != "queued":
        return run
    left_s = run["timeout_s"] - (datetime.now(timezone.utc) - run["created_at"]).total_seconds()
    try:
        async with asyncio.timeout(max(left_s, 1.0)):
            await _execute(db, settings, run, ai_timeout_s)
    except asyncio.CancelledError:
        if from_queue:
            await _requeue(db, run)
        else:
            await _fail(db, run, "The run was cancelled (the server is shutting down).")
        raise
    except TimeoutError:
        await _fail(db, run, f"The run did not finish within {run['timeout_s']} s.")
    except Exception as exc:
        if from_queue and not last_attempt:
            log.warning("optimization.run_retry", extra={"tenant_id": str(tenant_id), "run_id": run_id,
                                                         "error": type(exc).__name__})
            await _requeue(db, run)
            raise
        log.exception("optimization.run_crashed", extra={"tenant_id": str(tenant_id), "run_id": run_id})
        await _fail(db, run, f"The run stopped on an unexpected error ({type(exc).__name__}); it has been logged.")
    async with db.tenant(tenant_id) as conn:
        return await store.run(conn, tenant_id, run_id)


async def _execute(db: Database, settings: Settings, run: dict[str, Any], ai_timeout_s: float | None) -> None:
    tenant_id, run_id = run["tenant_id"], run["id"]
    async with db.tenant(tenant_id) as conn:
        if await store.mark_running(conn, tenant_id, run_id) is None:
            return
    now = datetime.now(timezone.utc)
    async with db.tenant(tenant_id) as conn:
        asset_ids = await store.scope_asset_ids(conn, tenant_id, run["scope"], run["scope_id"])
        inputs = await load(conn, tenant_id, asset_ids, now)
    analyses = analyze(inputs.assets, now)
    findings = [f for a in analyses for f in a.findings]
    scope = {"kind": run["scope"], "label": run["scope_label"]}
    status, fallback_reason, fallback, model = "succeeded", None, None, None
    answer: ai.AiAnswer | None = None
    context_bytes = None
    if run["engine"] == "ai":
        context = ai.build_context(inputs, analyses, scope)
        context_bytes = len(ai.messages_for(context)[1]["content"].encode())
        try:
            answer, model = await ai.ask(settings, context, timeout_s=ai_timeout_s)
        except ai.AiUnavailable as exc:
            status, fallback_reason = "fallback", exc.message
            fallback = {"code": exc.reason, "params": exc.params}
            log.info("optimization.run_fallback", extra={"tenant_id": str(tenant_id), "run_id": run_id,
                                                         "reason": exc.reason})
    code_to_id = {m["code"]: aid for aid, m in inputs.meta.items()}
    recommendations = _ai_recommendations(answer, code_to_id) if answer else []
    recommendations += [_from_finding(f, inputs) for f in findings]
    opportunities = [{**r, "tenant_id": tenant_id, "run_id": run_id} for r in _opportunity_rows(recommendations)]
    summary = {**_inputs_summary(inputs, analyses, now, context_bytes), "fallback": fallback}
    async with db.tenant(tenant_id) as conn:
        finished = await store.finish_run(conn, tenant_id, run_id, status=status, asset_count=len(inputs.assets),
                                          inputs=summary, findings=[f.as_dict() for f in findings],
                                          recommendations=recommendations, fallback_reason=fallback_reason, model=model)
        if finished is None:        # reaped or finished by another attempt meanwhile: write nothing
            return
        await store.insert_opportunities(conn, opportunities)
        await store.supersede(conn, tenant_id, run_id, asset_ids)
        if answer is not None:
            await store.insert_ai_snapshots(conn, _ai_snapshots(answer, code_to_id, tenant_id, run_id,
                                                                finished["finished_at"]))
    log.info("optimization.run_finished", extra={"tenant_id": str(tenant_id), "run_id": run_id, "status": status,
                                                 "assets": len(inputs.assets), "recommendations": len(recommendations)})


async def _requeue(db: Database, run: dict[str, Any]) -> None:
    """Back to ``queued`` for the job queue's next attempt."""
    try:
        async with db.tenant(run["tenant_id"]) as conn:
            await store.requeue_run(conn, run["tenant_id"], run["id"])
    except Exception:
        log.exception("optimization.run_requeue_not_recorded", extra={"run_id": run["id"]})


async def _fail(db: Database, run: dict[str, Any], message: str) -> None:
    try:
        async with db.tenant(run["tenant_id"]) as conn:
            await store.finish_run(conn, run["tenant_id"], run["id"], status="failed", asset_count=0, inputs={},
                                   findings=[], recommendations=[], error=message)
    except Exception:
        log.exception("optimization.run_fail_not_recorded", extra={"run_id": run["id"]})


async def wait_for_run(db: Database, tenant_id: UUID, run_id: int, timeout_s: float,
                       interval_s: float = 0.5) -> dict[str, Any] | None:
    """Poll until the run is finished (or shown failed); returns the last row read."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    row = None
    while True:
        async with db.tenant(tenant_id) as conn:
            row = await store.run(conn, tenant_id, run_id)
        if row is None or row["status"] in ("succeeded", "failed", "fallback") or loop.time() >= deadline:
            return row
        await asyncio.sleep(interval_s)


# ------------------------------------------------------------------------------------------ shaping

PRIORITY_SEVERITY = {"low": "low", "medium": "medium", "high": "high"}


def _ai_recommendations(answer: ai.AiAnswer, code_to_id: dict[str, int]) -> list[dict[str, Any]]:
    return [{"source": "ai", "kind": "recommendation", "asset_id": code_to_id[r.asset_code], "asset_code": r.asset_code,
             "severity": PRIORITY_SEVERITY[r.priority], "priority": r.priority, "title": r.title,
             "rationale": r.rationale, "action": r.action, "expected_impact": r.expected_impact,
             "confidence": round(r.confidence, 3), "impact_value": None, "impact_unit": None, "evidence": {}}
            for r in answer.recommendations]


def _from_finding(f: Any, inputs: RunInputs) -> dict[str, Any]:
    return {"source": "analytics", "kind": f.kind, "asset_id": f.asset_id,
            "asset_code": inputs.meta.get(f.asset_id, {}).get("code"), "severity": f.severity, "title": f.title,
            "rationale": f.rationale, "action": f.action, "expected_impact": f.expected_impact,
            "confidence": f.confidence, "impact_value": f.impact_value, "impact_unit": f.impact_unit,
            "evidence": f.evidence}


def _opportunity_rows(recommendations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("asset_id", "source", "kind", "severity", "title", "rationale", "action", "expected_impact",
            "impact_value", "impact_unit", "confidence", "evidence")
    return [{k: r.get(k) for k in keys} for r in recommendations]


def _ai_snapshots(answer: ai.AiAnswer, code_to_id: dict[str, int], tenant_id: UUID, run_id: int,
                  at: datetime) -> list[dict[str, Any]]:
    return [{"tenant_id": tenant_id, "asset_id": code_to_id[s.asset_code], "time": at,
             "health_score": round(s.health_score, 2), "failure_probability": round(s.failure_probability, 4),
             "status": s.status, "contributing": [{"reason": "ai_run", "run_id": run_id}]}
            for s in answer.assets]


def _inputs_summary(inputs: RunInputs, analyses: list[AssetAnalysis], now: datetime,
                    context_bytes: int | None) -> dict[str, Any]:
    """What the run was based on, for the run page: per asset its health and signal figures."""
    assets = []
    for a in analyses:
        meta = inputs.meta.get(a.asset_id, {})
        health = inputs.health.get(a.asset_id)
        assets.append({"asset_id": a.asset_id, "code": meta.get("code"), "name": meta.get("name"),
                       "name_ar": meta.get("name_ar"), "unit": meta.get("unit"), "criticality": meta.get("criticality"),
                       "health": None if health is None else {
                           "status": health["status"], "health_score": health["health_score"],
                           "failure_probability": health["failure_probability"], "source": health["source"]},
                       "specific_energy": a.specific_energy,
                       "signals": [s.as_dict() for s in a.signals]})
    return {"window": window_text(now), "assets": assets,
            "incidents": [{"id": i["id"], "asset_id": i["asset_id"], "title": i["title"], "title_key": i.get("title_key"),
                           "title_params": i.get("title_params"), "severity": i["severity"],
                           "status": i["status"], "started_at": i["started_at"].isoformat()} for i in inputs.incidents],
            "ai_context_bytes": context_bytes}
