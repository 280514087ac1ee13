"""JSON API of optimization runs (msgspec in and out, errors as {"error": {"code", "message"}}).

- ``GET  /api/optimization/runs`` ?status=&engine=&q=&page= → RunList
- ``POST /api/optimization/runs`` {scope, scope_id?, engine} → 202 RunStarted (the run executes in the background)
- ``GET  /api/optimization/runs/{run_id}`` → RunDetail (poll it for the status)
- ``GET  /api/optimization/opportunities`` ?asset_id=&unit_id= → OpportunityList (the current ones)
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from optria.identity.users import page_bounds
from optria.optimization import models, store
from optria.optimization.routes import RUN, VIEW, run_request, start
from optria.web.errors import ApiError


@get("/api/optimization/runs", guards=VIEW, name="api_optimization_runs")
async def api_runs(request: Request, status: FromQuery[str] = "", engine: FromQuery[str] = "", q: FromQuery[str] = "",
                   page: FromQuery[int] = 1) -> models.RunList:
    if status and status not in store.RUN_STATUSES:
        raise ApiError(400, "bad_status", f"status must be one of {', '.join(store.RUN_STATUSES)}")
    if engine and engine not in store.ENGINES:
        raise ApiError(400, "bad_engine", f"engine must be one of {', '.join(store.ENGINES)}")
    user = request.scope["user"]
    page, limit, _ = page_bounds(page, store.PAGE_SIZE)
    async with request.app.state.db.tenant(user.tenant_id) as conn:
        rows, total = await store.list_runs(conn, user.tenant_id, {"status": status, "engine": engine, "q": q[:100]},
                                            page=page, page_size=limit)
    return models.RunList(items=[models.summary_of(r) for r in rows], total=total, page=page, page_size=limit)


@post("/api/optimization/runs", guards=RUN, name="api_optimization_run_start", status_code=202)
async def api_run_start(request: Request, data: JSONBody[models.RunCreate]) -> Response:
    if data.engine not in store.ENGINES:
        raise ApiError(422, "bad_engine", f"engine must be one of {', '.join(store.ENGINES)}")
    if data.scope not in store.SCOPES:
        raise ApiError(422, "bad_scope", f"scope must be one of {', '.join(store.SCOPES)}")
    if data.scope == "tenant" and data.scope_id is not None:
        raise ApiError(422, "bad_scope_id", "scope_id must be left out when scope is tenant (the whole organization).")
    if data.scope != "tenant" and (data.scope_id is None or not 0 < data.scope_id < 2**63):
        raise ApiError(422, "bad_scope_id", f"scope_id must be the id (a positive integer) of the {data.scope} "
                       "to optimize.")
    run_id = await start(request, run_request(request, data.scope, data.scope_id, data.engine, "api"))
    body = models.RunStarted(id=run_id, status="queued", url=f"/optimization/runs/{run_id}")
    return Response(content=body, status_code=202, headers={"Location": f"/api/optimization/runs/{run_id}"})


@get("/api/optimization/runs/{run_id:int}", guards=VIEW, name="api_optimization_run")
async def api_run(request: Request, run_id: FromPath[int]) -> models.RunDetail:
    user = request.scope["user"]
    async with request.app.state.db.tenant(user.tenant_id) as conn:
        row = await store.run(conn, user.tenant_id, run_id)
    if row is None:
        raise ApiError(404, "not_found", "No such optimization run.")
    return models.detail_of(row)


@get("/api/optimization/opportunities", guards=VIEW, name="api_optimization_opportunities")
async def api_opportunities(request: Request, asset_id: FromQuery[int | None] = None,
                            unit_id: FromQuery[int | None] = None) -> models.OpportunityList:
    user = request.scope["user"]
    async with request.app.state.db.tenant(user.tenant_id) as conn:
        rows = await store.current_opportunities(conn, user.tenant_id, asset_id=asset_id, unit_id=unit_id)
    return models.OpportunityList(items=[models.Opportunity(**{f: r[f] for f in models.Opportunity.__struct_fields__})
                                         for r in rows])


ROUTES = [api_runs, api_run_start, api_run, api_opportunities]
