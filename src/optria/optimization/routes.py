"""Optimization pages: current opportunities per asset, run history, run detail, and the Run buttons.

- ``GET  /optimization`` cards of current opportunities per unit/asset, the Run form, run history
  (``?status=&engine=&q=&page=``; ``?unit_id=`` narrows the cards)
- ``POST /optimization/runs`` start a run (RUN_OPTIMIZATION) → the run's page
- ``GET  /optimization/runs/{run_id}`` status, recommendations and the data they were based on
- ``POST /integrations/{integration_id}/ai-run`` the Data Sources card's **AI Run**: an AI run over
  the assets mapped to that integration's signals → the run's page

Runs are jobs of the PostgreSQL job queue (``app.state.job_queue``, optria.shell.job_queue): any
web replica executes them, and they outlive the one that started them; pages read their state
from the database. With OPTIMIZATION_ENGINE_ENABLED=false the pages say so and the buttons
are disabled with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect

from optria.assets.models import LABELS
from optria.identity.guards import requires
from optria.identity.rbac import Permission, has_permission
from optria.identity.users import Page, filter_query, page_bounds
from optria.optimization import ai, models, runs, store
from optria.optimization.presenting import asset_cards, group_by_unit, present
from optria.web import flash
from optria.web.errors import ApiError
from optria.web.i18n import gettext as translate  # dynamic msgids: not a literal for the extractor
from optria.twin.cards import ROLE_LABELS
from optria.web.templating import render

VIEW = [requires(Permission.VIEW_OPTIMIZATION)]
RUN = [requires(Permission.RUN_OPTIMIZATION)]
M_RUN_STARTED = "Optimization run #%(id)s started."
M_VIEW_ONLY = "Your role can view optimization results but not start runs."
MESSAGES = (M_RUN_STARTED, M_VIEW_ONLY)


# Where a signal's baseline came from (SignalSummary.baseline_source; English msgids).
BASELINE_LABELS = {"1h": "Hourly means of the previous day", "1m": "Minute means of the last hours",
                   "1m-short": "The minutes just before (short history)"}


def engine_state(request: Request) -> dict[str, Any]:
    """What the Run buttons may do, and why not."""
    settings = request.app.state.settings
    user = request.scope["user"]
    reason = None
    if not settings.optimization_engine_enabled:
        reason = runs.M_DISABLED
    elif not has_permission(user.role, Permission.RUN_OPTIMIZATION):
        reason = M_VIEW_ONLY
    return {"enabled": settings.optimization_engine_enabled, "can_run": reason is None, "reason": reason,
            "has_ai_key": ai.has_key(settings), "model": settings.openai_model}


def run_request(request: Request, scope: str, scope_id: int | None, engine: str, origin: str) -> runs.RunRequest:
    user = request.scope["user"]
    return runs.RunRequest(tenant_id=user.tenant_id, scope=scope, scope_id=scope_id, engine=engine,
                           requested_by=user.id, requested_by_name=user.username, origin=origin)


async def start(request: Request, req: runs.RunRequest) -> int:
    """Create a run and queue its job; RunRefused becomes a 4xx ApiError with the reason."""
    app = request.app
    try:
        run_id = await runs.create_run(app.state.db, app.state.settings, req)
    except runs.RunRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    await app.state.job_queue.defer_optimization_run(req.tenant_id, run_id)
    return run_id


def parse_target(target: str) -> tuple[str, int | None]:
    """"tenant", "unit:12", "asset:7" → (scope, id); anything else is a 422."""
    if target == "tenant":
        return "tenant", None
    kind, _, raw = target.partition(":")
    if kind in ("unit", "asset") and raw.isdigit() and 0 < int(raw) < 2**63:
        return kind, int(raw)
    raise ApiError(422, "invalid_scope", runs.M_NO_SCOPE)


@get("/optimization", guards=VIEW, name="optimization_page")
async def optimization_page(request: Request, unit_id: FromQuery[int | None] = None, status: FromQuery[str] = "",
                            engine: FromQuery[str] = "", q: FromQuery[str] = "", page: FromQuery[int] = 1) -> Response:
    user = request.scope["user"]
    tenant_id = user.tenant_id
    filters = {"status": status if status in store.RUN_STATUSES else "",
               "engine": engine if engine in store.ENGINES else "", "q": q.strip()[:100]}
    page, limit, _ = page_bounds(page, store.PAGE_SIZE)
    async with request.app.state.db.tenant(tenant_id) as conn:
        opportunities = await store.current_opportunities(conn, tenant_id, unit_id=unit_id)
        rows, total = await store.list_runs(conn, tenant_id, filters, page=page, page_size=limit)
        units = await store.unit_options(conn, tenant_id)
        assets = await store.asset_options(conn, tenant_id)
    note, _ = flash.pop(request)
    cards = asset_cards(opportunities)
    query = {**filters, **({"unit_id": unit_id} if unit_id else {})}
    return render(request, "optimization/index.html", groups=group_by_unit(cards), cards=cards, units=units,
                  assets=assets, unit_id=unit_id, result=Page(rows, total, page, limit), filters=filters,
                  filtered=any(filters.values()), engine=engine_state(request), labels=LABELS, flash=note,
                  status_labels=models.STATUS_LABELS, engine_labels=models.ENGINE_LABELS,
                  scope_labels=models.SCOPE_LABELS, kind_labels=models.KIND_LABELS,
                  page_link=lambda n: "/optimization?" + filter_query(**query, page=n) + "#history",
                  breadcrumbs=[("Optimization", "/optimization")])


@post("/optimization/runs", guards=RUN, name="optimization_run_start")
async def optimization_run_start(request: Request,
                                 data: Annotated[models.RunForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    scope, scope_id = parse_target(data.target.strip())
    engine = data.engine if data.engine in store.ENGINES else "ai"
    try:
        run_id = await start(request, run_request(request, scope, scope_id, engine, "web"))
    except ApiError as exc:
        if exc.status_code == 404:
            raise
        flash.push(request, "error", str(exc.detail))
        return Redirect("/optimization", status_code=303)
    flash.push(request, "success", M_RUN_STARTED, id=run_id)
    return Redirect(f"/optimization/runs/{run_id}", status_code=303)


@post("/integrations/{integration_id:int}/ai-run", guards=RUN, name="integration_ai_run")
async def integration_ai_run(request: Request, integration_id: FromPath[int]) -> Response:
    """The Data Sources card's AI Run: an AI run over the assets mapped to this integration."""
    user = request.scope["user"]
    async with request.app.state.db.tenant(user.tenant_id) as conn:
        if await store.integration(conn, user.tenant_id, integration_id) is None:
            raise ApiError(404, "not_found", "No such data source in your organization.")
    try:
        run_id = await start(request, run_request(request, "integration", integration_id, "ai", "integration"))
    except ApiError as exc:
        if exc.status_code == 404:
            raise
        flash.push(request, "error", str(exc.detail))
        return Redirect("/integrations", status_code=303)
    flash.push(request, "success", M_RUN_STARTED, id=run_id)
    return Redirect(f"/optimization/runs/{run_id}", status_code=303)


def fallback_text(row: dict[str, Any]) -> str | None:
    """Why an AI run fell back, in the reader's language (the stored English text as a last resort)."""
    fallback = (row.get("inputs") or {}).get("fallback") or {}
    message = ai.REASON_MESSAGES.get(fallback.get("code") or "")
    if message is None:
        return row.get("fallback_reason")
    try:
        return translate(message, **(fallback.get("params") or {}))
    except (KeyError, TypeError, ValueError):
        return row.get("fallback_reason")


@get("/optimization/runs/{run_id:int}", guards=VIEW, name="optimization_run_page")
async def optimization_run_page(request: Request, run_id: FromPath[int]) -> Response:
    user = request.scope["user"]
    async with request.app.state.db.tenant(user.tenant_id) as conn:
        row = await store.run(conn, user.tenant_id, run_id)
        if row is None:
            raise ApiError(404, "not_found", "No such optimization run in your organization.")
        opportunities = await store.run_opportunities(conn, user.tenant_id, run_id)
    note, _ = flash.pop(request)
    recommendations = [present(r) for r in row["recommendations"] or []]
    by_asset: dict[Any, list[dict[str, Any]]] = {}
    for r in recommendations:
        by_asset.setdefault(r.get("asset_code") or "—", []).append(r)
    return render(request, "optimization/run.html", run=row, recommendations=recommendations, by_asset=by_asset,
                  fallback_text=fallback_text(row),
                  opportunities=opportunities, inputs=row["inputs"] or {}, engine=engine_state(request),
                  labels=LABELS, flash=note, status_labels=models.STATUS_LABELS, engine_labels=models.ENGINE_LABELS,
                  scope_labels=models.SCOPE_LABELS, kind_labels=models.KIND_LABELS,
                  origin_labels=models.ORIGIN_LABELS, live=row["status"] in ("queued", "running"),
                  role_label_of=lambda role: ROLE_LABELS.get(role, "Other signal"), baseline_labels=BASELINE_LABELS,
                  breadcrumbs=[("Optimization", "/optimization"), (f"#{run_id}", None)])


ROUTES = [optimization_page, optimization_run_start, integration_ai_run, optimization_run_page]
