"""Proof-of-concept pages: start a run, watch it live, read past reports.

- ``GET  /platform/poc`` the "Run proof of concept" button and the report history (``?page=``)
- ``POST /platform/poc`` start one as a job of the job queue (any web replica runs it) → its report page
- ``GET  /platform/poc/{report_id}`` the report: every step with status, time, message and evidence;
  while it runs, the page polls the JSON below and updates itself
- ``GET  /api/platform/poc/{report_id}`` the report as JSON (status, steps), for that polling and scripts

The same runner backs ``optria poc`` (inline there). A report whose process stopped is run again
from its first step by the queue; one still "running" past its deadline is shown failed.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.identity.users import Page, page_bounds
from optria.platform import poc, store
from optria.web import flash
from optria.web.errors import ApiError
from optria.web.i18n import gettext as translate  # dynamic msgids: not a literal for the extractor
from optria.web.templating import render

GUARD = [requires(Permission.PLATFORM_CONSOLE)]
M_STARTED = "Proof of concept #%(id)s started."
M_ALREADY = "A proof of concept is already running; its report is shown."
M_SLUG = "Choose a demo tenant."
MESSAGES = (M_STARTED, M_ALREADY, M_SLUG)


class PocForm(msgspec.Struct):
    tenant_slug: str = ""


class PocStep(msgspec.Struct):
    key: str
    title: str
    status: str
    status_text: str
    title_text: str
    message: str
    message_text: str
    duration_ms: int | None
    evidence_url: str | None
    tenant_url: str | None
    details: dict[str, Any]


class PocReport(msgspec.Struct):
    id: int
    status: str
    status_text: str
    demo_tenant_slug: str | None
    requested_by_name: str
    origin: str
    started_at: Any
    finished_at: Any
    duration_ms: int | None
    summary: str
    steps: list[PocStep]


def _tr(msgid: str | None, params: dict[str, Any] | None, fallback: str) -> str:
    if not msgid:
        return fallback
    params = dict(params or {})
    for name in ("step", "reason"):                   # a step title or a fallback reason: English msgids themselves
        if isinstance(params.get(name), str):
            params[name] = translate(params[name])
    try:
        return translate(msgid, **params)
    except (KeyError, TypeError, ValueError):
        return fallback


def present(row: dict[str, Any]) -> PocReport:
    """The stored report with its texts in the reader's language (a dead 'running' one reads as failed)."""
    steps = []
    for s in row["steps"] or []:
        status = s.get("status", "pending")
        if row["status"] == "failed" and row.get("overdue") and status in ("pending", "running"):
            status = "failed"
        steps.append(PocStep(key=s["key"], title=s["title"], status=status,
                             status_text=translate(poc.STATUS_LABELS.get(status, status)),
                             title_text=translate(s["title"]), message=s.get("message") or "",
                             message_text=_tr(s.get("msg"), s.get("params"), s.get("message") or ""),
                             duration_ms=s.get("duration_ms"), evidence_url=s.get("evidence_url"),
                             tenant_url=s.get("tenant_url"), details=s.get("details") or {}))
    return PocReport(id=row["id"], status=row["status"], status_text=translate(poc.REPORT_LABELS[row["status"]]),
                     demo_tenant_slug=row["demo_tenant_slug"], requested_by_name=row["requested_by_name"],
                     origin=row["origin"], started_at=row["started_at"], finished_at=row["finished_at"],
                     duration_ms=row["duration_ms"], summary=summary_text(row["status"], steps, row["duration_ms"]),
                     steps=steps)


def summary_text(status: str, steps: list[PocStep], duration_ms: int | None) -> str:
    """The report's one-line outcome, from its steps (so it reads in the reader's language)."""
    if status == "running":
        return ""
    failed = sum(1 for s in steps if s.status != "passed")
    params = {"failed": failed, "count": len(steps), "seconds": f"{(duration_ms or 0) / 1000:.1f}"}
    return translate(poc.M["summary_failed" if failed or status == "failed" else "summary_passed"], **params)


async def _report(request: Request, report_id: int) -> dict[str, Any]:
    row = await store.PocStore(request.app.state.db).one(store.POC_REPORT, {"id": report_id})
    if row is None:
        raise ApiError(404, "not_found", "No such proof-of-concept report.")
    return row


@get("/platform/poc", guards=GUARD, name="platform_poc")
async def platform_poc(request: Request, page: FromQuery[int] = 1) -> Response:
    db = request.app.state.db
    page, limit, offset = page_bounds(page, 25)
    rows, total = await store.PocStore(db).reports(limit=limit, offset=offset)
    demo = [t for t in await store.ConsoleStore(db).tenants(limit=200) if t["is_demo"] and t["is_active"]]
    running = await store.PocStore(db).one(store.POC_RUNNING, {})
    note, _ = flash.pop(request)
    return render(request, "platform/poc.html", result=Page(rows, total, page, limit), demo_tenants=demo,
                  running=running, flash=note, steps=poc.STEPS, report_labels=poc.REPORT_LABELS,
                  page_link=lambda n: f"/platform/poc?page={n}",
                  breadcrumbs=[("Platform overview", "/platform"), ("Proof of concept", "/platform/poc")])


@post("/platform/poc", guards=GUARD, name="platform_poc_start")
async def platform_poc_start(request: Request,
                             data: Annotated[PocForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    db, app = request.app.state.db, request.app
    slug = data.tenant_slug.strip().lower()[:63]
    if not slug:
        raise ApiError(422, "invalid_tenant", M_SLUG)
    running = await store.PocStore(db).one(store.POC_RUNNING, {})
    if running is not None:
        flash.push(request, "warning", M_ALREADY)
        return Redirect(f"/platform/poc/{running['id']}", status_code=303)
    user = request.scope["user"]
    options = poc.PocOptions(tenant_slug=slug)
    report_id = await poc.start_report(db, options, origin="web", requested_by=user.id, requested_by_name=user.username)
    await app.state.job_queue.defer_poc_report(report_id, options, actor_name=user.username)
    flash.push(request, "success", M_STARTED, id=report_id)
    return Redirect(f"/platform/poc/{report_id}", status_code=303)


@get("/platform/poc/{report_id:int}", guards=GUARD, name="platform_poc_report")
async def platform_poc_report(request: Request, report_id: FromPath[int]) -> Response:
    report = present(await _report(request, report_id))
    note, _ = flash.pop(request)
    return render(request, "platform/poc_report.html", report=report, flash=note,
                  breadcrumbs=[("Platform overview", "/platform"), ("Proof of concept", "/platform/poc"),
                               (f"#{report_id}", None)])


@get("/api/platform/poc/{report_id:int}", guards=GUARD, name="api_platform_poc_report")
async def api_platform_poc_report(request: Request, report_id: FromPath[int]) -> PocReport:
    return present(await _report(request, report_id))


ROUTES = [platform_poc, platform_poc_start, platform_poc_report, api_platform_poc_report]
