"""The one-click proof of concept: the whole chain, step by step, each bounded in time, with evidence.

Steps (each passes or fails with a reason, its duration and a link to the evidence):

1. **config** — configuration status (flags only): OPC-UA endpoint and PI URL set, required
   secrets present in production; the storage tier.
2. **tenant** — the demo tenant exists, is active, has assets and its OPC-UA and PI demo
   integrations with mapped tags.
3. **opcua_test** / 4. **pi_test** — a real connection test of each demo integration (recorded on
   the integration like the Test button). The integrations follow OPCUA_ENDPOINT_URL / PI_BASE_URL:
   the public demo servers when configured and reachable, else the local simulators.
5. **streams** — the demo streams are switched on (if they were off) and the ingest service
   reports both integrations ``streaming`` with a fresh heartbeat and fresh samples.
6. **twin** — every demo asset with mapped signals has fresh values (``signal_latest``), as the
   Digital Twin shows them; its health row is reported when the scoring job wrote one.
7. **fault** — a scripted bearing fault on P-101 through the PI simulator's control endpoint
   (``POST <PI root>/sim/fault``; the root is the integration's PI URL without ``/piwebapi``).
   Both simulators share one plant, so the OPC-UA integration sees the vibration rise too.
8. **incident** — a critical limit-breach event for P-101 after the fault, and a critical
   incident in the Black Box that it opened or extended.
9. **optimization** — an AI optimization run over P-101 finishes, answered by the model or by
   the analytics engine with the fallback labelled.

A step whose prerequisite failed is *skipped* with the reason. The report lives in
``poc_reports`` (platform scope) and is updated after every step, so the page can show live
progress from any web replica and the report stays viewable later. Texts are English msgids
with parameters, translated on the page. A report started from the web is a job of the PostgreSQL
job queue (optria.shell.job_queue): if its process stops, another attempt runs it again from its
first step; ``optria poc`` runs it inline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import aiohttp
import msgspec
from psycopg.types.json import Jsonb

from optria.config import Settings
from optria.db import Database
from optria.integrations import kinds
from optria.integrations.service import Actor, run_test
from optria.optimization import runs
from optria.platform import store
from optria.platform.config_status import config_status
from optria.secretbox import SecretBox

log = logging.getLogger("optria.platform.poc")

STEPS: tuple[tuple[str, str], ...] = (
    ("config", "Configuration status"),
    ("tenant", "Demo tenant present"),
    ("opcua_test", "OPC-UA test connection"),
    ("pi_test", "PI Web API test connection"),
    ("streams", "Demo streams running"),
    ("twin", "Data visible in the Digital Twin"),
    ("fault", "Fault injected in the simulator"),
    ("incident", "Limit breach and critical incident in the Black Box"),
    ("optimization", "Optimization run finished"),
)
STEP_TITLES = dict(STEPS)
STATUS_LABELS = {"pending": "Waiting", "running": "Running", "passed": "Passed", "failed": "Failed",
                 "skipped": "Skipped"}
REPORT_LABELS = {"running": "Running", "passed": "Passed", "failed": "Failed"}

# English msgids of the step messages (listed in optria.shell.i18n_sources).
M = {
    "config_ok": "Configuration complete: OPC-UA endpoint and PI URL set; storage tier %(tier)s.",
    "config_missing": "Missing configuration: %(names)s. Set it and run the proof of concept again.",
    "tenant_ok": "Tenant %(slug)s: %(assets)s assets, OPC-UA and PI demo integrations with %(mapped)s mapped tags.",
    "tenant_missing": "No tenant %(slug)s. Create a demo tenant on the Demo tenants page first.",
    "tenant_inactive": "Tenant %(slug)s is disabled.",
    "tenant_no_assets": "Tenant %(slug)s has no assets.",
    "tenant_no_integration": "Tenant %(slug)s has no %(kind)s demo integration with mapped tags.",
    "test_ok": "%(name)s: %(message)s",
    "test_failed": "%(name)s failed: %(message)s",
    "streams_ok": "Both demo integrations are streaming (%(samples)s samples so far).",
    "streams_started": "Demo stream switched on for %(names)s; both demo integrations are streaming "
                       "(%(samples)s samples so far).",
    "streams_timeout": "Not streaming after %(seconds)s s: %(states)s. Is the ingest service (optria ingest) running?",
    "twin_ok": "%(assets)s assets show fresh data; %(code)s: %(fresh)s of %(mapped)s signals fresh.",
    "twin_timeout": "No fresh data within %(seconds)s s for: %(codes)s.",
    "fault_ok": "Bearing fault injected on %(asset)s through %(url)s (ramp %(ramp)s s).",
    "fault_failed": "The simulator at %(url)s did not accept the fault (%(reason)s). The public demo servers have "
                    "no fault control: run the proof of concept against the local simulators.",
    "fault_no_asset": "No asset %(asset)s in tenant %(slug)s.",
    "incident_ok": "Critical limit breach at %(time)s and incident #%(incident)s (%(status)s) for %(asset)s.",
    "incident_no_breach": "No critical limit breach for %(asset)s within %(seconds)s s. Are the ingest service "
                          "and its Black Box collectors running?",
    "incident_no_incident": "Critical limit breach at %(time)s, but no critical incident within %(seconds)s s. "
                            "Is the Black Box grouping job running?",
    "optimization_ok": "Run #%(run)s %(status)s with %(count)s recommendation(s).",
    "optimization_fallback": "Run #%(run)s finished with the analytics fallback: %(reason)s",
    "optimization_failed": "Run #%(run)s failed: %(reason)s",
    "optimization_refused": "The optimization run could not start: %(reason)s",
    "skipped": "Skipped: %(step)s did not pass.",
    "timeout": "Did not finish within %(seconds)s s.",
    "error": "Stopped on an unexpected error (%(error)s); it has been logged.",
    "summary_passed": "All %(count)s steps passed in %(seconds)s s.",
    "summary_failed": "%(failed)s of %(count)s steps did not pass.",
}


@dataclass
class PocOptions:
    tenant_slug: str = "demo-aramco"
    fault_asset: str = "P-101"
    fault_kind: str = "bearing"
    fault_ramp_s: float = 20.0
    connection_timeout_s: float = 30.0
    stream_timeout_s: float = 90.0
    data_timeout_s: float = 60.0
    fresh_s: float = 60.0
    incident_timeout_s: float = 150.0
    run_timeout_s: float = 120.0
    ai_timeout_s: float | None = None
    poll_s: float = 1.0

    @property
    def budget_s(self) -> float:
        return (10 + 10 + 2 * self.connection_timeout_s + self.stream_timeout_s + self.data_timeout_s + 15
                + self.incident_timeout_s + self.run_timeout_s + 30)


@dataclass
class Outcome:
    passed: bool
    msg: str
    params: dict[str, Any] = field(default_factory=dict)
    evidence_url: str | None = None
    tenant_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: json.dumps(v, default=str, ensure_ascii=False))


def new_steps() -> list[dict[str, Any]]:
    return [{"key": key, "title": title, "status": "pending", "started_at": None, "duration_ms": None,
             "message": "", "msg": None, "params": {}, "evidence_url": None, "tenant_url": None, "details": {}}
            for key, title in STEPS]


def text(msg_key: str, params: dict[str, Any]) -> str:
    try:
        return M[msg_key] % params
    except (KeyError, TypeError, ValueError):
        return M[msg_key]


class PocRunner:
    """Runs the steps in order against the database, the settings' endpoints and the simulators."""

    def __init__(self, db: Database, settings: Settings, box: SecretBox, options: PocOptions, report_id: int, *,
                 actor_name: str = "platform owner",
                 on_step: Callable[[dict[str, Any]], Awaitable[None] | None] | None = None) -> None:
        self.db = db
        self.settings = settings
        self.box = box
        self.o = options
        self.report_id = report_id
        self.actor_name = actor_name
        self.on_step = on_step
        self.store = store.PocStore(db)
        self.steps = new_steps()
        self.tenant: dict[str, Any] | None = None
        self.integrations: dict[str, dict[str, Any]] = {}
        self.asset: dict[str, Any] | None = None
        self.fault_at: datetime | None = None

    # ------------------------------------------------------------------ driver

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        plan: list[tuple[str, Callable[[], Awaitable[Outcome]], float, tuple[str, ...]]] = [
            ("config", self.step_config, 10, ()),
            ("tenant", self.step_tenant, 10, ()),
            ("opcua_test", lambda: self.step_test("opcua"), self.o.connection_timeout_s, ("tenant",)),
            ("pi_test", lambda: self.step_test("pi"), self.o.connection_timeout_s, ("tenant",)),
            ("streams", self.step_streams, self.o.stream_timeout_s, ("tenant",)),
            ("twin", self.step_twin, self.o.data_timeout_s, ("streams",)),
            ("fault", self.step_fault, 15, ("tenant",)),
            ("incident", self.step_incident, self.o.incident_timeout_s, ("fault", "streams")),
            ("optimization", self.step_optimization, self.o.run_timeout_s, ("tenant",)),
        ]
        results: dict[str, str] = {}
        for key, fn, budget, needs in plan:
            step = self.step(key)
            blocked = next((n for n in needs if results.get(n) != "passed"), None)
            if blocked is not None:
                self.finish(step, "skipped", Outcome(False, "skipped", {"step": STEP_TITLES[blocked]}), 0.0)
                results[key] = "skipped"
                await self.save()
                continue
            step["status"], step["started_at"] = "running", datetime.now(timezone.utc).isoformat()
            await self.save()
            t0 = time.monotonic()
            try:
                async with asyncio.timeout(budget):
                    outcome = await fn()
            except TimeoutError:
                outcome = Outcome(False, "timeout", {"seconds": f"{budget:g}"})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("poc.step_crashed", extra={"step": key, "report_id": self.report_id})
                outcome = Outcome(False, "error", {"error": type(exc).__name__})
            self.finish(step, "passed" if outcome.passed else "failed", outcome, time.monotonic() - t0)
            results[key] = step["status"]
            log.info("poc.step", extra={"report_id": self.report_id, "step": key, "status": step["status"],
                                        "duration_ms": step["duration_ms"]})
            await self.save()
        failed = [s for s in self.steps if s["status"] != "passed"]
        seconds = f"{time.monotonic() - started:.1f}"
        summary_key = "summary_failed" if failed else "summary_passed"
        params = {"failed": len(failed), "count": len(self.steps), "seconds": seconds}
        await self.store.execute(store.FINISH_POC_REPORT, {
            "id": self.report_id, "steps": _jsonb(self.steps), "status": "failed" if failed else "passed",
            "summary": text(summary_key, params)})
        return {"id": self.report_id, "status": "failed" if failed else "passed", "steps": self.steps,
                "summary": text(summary_key, params), "duration_s": float(seconds)}

    def step(self, key: str) -> dict[str, Any]:
        return next(s for s in self.steps if s["key"] == key)

    def finish(self, step: dict[str, Any], status: str, outcome: Outcome, seconds: float) -> None:
        step.update(status=status, duration_ms=int(seconds * 1000), msg=M[outcome.msg], params=outcome.params,
                    message=text(outcome.msg, outcome.params), evidence_url=outcome.evidence_url,
                    tenant_url=outcome.tenant_url, details=outcome.details)

    async def save(self) -> None:
        await self.store.execute(store.UPDATE_POC_REPORT, {
            "id": self.report_id, "steps": _jsonb(self.steps), "tenant_id": self.tenant["id"] if self.tenant else None})
        if self.on_step is not None:
            result = self.on_step(self.steps)
            if asyncio.iscoroutine(result):
                await result

    async def poll(self, check: Callable[[], Awaitable[Any]]) -> Any:
        """Call ``check`` until it returns something truthy (the step's own timeout ends the wait)."""
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(self.o.poll_s)

    # ------------------------------------------------------------------ steps

    async def step_config(self) -> Outcome:
        tier = await store.PlatformStore(self.db).storage_tier()
        status = config_status(self.settings, tier)
        flags = {k: v for k, v in msgspec.structs.asdict(status).items() if isinstance(v, bool)}
        missing = []
        if not status.has_opcua_endpoint:
            missing.append("OPCUA_ENDPOINT_URL")
        if not status.has_pi_base_url:
            missing.append("PI_BASE_URL")
        if self.settings.is_production and not status.required_secrets_ok:
            missing.append("SESSION_SECRET / DATABASE_URL")
        details = {"flags": flags, "storage_tier": tier, "app_env": status.app_env}
        if missing:
            return Outcome(False, "config_missing", {"names": ", ".join(missing)}, "/platform", details=details)
        return Outcome(True, "config_ok", {"tier": tier}, "/platform", details=details)

    async def step_tenant(self) -> Outcome:
        slug = self.o.tenant_slug
        evidence = f"/platform/tenants?q={slug}"
        tenant = await self.store.one(store.POC_TENANT, {"slug": slug})
        if tenant is None:
            return Outcome(False, "tenant_missing", {"slug": slug}, "/platform/demo-tenants")
        self.tenant = tenant
        if not tenant["is_active"]:
            return Outcome(False, "tenant_inactive", {"slug": slug}, evidence)
        if not tenant["asset_count"]:
            return Outcome(False, "tenant_no_assets", {"slug": slug}, evidence)
        rows = await self.store.all(store.POC_INTEGRATIONS, {"tenant_id": tenant["id"]})
        for kind, label in (("opcua", "OPC-UA"), ("pi", "PI Web API")):
            found = next((r for r in rows if r["kind"] == kind and r["mapped"]), None)
            if found is None:
                return Outcome(False, "tenant_no_integration", {"slug": slug, "kind": label}, evidence)
            self.integrations[kind] = found
        mapped = sum(r["mapped"] for r in self.integrations.values())
        return Outcome(True, "tenant_ok", {"slug": slug, "assets": tenant["asset_count"], "mapped": mapped}, evidence,
                       details={"tenant": tenant["name"], "integrations": {k: {"id": v["id"], "name": v["name"],
                                                                              "mapped": v["mapped"]}
                                                                          for k, v in self.integrations.items()}})

    async def step_test(self, kind: str) -> Outcome:
        integration = self.integrations[kind]
        result = await run_test(self.db, self.box, self.settings, self.tenant["id"], integration["id"], Actor(None))
        details = {k: result["details"].get(k) for k in ("reason", "endpoint_host", "base_url", "endpoint_source",
                                                         "uses_global_default", "round_trip_ms", "server_product",
                                                         "product_title", "security_policy") if k in result["details"]}
        params = {"name": integration["name"], "message": result["message"]}
        return Outcome(bool(result["success"]), "test_ok" if result["success"] else "test_failed", params,
                       f"/platform/ingestion/{integration['id']}", f"/integrations/{integration['id']}", details)

    async def step_streams(self) -> Outcome:
        tenant_id = self.tenant["id"]
        ids = [i["id"] for i in self.integrations.values()]
        switched = await self.store.switch_on_streams(tenant_id, ids, actor_name=self.actor_name,
                                                      report_id=self.report_id)
        if switched:
            log.info("poc.demo_streams_on", extra={"integrations": [r["id"] for r in switched]})
        last: dict[int, dict[str, Any]] = {}

        async def streaming() -> list[dict[str, Any]] | None:
            rows = await self.store.all(store.POC_INGEST_HEALTH, {"tenant_id": tenant_id, "ids": ids})
            last.clear()
            last.update({r["integration_id"]: r for r in rows})
            ok = [r for r in rows if r["state"] == "streaming" and r["connected"] and (r["heartbeat_age_s"] or 99) < 30
                  and r["sample_age_s"] is not None and r["sample_age_s"] < self.o.fresh_s]
            return ok if len(ok) == len(ids) else None

        try:
            async with asyncio.timeout(max(1.0, self.o.stream_timeout_s - 2)):
                rows = await self.poll(streaming)
        except TimeoutError:
            states = ", ".join(f"{i['name']}: {last.get(i['id'], {}).get('state', 'no worker')}"
                               for i in self.integrations.values())
            return Outcome(False, "streams_timeout", {"seconds": f"{self.o.stream_timeout_s:g}", "states": states},
                           "/platform/ingestion")
        details = {"switched_on": [r["name"] for r in switched],
                   "integrations": {str(r["integration_id"]): {"state": r["state"], "samples": r["samples_total"],
                                                               "lag_p99_ms": r["lag_p99_ms"]} for r in rows}}
        params = {"samples": sum(r["samples_total"] or 0 for r in rows), "names": ", ".join(r["name"] for r in switched)}
        return Outcome(True, "streams_started" if switched else "streams_ok", params, "/platform/ingestion",
                       details=details)

    async def step_twin(self) -> Outcome:
        tenant_id = self.tenant["id"]
        last: list[dict[str, Any]] = []

        async def fresh() -> list[dict[str, Any]] | None:
            rows = await self.store.all(store.POC_TWIN_DATA, {"tenant_id": tenant_id, "fresh_s": self.o.fresh_s})
            last[:] = rows
            return rows if rows and all(r["fresh"] > 0 for r in rows) else None

        try:
            async with asyncio.timeout(max(1.0, self.o.data_timeout_s - 2)):
                rows = await self.poll(fresh)
        except TimeoutError:
            stale = [r["code"] for r in last if not r["fresh"]] or ["—"]
            return Outcome(False, "twin_timeout", {"seconds": f"{self.o.data_timeout_s:g}", "codes": ", ".join(stale)},
                           "/platform/ingestion", "/digital-twin")
        target = next((r for r in rows if r["code"] == self.o.fault_asset), rows[0])
        details = {r["code"]: {"fresh": r["fresh"], "mapped": r["mapped"], "health": r["health_status"]} for r in rows}
        return Outcome(True, "twin_ok", {"assets": len(rows), "code": target["code"], "fresh": target["fresh"],
                                         "mapped": target["mapped"]},
                       "/platform/ingestion", f"/digital-twin/assets/{target['id']}", details)

    def pi_root(self) -> str | None:
        merged = kinds.merged("pi", self.integrations["pi"]["config"] or {}, {}, self.settings)
        base = (merged.get("base_url") or "").rstrip("/")
        if not base:
            return None
        return base[: -len("/piwebapi")] if base.lower().endswith("/piwebapi") else base

    async def step_fault(self) -> Outcome:
        asset = await self.store.one(store.POC_ASSET, {"tenant_id": self.tenant["id"], "code": self.o.fault_asset})
        if asset is None:
            return Outcome(False, "fault_no_asset", {"asset": self.o.fault_asset, "slug": self.o.tenant_slug})
        self.asset = asset
        root = self.pi_root() or "—"
        params = {"asset": self.o.fault_asset, "url": root, "ramp": f"{self.o.fault_ramp_s:g}"}
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.post(f"{root}/sim/clear", json={"asset": self.o.fault_asset}) as r:
                    if r.status != 200:
                        raise ValueError(f"HTTP {r.status}")
                self.fault_at = datetime.now(timezone.utc)
                async with http.post(f"{root}/sim/fault", json={"asset": self.o.fault_asset, "kind": self.o.fault_kind,
                                                                 "ramp_s": self.o.fault_ramp_s}) as r:
                    body = await r.json(content_type=None) if r.status == 200 else None
                    if r.status != 200:
                        raise ValueError(f"HTTP {r.status}")
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            return Outcome(False, "fault_failed", {**params, "reason": reason[:200]})
        faults = [f for f in (body or {}).get("faults", []) if f.get("asset") == self.o.fault_asset]
        return Outcome(True, "fault_ok", params, tenant_url=f"/digital-twin/assets/{asset['id']}",
                       details={"injected_at": self.fault_at.isoformat(), "active_faults": faults})

    async def step_incident(self) -> Outcome:
        tenant_id, asset_id = self.tenant["id"], self.asset["id"]
        params = {"tenant_id": tenant_id, "asset_id": asset_id, "since": self.fault_at}
        breach: dict[str, Any] | None = None
        seconds = f"{self.o.incident_timeout_s:g}"

        async def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
            nonlocal breach
            breach = breach or await self.store.one(store.POC_BREACH, params)
            if breach is None:
                return None
            incident = await self.store.one(store.POC_INCIDENT, params)
            return (breach, incident) if incident else None

        try:
            async with asyncio.timeout(max(1.0, self.o.incident_timeout_s - 2)):
                breach, incident = await self.poll(both)
        except TimeoutError:
            if breach is None:
                return Outcome(False, "incident_no_breach", {"asset": self.o.fault_asset, "seconds": seconds},
                               tenant_url=f"/blackbox?asset_id={asset_id}")
            return Outcome(False, "incident_no_incident", {"time": _hms(breach["event_time"]), "seconds": seconds},
                           tenant_url=f"/blackbox/events/{breach['id']}")
        return Outcome(True, "incident_ok", {"time": _hms(breach["event_time"]), "incident": incident["id"],
                                             "status": incident["status"], "asset": self.o.fault_asset},
                       tenant_url=f"/blackbox/incidents/{incident['id']}",
                       details={"breach": {"event_id": breach["id"], "summary": breach["summary"],
                                           "seconds_after_fault": round((breach["event_time"] - self.fault_at)
                                                                        .total_seconds(), 1)},
                                "incident": {"id": incident["id"], "title": incident["title"],
                                             "events": incident["event_count"]}})

    async def step_optimization(self) -> Outcome:
        tenant_id: UUID = self.tenant["id"]
        asset = self.asset or await self.store.one(store.POC_ASSET, {"tenant_id": tenant_id,
                                                                      "code": self.o.fault_asset})
        if asset is None:
            return Outcome(False, "fault_no_asset", {"asset": self.o.fault_asset, "slug": self.o.tenant_slug})
        req = runs.RunRequest(tenant_id=tenant_id, scope="asset", scope_id=asset["id"], engine="ai",
                              requested_by=None, requested_by_name=f"{self.actor_name} (proof of concept)"[:200],
                              origin="poc")
        try:
            run_id = await runs.create_run(self.db, self.settings, req)
        except runs.RunRefused as exc:
            return Outcome(False, "optimization_refused", {"reason": exc.message})
        row = await runs.execute(self.db, self.settings, tenant_id, run_id, ai_timeout_s=self.o.ai_timeout_s)
        url = f"/optimization/runs/{run_id}"
        status = row["status"] if row else "failed"
        details = {"run_id": run_id, "status": status, "engine": "ai", "model": row.get("model") if row else None,
                   "recommendations": len(row["recommendations"] or []) if row else 0,
                   "titles": [r["title"] for r in (row["recommendations"] or [])[:3]] if row else []}
        if status == "succeeded":
            return Outcome(True, "optimization_ok", {"run": run_id, "status": status,
                                                     "count": details["recommendations"]}, tenant_url=url, details=details)
        if status == "fallback":
            details["fallback_reason"] = row["fallback_reason"]
            return Outcome(True, "optimization_fallback", {"run": run_id, "reason": row["fallback_reason"]},
                           tenant_url=url, details=details)
        return Outcome(False, "optimization_failed", {"run": run_id, "reason": (row or {}).get("error") or "—"},
                       tenant_url=url, details=details)


def _hms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


# ---------------------------------------------------------------------------- starting a report

async def start_report(db: Database, options: PocOptions, *, origin: str, requested_by: UUID | None,
                       requested_by_name: str) -> int:
    rows = await store.PocStore(db).execute(store.INSERT_POC_REPORT, {
        "origin": origin, "slug": options.tenant_slug, "requested_by": requested_by,
        "requested_by_name": requested_by_name[:200] or "platform owner", "budget_s": options.budget_s,
        "steps": _jsonb(new_steps())})
    return rows[0]["id"]


async def run_report(db: Database, settings: Settings, box: SecretBox, options: PocOptions, report_id: int, *,
                     actor_name: str, on_step: Callable[[dict[str, Any]], Any] | None = None,
                     from_queue: bool = False, last_attempt: bool = True) -> dict[str, Any]:
    """Run the steps of an existing report; a crash marks the report failed.

    Called inline (``optria poc``) it never raises but for a cancellation. Called by the job queue
    (``from_queue``), a report that is no longer running (finished, or past its deadline) is left
    as it is, one an earlier attempt left running starts over from its first step, and an
    unexpected error raises while retries remain (the report stays running for the next attempt).
    """
    if from_queue:
        report = await store.PocStore(db).one(store.POC_REPORT, {"id": report_id})
        if report is None or report["status"] != "running":
            return report or {"id": report_id, "status": "failed", "steps": []}
        if any(s["status"] != "pending" for s in report["steps"]):
            log.warning("poc.report_resumed", extra={"report_id": report_id})
    runner = PocRunner(db, settings, box, options, report_id, actor_name=actor_name, on_step=on_step)
    try:
        return await runner.run()
    except Exception as exc:
        if from_queue and not last_attempt:
            log.warning("poc.report_retry", extra={"report_id": report_id, "error": type(exc).__name__})
            raise
        log.exception("poc.crashed", extra={"report_id": report_id})
        await store.PocStore(db).execute(store.FINISH_POC_REPORT, {
            "id": report_id, "steps": _jsonb(runner.steps), "status": "failed",
            "summary": text("error", {"error": type(exc).__name__})})
        return {"id": report_id, "status": "failed", "steps": runner.steps}
