"""Pages of the assets area: assets list and detail, create/edit, sites and units, alerts and work orders.

Handlers are thin: parse, call the catalog/lifecycle service inside one tenant transaction,
then redirect with a success message (a fixed one, shown once on the next page through the session
flash) or re-render the form with field messages (422) or a conflict (409).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect

from optria.assets import catalog, filters, lifecycle, store
from optria.assets.lifecycle import Actor
from optria.assets.models import (
    ALERT_STATUS_FILTERS,
    ASSET_TYPES,
    CRITICALITIES,
    HEALTH_STATUSES,
    LABELS,
    SEVERITIES,
    WO_PRIORITIES,
    WO_STATUS_FILTERS,
    AlertForm,
    AssetForm,
    SiteForm,
    TransitionForm,
    UnitForm,
    WorkOrderForm,
    form_values,
)
from optria.assets.validation import (
    N_,
    Conflict,
    InputError,
    NotFound,
    alert_values,
    form_problem,
    note_value,
    work_order_status,
    work_order_values,
)
from optria.assets.web import page_flags
from optria.identity.auth import safe_next
from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import store as integrations_store
from optria.web import flash
from optria.web.i18n import current_lang, gettext, verbatim
from optria.web.formatting import current_zone
from optria.web.list_filters import pager
from optria.web.request_context import check_id, client_addr, db_of, tenant_of
from optria.web.templating import render

PAGE_SIZE = 25
DETAIL_ROWS = 10

FLASH = {
    "asset_created": N_("Asset created."),
    "asset_updated": N_("Asset saved."),
    "site_created": N_("Site added."),
    "site_updated": N_("Site saved."),
    "unit_created": N_("Unit added."),
    "unit_updated": N_("Unit saved."),
    "alert_raised": N_("Alert raised."),
    "alert_acknowledged": N_("Alert acknowledged."),
    "alert_cleared": N_("Alert cleared."),
    "wo_opened": N_("Work order opened."),
    "wo_in_progress": N_("Work order moved to in progress."),
    "wo_closed": N_("Work order closed."),
}


def redirect_done(request: Request, target: str, code: str, anchor: str = "") -> Redirect:
    """Back to ``target`` (at ``anchor``, if given) showing the success message ``FLASH[code]`` there once."""
    flash.push(request, "success", FLASH[code])
    parts = urlsplit(target)
    return Redirect(urlunsplit(("", "", parts.path, parts.query, anchor or parts.fragment)))


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _translate(messages: dict[str, str] | list[str]) -> Any:
    if isinstance(messages, dict):
        return {k: gettext(v) for k, v in messages.items()}
    return [gettext(m) for m in messages]


def _display(row: dict[str, Any], prefix: str = "") -> str:
    """The name to show: Arabic when the UI is Arabic and the row has one."""
    name_ar = row.get(prefix + "name_ar")
    return name_ar if current_lang.get() == "ar" and name_ar else row.get(prefix + "name") or ""


def _common(request: Request) -> dict[str, Any]:
    return {"labels": LABELS, "here": here(request), **page_flags(request)}


# ----------------------------------------------------------------------------- assets list


@get("/assets", guards=[requires(Permission.VIEW_ASSETS)], name="assets_list")
async def assets_list(request: Request) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        sites = await store.list_sites(conn, tenant_id)
        units = await store.list_units(conn, tenant_id)
        f, notices = filters.asset_filter(request.query_params, sites, units)
        rows, total = await store.list_assets(conn, tenant_id, site_id=f.site_id, unit_id=f.unit_id, status=f.status,
                                              q=f.q or None, page=f.page, page_size=PAGE_SIZE)
    return render(request, "assets/list.html", breadcrumbs=[("Assets", "/assets")], flash=flash.pop(request)[0],
                  assets=rows, filter=f, notices=_translate(notices), sites=sites, units=units,
                  statuses=HEALTH_STATUSES, pager=pager(f, total, PAGE_SIZE, "/assets"), **_common(request))


# ----------------------------------------------------------------------------- asset detail


async def _detail(request: Request, asset_id: int, *, status_code: int = 200, **extra: Any) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        asset = await store.get_asset(conn, tenant_id, asset_id)
        if asset is None:
            raise NotFoundException()
        alerts, alert_total = await store.list_alerts(conn, tenant_id, asset_id=asset_id, page_size=DETAIL_ROWS)
        work_orders, wo_total = await store.list_work_orders(conn, tenant_id, asset_id=asset_id, page_size=DETAIL_ROWS)
        signals = await integrations_store.mapped_signals_for_asset(conn, tenant_id, asset_id)
    current_zone.set(asset["site_timezone"] or current_zone.get())   # this page speaks its site's time
    name = _display(asset)
    context = {
        "asset": asset, "asset_name": name, "alerts": alerts, "alert_total": alert_total,
        "work_orders": work_orders, "wo_total": wo_total,
        "live_alerts": [a for a in alerts if a["status"] != "cleared"],
        "signals": signals,  # mapped signals with latest values (optria.integrations.store)
        "severities": SEVERITIES, "priorities": WO_PRIORITIES,
        "alert_form": {"severity": "medium", "title": "", "description": ""}, "alert_errors": {},
        "wo_form": {"title": "", "description": "", "priority": "medium", "alert_id": ""}, "wo_errors": {},
        "error": None, "open_form": None,
    }
    context.update(extra)
    return render(request, "assets/detail.html", status_code=status_code, flash=flash.pop(request)[0],
                  breadcrumbs=[("Assets", "/assets"), (verbatim(name), None)], **context, **_common(request))


@get("/assets/{asset_id:int}", guards=[requires(Permission.VIEW_ASSETS)], name="asset_detail")
async def asset_detail(request: Request, asset_id: FromPath[int]) -> Response:
    return await _detail(request, check_id(asset_id))


# ----------------------------------------------------------------------------- create / edit


async def _asset_form(request: Request, *, asset: dict[str, Any] | None, values: dict[str, Any],
                      errors: dict[str, str], status_code: int = 200) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        sites = await store.list_sites(conn, tenant_id)
        units = await store.list_units(conn, tenant_id)
    if asset is None:
        crumbs = [("Assets", "/assets"), ("Add asset", None)]
    else:
        crumbs = [("Assets", "/assets"), (verbatim(_display(asset)), f"/assets/{asset['id']}"), ("Edit", None)]
    return render(request, "assets/form.html", status_code=status_code, breadcrumbs=crumbs, asset=asset,
                  values=values, errors=_translate(errors), sites=sites, units=units, asset_types=ASSET_TYPES,
                  criticalities=CRITICALITIES, **_common(request))


@get("/assets/new", guards=[requires(Permission.EDIT_ASSETS)], name="asset_new")
async def asset_new(request: Request) -> Response:
    values = form_values(AssetForm())
    site = request.query_params.get("site_id", "")
    values["site_id"] = site if site.isdigit() else ""
    return await _asset_form(request, asset=None, values=values, errors={})


@post("/assets", guards=[requires(Permission.EDIT_ASSETS)], name="asset_create")
async def asset_create(request: Request, data: URLEncodedBody[AssetForm]) -> Response:
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            asset_id = await catalog.create_asset(conn, tenant_id, form_values(data), request.scope["user"],
                                                  client_addr(request))
    except (InputError, Conflict) as exc:
        errors, status = form_problem(exc)
        return await _asset_form(request, asset=None, values=form_values(data), errors=errors, status_code=status)
    return redirect_done(request, f"/assets/{asset_id}", "asset_created")


async def _asset_or_404(request: Request, asset_id: int) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        asset = await store.get_asset(conn, tenant_id, check_id(asset_id))
    if asset is None:
        raise NotFoundException()
    return asset


@get("/assets/{asset_id:int}/edit", guards=[requires(Permission.EDIT_ASSETS)], name="asset_edit")
async def asset_edit(request: Request, asset_id: FromPath[int]) -> Response:
    asset = await _asset_or_404(request, asset_id)
    values = {k: ("" if asset.get(k) is None else str(asset[k])) for k in AssetForm.__struct_fields__}
    return await _asset_form(request, asset=asset, values=values, errors={})


@post("/assets/{asset_id:int}/edit", guards=[requires(Permission.EDIT_ASSETS)], name="asset_update")
async def asset_update(request: Request, asset_id: FromPath[int], data: URLEncodedBody[AssetForm]) -> Response:
    tenant_id = tenant_of(request)
    check_id(asset_id)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await catalog.update_asset(conn, tenant_id, asset_id, form_values(data), request.scope["user"],
                                       client_addr(request))
    except NotFound:
        raise NotFoundException() from None
    except (InputError, Conflict) as exc:
        errors, status = form_problem(exc)
        asset = await _asset_or_404(request, asset_id)
        return await _asset_form(request, asset=asset, values=form_values(data), errors=errors, status_code=status)
    return redirect_done(request, f"/assets/{asset_id}", "asset_updated")


# ----------------------------------------------------------------------------- sites and units


async def _sites_page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        sites = await store.list_sites(conn, tenant_id)
        units = await store.list_units(conn, tenant_id)
    by_site: dict[int, list[dict[str, Any]]] = {}
    for unit in units:
        by_site.setdefault(unit["site_id"], []).append(unit)
    context: dict[str, Any] = {"site_form": form_values(SiteForm(timezone="Asia/Riyadh")), "site_errors": {},
                               "unit_form": form_values(UnitForm()), "unit_errors": {}, "edit_errors": {},
                               "edit_target": None, "error": None}
    context.update(extra)
    return render(request, "assets/sites.html", status_code=status_code, flash=flash.pop(request)[0],
                  breadcrumbs=[("Assets", "/assets"), ("Sites and units", None)], sites=sites,
                  units_by_site=by_site, **context, **_common(request))


@get("/assets/sites", guards=[requires(Permission.VIEW_ASSETS)], name="asset_sites")
async def asset_sites(request: Request) -> Response:
    return await _sites_page(request)


async def _sites_change(request: Request, change, done: str, on_problem: Any, anchor: str = "") -> Response:
    """Run one site/unit change from the sites page: back to it with ``done``, or re-render it with the problem."""
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await change(conn, tenant_id, request.scope["user"], client_addr(request))
    except NotFound:
        raise NotFoundException() from None
    except (InputError, Conflict) as exc:
        errors, status = form_problem(exc)
        return await _sites_page(request, status_code=status, **on_problem(_translate(errors)))
    return redirect_done(request, "/assets/sites", done, anchor)


@post("/assets/sites", guards=[requires(Permission.EDIT_ASSETS)], name="site_create")
async def site_create(request: Request, data: URLEncodedBody[SiteForm]) -> Response:
    values = form_values(data)
    return await _sites_change(
        request, lambda conn, tid, user, addr: catalog.create_site(conn, tid, values, user, addr), "site_created",
        lambda errors: {"site_form": values, "site_errors": errors})


@post("/assets/sites/{site_id:int}/edit", guards=[requires(Permission.EDIT_ASSETS)], name="site_update")
async def site_update(request: Request, site_id: FromPath[int], data: URLEncodedBody[SiteForm]) -> Response:
    check_id(site_id)
    values = form_values(data)
    return await _sites_change(
        request, lambda conn, tid, user, addr: catalog.update_site(conn, tid, site_id, values, user, addr),
        "site_updated", lambda errors: {"edit_target": ("site", site_id), "edit_errors": errors}, f"site-{site_id}")


@post("/assets/units", guards=[requires(Permission.EDIT_ASSETS)], name="unit_create")
async def unit_create(request: Request, data: URLEncodedBody[UnitForm]) -> Response:
    values = form_values(data)
    return await _sites_change(
        request, lambda conn, tid, user, addr: catalog.create_unit(conn, tid, values, user, addr), "unit_created",
        lambda errors: {"unit_form": values, "unit_errors": errors})


@post("/assets/units/{unit_id:int}/edit", guards=[requires(Permission.EDIT_ASSETS)], name="unit_update")
async def unit_update(request: Request, unit_id: FromPath[int], data: URLEncodedBody[UnitForm]) -> Response:
    check_id(unit_id)
    values = form_values(data)
    return await _sites_change(
        request, lambda conn, tid, user, addr: catalog.update_unit(conn, tid, unit_id, values, user, addr),
        "unit_updated", lambda errors: {"edit_target": ("unit", unit_id), "edit_errors": errors})


# ----------------------------------------------------------------------------- alerts and work orders on an asset


@post("/assets/{asset_id:int}/alerts", guards=[requires(Permission.RAISE_ALERTS)], name="asset_raise_alert")
async def asset_raise_alert(request: Request, asset_id: FromPath[int], data: URLEncodedBody[AlertForm]) -> Response:
    tenant_id = tenant_of(request)
    check_id(asset_id)
    try:
        values = alert_values({**form_values(data), "source": "manual"})
        async with db_of(request).tenant(tenant_id) as conn:
            await lifecycle.raise_alert(conn, tenant_id, asset_id, values, Actor.of(request.scope["user"]))
    except NotFound:
        raise NotFoundException() from None
    except InputError as exc:
        return await _detail(request, asset_id, status_code=422, alert_form=form_values(data),
                             alert_errors=_translate(exc.fields), open_form="alert")
    return redirect_done(request, f"/assets/{asset_id}", "alert_raised", "alerts")


@post("/assets/{asset_id:int}/work-orders", guards=[requires(Permission.RAISE_ALERTS)], name="asset_open_work_order")
async def asset_open_work_order(request: Request, asset_id: FromPath[int],
                                data: URLEncodedBody[WorkOrderForm]) -> Response:
    tenant_id = tenant_of(request)
    check_id(asset_id)
    try:
        values = work_order_values(form_values(data))
        async with db_of(request).tenant(tenant_id) as conn:
            await lifecycle.open_work_order(conn, tenant_id, asset_id, values, Actor.of(request.scope["user"]))
    except NotFound:
        raise NotFoundException() from None
    except InputError as exc:
        return await _detail(request, asset_id, status_code=422, wo_form=form_values(data),
                             wo_errors=_translate(exc.fields), open_form="work_order")
    return redirect_done(request, f"/assets/{asset_id}", "wo_opened", "work-orders")


async def _transition(request: Request, data: TransitionForm, kind: str, object_id: int, run, done: str,
                      anchor: str) -> Response:
    """Run one lifecycle change; back to ``next`` (or the asset) on success, the asset page with 409 otherwise."""
    tenant_id = tenant_of(request)
    try:
        note = note_value(data.note)
        async with db_of(request).tenant(tenant_id) as conn:
            asset_id = await run(conn, tenant_id, note)
    except NotFound:
        raise NotFoundException() from None
    except InputError as exc:
        return await _refused(request, kind, object_id, exc.message, 422)
    except Conflict as exc:
        return await _refused(request, kind, object_id, exc.message, 409)
    target = safe_next(data.next, f"/assets/{asset_id}")
    return redirect_done(request, target, done, anchor if target.startswith("/assets/") else "")


async def _refused(request: Request, kind: str, object_id: int, message: str, status_code: int) -> Response:
    """Show a refused change on the page of the asset the alert or work order belongs to."""
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        row = (await store.get_alert(conn, tenant_id, object_id) if kind == "alert"
               else await store.get_work_order(conn, tenant_id, object_id))
    if row is None:
        raise NotFoundException()
    return await _detail(request, row["asset_id"], status_code=status_code, error=gettext(message))


@post("/alerts/{alert_id:int}/acknowledge", guards=[requires(Permission.RAISE_ALERTS)], name="alert_acknowledge")
async def alert_acknowledge(request: Request, alert_id: FromPath[int], data: URLEncodedBody[TransitionForm]) -> Response:
    check_id(alert_id)
    actor = Actor.of(request.scope["user"])
    return await _transition(request, data, "alert", alert_id,
                             lambda conn, tid, note: lifecycle.acknowledge_alert(conn, tid, alert_id, actor, note),
                             "alert_acknowledged", "alerts")


@post("/alerts/{alert_id:int}/clear", guards=[requires(Permission.RAISE_ALERTS)], name="alert_clear")
async def alert_clear(request: Request, alert_id: FromPath[int], data: URLEncodedBody[TransitionForm]) -> Response:
    check_id(alert_id)
    actor = Actor.of(request.scope["user"])
    return await _transition(request, data, "alert", alert_id,
                             lambda conn, tid, note: lifecycle.clear_alert(conn, tid, alert_id, actor, note),
                             "alert_cleared", "alerts")


@post("/work-orders/{work_order_id:int}/status", guards=[requires(Permission.EDIT_ASSETS)], name="work_order_status")
async def work_order_status_change(request: Request, work_order_id: FromPath[int],
                                   data: URLEncodedBody[TransitionForm]) -> Response:
    check_id(work_order_id)
    try:
        status = work_order_status(data.status)
    except InputError as exc:
        return await _refused(request, "work_order", work_order_id, exc.message, 422)
    actor = Actor.of(request.scope["user"])
    done = "wo_closed" if status == "closed" else "wo_in_progress"
    return await _transition(
        request, data, "work_order", work_order_id,
        lambda conn, tid, note: lifecycle.set_work_order_status(conn, tid, work_order_id, status, actor, note),
        done, "work-orders")


# ----------------------------------------------------------------------------- alert and work-order lists


@get("/alerts", guards=[requires(Permission.VIEW_ASSETS)], name="alerts_list")
async def alerts_list(request: Request) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        sites = await store.list_sites(conn, tenant_id)
        f, notices = await filters.alert_filter(conn, tenant_id, request.query_params, sites)
        rows, total = await store.list_alerts(conn, tenant_id, status=f.status, severity=f.severity,
                                              asset_id=f.asset_id, site_id=f.site_id, page=f.page, page_size=PAGE_SIZE)
        asset = await store.asset_exists(conn, tenant_id, f.asset_id) if f.asset_id else None
    return render(request, "assets/alerts.html", breadcrumbs=[("Alerts", None)], flash=flash.pop(request)[0],
                  alerts=rows, filter=f, notices=_translate(notices), sites=sites, filter_asset=asset,
                  statuses=ALERT_STATUS_FILTERS, severities=SEVERITIES, pager=pager(f, total, PAGE_SIZE, "/alerts"),
                  **_common(request))


@get("/work-orders", guards=[requires(Permission.VIEW_ASSETS)], name="work_orders_list")
async def work_orders_list(request: Request) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        sites = await store.list_sites(conn, tenant_id)
        f, notices = await filters.work_order_filter(conn, tenant_id, request.query_params, sites)
        rows, total = await store.list_work_orders(conn, tenant_id, status=f.status, priority=f.priority,
                                                   asset_id=f.asset_id, site_id=f.site_id, page=f.page,
                                                   page_size=PAGE_SIZE)
        asset = await store.asset_exists(conn, tenant_id, f.asset_id) if f.asset_id else None
    return render(request, "assets/work_orders.html", breadcrumbs=[("Work orders", None)], flash=flash.pop(request)[0],
                  work_orders=rows, filter=f, notices=_translate(notices), sites=sites, filter_asset=asset,
                  statuses=WO_STATUS_FILTERS, priorities=WO_PRIORITIES,
                  pager=pager(f, total, PAGE_SIZE, "/work-orders"),
                  **_common(request))


ROUTES = [
    assets_list, asset_new, asset_create, asset_sites, site_create, site_update, unit_create, unit_update,
    asset_detail, asset_edit, asset_update, asset_raise_alert, asset_open_work_order,
    alert_acknowledge, alert_clear, work_order_status_change, alerts_list, work_orders_list,
]
