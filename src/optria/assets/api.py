"""JSON API of the assets area under /api/: sites, units, assets, alerts and work orders.

msgspec Structs in and out; errors as ``{"error": {"code", "message"}}``. An id of another
tenant is answered exactly like an id that does not exist (404 in the path, 422 as a
referenced field), and list filters that do not apply answer 400 ``invalid_filter``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from litestar import Request, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from optria.assets import catalog, filters, lifecycle, store
from optria.assets.lifecycle import Actor
from optria.assets.models import (
    AlertIn,
    AlertList,
    AlertOut,
    AssetIn,
    AssetOut,
    AssetPage,
    AssetPatch,
    HealthOut,
    NoteIn,
    Ref,
    SiteIn,
    SiteList,
    SiteOut,
    UnitIn,
    UnitList,
    UnitOut,
    WorkOrderIn,
    WorkOrderList,
    WorkOrderOut,
    WorkOrderPatch,
)
from optria.assets.store import Conn
from optria.assets.validation import (
    Conflict,
    InputError,
    NotFound,
    alert_values,
    api_error,
    note_value,
    parse_id,
    work_order_status,
    work_order_values,
)
from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.web.errors import ApiError
from optria.web.list_filters import Parsed
from optria.web.request_context import check_id, client_addr, db_of, tenant_of

MAX_PAGE_SIZE = 100
NOT_FOUND = {
    "asset": "No asset with this id in your organization.",
    "alert": "No alert with this id in your organization.",
    "work_order": "No work order with this id in your organization.",
    "site": "No site with this id in your organization.",
    "unit": "No unit with this id in your organization.",
}


@asynccontextmanager
async def tenant_tx(request: Request) -> AsyncIterator[tuple[Conn, UUID]]:
    """The caller's tenant transaction, with the area's errors turned into API errors."""
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            yield conn, tenant_id
    except (NotFound, InputError, Conflict) as exc:
        raise api_error(exc, NOT_FOUND) from None


def _id(value: int, kind: str) -> int:
    try:
        return check_id(value)
    except NotFoundException:
        raise NotFound(kind) from None


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw in (None, ""):
        return 25
    size = parse_id(raw)
    if size is None or size > MAX_PAGE_SIZE:
        raise ApiError(400, "invalid_filter", f"page_size must be a number from 1 to {MAX_PAGE_SIZE}.")
    return size


def _refuse_notices(notices: list[str]) -> None:
    if notices:
        raise ApiError(400, "invalid_filter", " ".join(notices))


# ----------------------------------------------------------------------------- row → Struct


def _ref(row: dict[str, Any], prefix: str) -> Ref | None:
    if row.get(prefix + "id") is None:
        return None
    return Ref(id=row[prefix + "id"], code=row[prefix + "code"], name=row[prefix + "name"], name_ar=row[prefix + "name_ar"])


def asset_out(row: dict[str, Any]) -> AssetOut:
    health = HealthOut(status=row["status"], stale=bool(row["stale"]), time=row["health_time"],
                       health_score=row["health_score"], failure_probability=row["failure_probability"],
                       reported_status=row["reported_status"], source=row["health_source"])
    return AssetOut(
        id=row["id"], code=row["code"], name=row["name"], name_ar=row["name_ar"], asset_type=row["asset_type"],
        criticality=row["criticality"], description=row["description"], expected_interval_s=row["expected_interval_s"],
        site=_ref(row, "site_"), unit=_ref(row, "unit_"), health=health,  # type: ignore[arg-type]
        active_alerts=int(row["active_alerts"]), active_work_orders=int(row["active_work_orders"]),
        created_at=row["created_at"], updated_at=row["updated_at"], description_ar=row.get("description_ar"))


def site_out(row: dict[str, Any]) -> SiteOut:
    return SiteOut(id=row["id"], code=row["code"], name=row["name"], name_ar=row["name_ar"],
                   description=row["description"], timezone=row["timezone"], unit_count=int(row["unit_count"]),
                   asset_count=int(row["asset_count"]), created_at=row["created_at"],
                   description_ar=row.get("description_ar"))


def unit_out(row: dict[str, Any]) -> UnitOut:
    return UnitOut(id=row["id"], site_id=row["site_id"], code=row["code"], name=row["name"], name_ar=row["name_ar"],
                   asset_count=int(row["asset_count"]), created_at=row["created_at"])


def alert_out(row: dict[str, Any]) -> AlertOut:
    return AlertOut(**{f: row[f] for f in AlertOut.__struct_fields__})


def work_order_out(row: dict[str, Any]) -> WorkOrderOut:
    return WorkOrderOut(**{f: row[f] for f in WorkOrderOut.__struct_fields__})


async def _asset(conn: Conn, tenant_id: UUID, asset_id: int) -> AssetOut:
    row = await store.get_asset(conn, tenant_id, asset_id)
    if row is None:
        raise NotFound("asset")
    return asset_out(row)


async def _site(conn: Conn, tenant_id: UUID, site_id: int) -> SiteOut:
    return next(site_out(s) for s in await store.list_sites(conn, tenant_id) if s["id"] == site_id)


# ----------------------------------------------------------------------------- assets


@get("/api/assets", guards=[requires(Permission.VIEW_ASSETS)], name="api_assets_list")
async def api_assets_list(request: Request) -> AssetPage:
    page_size = _page_size(request)
    async with tenant_tx(request) as (conn, tenant_id):
        sites = await store.list_sites(conn, tenant_id)
        units = await store.list_units(conn, tenant_id)
        f, notices = filters.asset_filter(request.query_params, sites, units)
        _refuse_notices(notices)
        rows, total = await store.list_assets(conn, tenant_id, site_id=f.site_id, unit_id=f.unit_id, status=f.status,
                                              q=f.q or None, page=f.page, page_size=page_size)
    return AssetPage(items=[asset_out(r) for r in rows], total=total, page=f.page, page_size=page_size)


@post("/api/assets", guards=[requires(Permission.EDIT_ASSETS)], name="api_asset_create")
async def api_asset_create(request: Request, data: JSONBody[AssetIn]) -> AssetOut:
    async with tenant_tx(request) as (conn, tenant_id):
        raw = {f: getattr(data, f) for f in data.__struct_fields__}
        asset_id = await catalog.create_asset(conn, tenant_id, raw, request.scope["user"], client_addr(request))
        return await _asset(conn, tenant_id, asset_id)


@get("/api/assets/{asset_id:int}", guards=[requires(Permission.VIEW_ASSETS)], name="api_asset_get")
async def api_asset_get(request: Request, asset_id: FromPath[int]) -> AssetOut:
    async with tenant_tx(request) as (conn, tenant_id):
        return await _asset(conn, tenant_id, _id(asset_id, "asset"))


@patch("/api/assets/{asset_id:int}", guards=[requires(Permission.EDIT_ASSETS)], name="api_asset_update")
async def api_asset_update(request: Request, asset_id: FromPath[int], data: JSONBody[AssetPatch]) -> AssetOut:
    async with tenant_tx(request) as (conn, tenant_id):
        _id(asset_id, "asset")
        await catalog.update_asset(conn, tenant_id, asset_id, data.provided(), request.scope["user"],
                                   client_addr(request), partial=True)
        return await _asset(conn, tenant_id, asset_id)


# ----------------------------------------------------------------------------- sites and units


@get("/api/sites", guards=[requires(Permission.VIEW_ASSETS)], name="api_sites_list")
async def api_sites_list(request: Request) -> SiteList:
    async with tenant_tx(request) as (conn, tenant_id):
        return SiteList(items=[site_out(s) for s in await store.list_sites(conn, tenant_id)])


@post("/api/sites", guards=[requires(Permission.EDIT_ASSETS)], name="api_site_create")
async def api_site_create(request: Request, data: JSONBody[SiteIn]) -> SiteOut:
    async with tenant_tx(request) as (conn, tenant_id):
        raw = {f: getattr(data, f) for f in data.__struct_fields__}
        site_id = await catalog.create_site(conn, tenant_id, raw, request.scope["user"], client_addr(request))
        return await _site(conn, tenant_id, site_id)


@get("/api/units", guards=[requires(Permission.VIEW_ASSETS)], name="api_units_list")
async def api_units_list(request: Request) -> UnitList:
    async with tenant_tx(request) as (conn, tenant_id):
        parsed = Parsed(request.query_params)
        sites = await store.list_sites(conn, tenant_id)
        site_id = parsed.known_id("site_id", {s["id"] for s in sites}, filters.SITE_NOT_FOUND)
        _refuse_notices(parsed.notices)
        return UnitList(items=[unit_out(u) for u in await store.list_units(conn, tenant_id, site_id)])


@post("/api/units", guards=[requires(Permission.EDIT_ASSETS)], name="api_unit_create")
async def api_unit_create(request: Request, data: JSONBody[UnitIn]) -> UnitOut:
    async with tenant_tx(request) as (conn, tenant_id):
        raw = {f: getattr(data, f) for f in data.__struct_fields__}
        unit_id = await catalog.create_unit(conn, tenant_id, raw, request.scope["user"], client_addr(request))
        units = await store.list_units(conn, tenant_id, raw["site_id"])
        return next(unit_out(u) for u in units if u["id"] == unit_id)


# ----------------------------------------------------------------------------- alerts


@get("/api/assets/{asset_id:int}/alerts", guards=[requires(Permission.VIEW_ASSETS)], name="api_asset_alerts")
async def api_asset_alerts(request: Request, asset_id: FromPath[int]) -> AlertList:
    page_size = _page_size(request)
    async with tenant_tx(request) as (conn, tenant_id):
        if await store.asset_exists(conn, tenant_id, _id(asset_id, "asset")) is None:
            raise NotFound("asset")
        f, notices = await filters.alert_filter(conn, tenant_id, request.query_params,
                                                await store.list_sites(conn, tenant_id))
        _refuse_notices(notices)
        rows, total = await store.list_alerts(conn, tenant_id, status=f.status, severity=f.severity, asset_id=asset_id,
                                              page=f.page, page_size=page_size)
    return AlertList(items=[alert_out(r) for r in rows], total=total, page=f.page, page_size=page_size)


@post("/api/assets/{asset_id:int}/alerts", guards=[requires(Permission.RAISE_ALERTS)], name="api_asset_raise_alert")
async def api_asset_raise_alert(request: Request, asset_id: FromPath[int], data: JSONBody[AlertIn]) -> AlertOut:
    async with tenant_tx(request) as (conn, tenant_id):
        values = alert_values({f: getattr(data, f) for f in data.__struct_fields__})
        alert_id = await lifecycle.raise_alert(conn, tenant_id, _id(asset_id, "asset"), values,
                                               Actor.of(request.scope["user"]))
        if alert_id is None:
            raise Conflict("duplicate_alert", "A live alert with this source and source_ref already exists for this asset.",
                           field="source_ref")
        return alert_out(await store.get_alert(conn, tenant_id, alert_id))  # type: ignore[arg-type]


async def _alert_transition(request: Request, alert_id: int, data: NoteIn | None, to: str) -> AlertOut:
    async with tenant_tx(request) as (conn, tenant_id):
        note = note_value(data.note if data else "")
        actor = Actor.of(request.scope["user"])
        move = lifecycle.acknowledge_alert if to == "acknowledged" else lifecycle.clear_alert
        await move(conn, tenant_id, _id(alert_id, "alert"), actor, note)
        return alert_out(await store.get_alert(conn, tenant_id, alert_id))  # type: ignore[arg-type]


@post("/api/alerts/{alert_id:int}/acknowledge", guards=[requires(Permission.RAISE_ALERTS)], status_code=200,
      name="api_alert_acknowledge")
async def api_alert_acknowledge(request: Request, alert_id: FromPath[int],
                                data: JSONBody[NoteIn | None] = None) -> AlertOut:
    return await _alert_transition(request, alert_id, data, "acknowledged")


@post("/api/alerts/{alert_id:int}/clear", guards=[requires(Permission.RAISE_ALERTS)], status_code=200,
      name="api_alert_clear")
async def api_alert_clear(request: Request, alert_id: FromPath[int], data: JSONBody[NoteIn | None] = None) -> AlertOut:
    return await _alert_transition(request, alert_id, data, "cleared")


# ----------------------------------------------------------------------------- work orders


@get("/api/assets/{asset_id:int}/work-orders", guards=[requires(Permission.VIEW_ASSETS)], name="api_asset_work_orders")
async def api_asset_work_orders(request: Request, asset_id: FromPath[int]) -> WorkOrderList:
    page_size = _page_size(request)
    async with tenant_tx(request) as (conn, tenant_id):
        if await store.asset_exists(conn, tenant_id, _id(asset_id, "asset")) is None:
            raise NotFound("asset")
        f, notices = await filters.work_order_filter(conn, tenant_id, request.query_params,
                                                     await store.list_sites(conn, tenant_id))
        _refuse_notices(notices)
        rows, total = await store.list_work_orders(conn, tenant_id, status=f.status, priority=f.priority,
                                                   asset_id=asset_id, page=f.page, page_size=page_size)
    return WorkOrderList(items=[work_order_out(r) for r in rows], total=total, page=f.page, page_size=page_size)


@post("/api/assets/{asset_id:int}/work-orders", guards=[requires(Permission.RAISE_ALERTS)],
      name="api_asset_open_work_order")
async def api_asset_open_work_order(request: Request, asset_id: FromPath[int], data: JSONBody[WorkOrderIn]) -> WorkOrderOut:
    async with tenant_tx(request) as (conn, tenant_id):
        values = work_order_values({f: getattr(data, f) for f in data.__struct_fields__})
        work_order_id = await lifecycle.open_work_order(conn, tenant_id, _id(asset_id, "asset"), values,
                                                        Actor.of(request.scope["user"]))
        return work_order_out(await store.get_work_order(conn, tenant_id, work_order_id))  # type: ignore[arg-type]


@patch("/api/work-orders/{work_order_id:int}", guards=[requires(Permission.EDIT_ASSETS)], name="api_work_order_update")
async def api_work_order_update(request: Request, work_order_id: FromPath[int],
                                data: JSONBody[WorkOrderPatch]) -> WorkOrderOut:
    async with tenant_tx(request) as (conn, tenant_id):
        status = work_order_status(data.status)
        note = note_value(data.note)
        await lifecycle.set_work_order_status(conn, tenant_id, _id(work_order_id, "work_order"), status,
                                              Actor.of(request.scope["user"]), note)
        return work_order_out(await store.get_work_order(conn, tenant_id, work_order_id))  # type: ignore[arg-type]


ROUTES = [
    api_assets_list, api_asset_create, api_asset_get, api_asset_update, api_sites_list, api_site_create,
    api_units_list, api_unit_create, api_asset_alerts, api_asset_raise_alert, api_alert_acknowledge, api_alert_clear,
    api_asset_work_orders, api_asset_open_work_order, api_work_order_update,
]
