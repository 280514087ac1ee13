"""Pages of the Industrial Black Box: overview with incidents and alarm health, incident timeline,
incident actions and exports, event explorer and event detail. The JSON API is in ``api.py``.

Every handler runs in one tenant transaction; an id of another tenant finds nothing and
answers 404. Roles without ``VIEW_BLACKBOX_DETAILS`` never receive payloads or actors;
actions need ``ACT_ON_INCIDENTS``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect

from optria.blackbox import api, export, incidents, listing, store
from optria.blackbox.filters import N_, NotInTenant
from optria.blackbox.health import PERIODS_H, cached_alarm_health
from optria.blackbox.models import (
    INCIDENT_STATUS_FILTERS,
    LABELS,
    SEVERITY_CHOICES,
    AcknowledgeForm,
    ResolveForm,
)
from optria.blackbox.events import CATEGORIES, SOURCE_SYSTEMS
from optria.blackbox.trends import incident_trends
from optria.blackbox.web import display_name, page_flags, sees_details
from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.web import flash
from optria.web.errors import ApiError
from optria.web.i18n import current_lang, gettext
from optria.web.formatting import current_zone
from optria.web.list_filters import pager
from optria.web.request_context import check_id, client_addr, db_of, tenant_of
from optria.web.templating import render

PAGE_SIZE = 25
EVENT_PAGE_SIZE = 25
TIMELINE_LIMIT = 1_000
ASSET_OPTIONS = 500

NOT_IN_TENANT = {
    "asset": N_("That asset was not found in your organization."),
    "site": N_("That site was not found in your organization."),
    "integration": N_("That integration was not found in your organization."),
}
M_ACKNOWLEDGED = N_("Incident acknowledged.")
M_RESOLVED = N_("Incident resolved.")
CRUMB = ("Industrial Black Box", "/blackbox")


def _not_in_tenant(exc: NotInTenant) -> ApiError:
    return ApiError(404, "not_found", NOT_IN_TENANT[exc.what])


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _with_payload_text(rows: list[dict[str, Any]], details: bool) -> list[dict[str, Any]]:
    """Pre-format payloads for display (Arabic kept readable), only for roles that may see them."""
    for row in rows:
        payload = row.get("payload")
        row["payload_json"] = json.dumps(payload, ensure_ascii=False, indent=1, sort_keys=True, default=str) \
            if details and payload else None
    return rows


def _names(rows: list[dict[str, Any]], assets: list[dict[str, Any]], sites: list[dict[str, Any]]) -> None:
    """Display names in the page's language, computed once here rather than by a macro per row."""
    lang = current_lang.get()
    for a in assets:
        a["label"] = f"{a['code']} · {display_name(a, '', lang)}"
    for s in sites:
        s["label"] = display_name(s, "", lang)
    for r in rows:
        r["asset_label"] = display_name(r, "asset_", lang)
        r["site_label"] = display_name(r, "site_", lang)


def _event_labels(rows: list[dict[str, Any]]) -> None:
    """Translated labels of each event row, looked up once here (list pages render many rows)."""
    severity, types, systems, flags = (LABELS[k] for k in ("severity", "source_type", "source_system", "time_flag"))
    fallback = types["sql_event"]
    for r in rows:
        # msgids are looked up first: string literals inside gettext() would be extracted as msgids
        msgids = (severity[r["severity"]], types.get(r["source_type"], fallback),
                  systems.get(r["source_system"], fallback), flags.get(r["time_flag"] or ""))
        r["severity_label"], r["type_label"], r["system_label"] = (gettext(m) for m in msgids[:3])
        r["flag_label"] = gettext(msgids[3]) if msgids[3] else ""


def _common(request: Request) -> dict[str, Any]:
    return {"labels": LABELS, "here": _here(request), **page_flags(request)}


# ----------------------------------------------------------------------------- overview


@get("/blackbox", guards=[requires(Permission.VIEW_BLACKBOX)], name="blackbox_index")
async def blackbox_index(request: Request) -> Response:
    """Counters, alarm health and the incident list (``?asset_id=`` for one asset: the twin's drill-down)."""
    tenant_id = tenant_of(request)
    hours = int(request.query_params.get("hours", "24")) if request.query_params.get("hours") in ("24", "168") else 24
    async with db_of(request).tenant(tenant_id) as conn:
        try:
            page = await listing.incidents(conn, tenant_id, request.query_params, PAGE_SIZE)
        except NotInTenant as exc:
            raise _not_in_tenant(exc) from None
        f, rows = page.filter, page.rows
        counters = await store.incident_counters(conn, tenant_id, f.asset_id)
        health = await cached_alarm_health(conn, tenant_id, asset_id=f.asset_id, hours=hours)
        counters["events_24h"] = health.events_24h
        sites = await store.fetch_all(conn, store.SITES, {"tenant_id": tenant_id})
        assets = await store.fetch_all(conn, store.ASSET_OPTIONS, {"tenant_id": tenant_id, "limit": ASSET_OPTIONS})
        focus = await store.fetch_one(conn, store.ASSET, {"tenant_id": tenant_id, "asset_id": f.asset_id}) \
            if f.asset_id else None
        rejections = await store.fetch_all(conn, store.LIST_REJECTIONS, {"tenant_id": tenant_id}) \
            if sees_details(request) else []
    crumbs = [CRUMB] + ([(focus["code"], None)] if focus else [])
    _names(rows, assets, sites)
    return render(request, "blackbox/index.html", breadcrumbs=crumbs, incidents=rows, filter=f,
                  notices=[gettext(n) for n in page.notices], counters=counters, health=health, hours=hours,
                  periods=PERIODS_H, sites=sites, assets=assets, focus=focus, rejections=rejections,
                  focus_listed=bool(focus) and any(a["id"] == focus["id"] for a in assets),
                  statuses=INCIDENT_STATUS_FILTERS, severities=SEVERITY_CHOICES,
                  pager=pager(f, page.total, PAGE_SIZE, "/blackbox", capped=page.capped), **_common(request))


# ----------------------------------------------------------------------------- incident


async def _incident_or_404(conn, tenant_id, incident_id: int) -> dict[str, Any]:
    incident = await store.fetch_one(conn, store.INCIDENT, {"tenant_id": tenant_id, "incident_id": incident_id})
    if incident is None:
        raise NotFoundException()
    return incident


async def _timeline(conn, tenant_id, incident_id: int) -> list[dict[str, Any]]:
    return await store.fetch_all(conn, store.TIMELINE, {"tenant_id": tenant_id, "incident_id": incident_id,
                                                        "limit": TIMELINE_LIMIT})


async def _incident_page(request: Request, incident_id: int, *, status_code: int = 200,
                         **extra: Any) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        incident = await _incident_or_404(conn, tenant_id, incident_id)
        current_zone.set(incident["site_timezone"] or current_zone.get())   # the incident's site's time
        timeline = _with_payload_text(await _timeline(conn, tenant_id, incident_id), sees_details(request))
        trends = await incident_trends(conn, tenant_id, incident)
    context: dict[str, Any] = {"error": None, "ack_error": None, "resolve_error": None, "resolve_note": "",
                               "open_form": None}
    context.update(extra)
    return render(request, "blackbox/incident.html", status_code=status_code, flash=flash.pop(request)[0],
                  breadcrumbs=[CRUMB, (gettext("Incident #%(id)s", id=incident_id), None)], incident=incident,
                  timeline=timeline, timeline_limit=TIMELINE_LIMIT, trends=trends, **context, **_common(request))


@get("/blackbox/incidents/{incident_id:int}", guards=[requires(Permission.VIEW_BLACKBOX)], name="blackbox_incident")
async def blackbox_incident(request: Request, incident_id: FromPath[int]) -> Response:
    """One incident: details, actions, signal trends across its window and its timeline."""
    return await _incident_page(request, check_id(incident_id))


async def _act(request: Request, incident_id: int, action: Callable[..., Awaitable[Any]], note: str, done: str,
               note_problem: Callable[[str], dict[str, Any]]) -> Response:
    """Acknowledge or resolve (``action``) from the incident page: back to the page with ``done`` flashed,
    or the page again with the reason (409 a conflict; 422 the note, placed by ``note_problem``)."""
    check_id(incident_id)
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await action(conn, tenant_id, incident_id, request.scope["user"], note, client_addr(request))
    except incidents.IncidentNotFound:
        raise NotFoundException() from None
    except incidents.IncidentConflict as exc:
        return await _incident_page(request, incident_id, status_code=409, error=gettext(exc.message))
    except incidents.NoteError as exc:
        return await _incident_page(request, incident_id, status_code=422, **note_problem(gettext(exc.message)))
    flash.push(request, "success", done)
    return Redirect(f"/blackbox/incidents/{incident_id}")


@post("/blackbox/incidents/{incident_id:int}/acknowledge", guards=[requires(Permission.ACT_ON_INCIDENTS)],
      name="blackbox_incident_acknowledge")
async def blackbox_incident_acknowledge(
        request: Request, incident_id: FromPath[int],
        data: URLEncodedBody[AcknowledgeForm]) -> Response:
    """Acknowledge an open incident (optional note)."""
    return await _act(request, incident_id, incidents.acknowledge, data.note, M_ACKNOWLEDGED,
                      lambda message: {"ack_error": message, "open_form": "acknowledge"})


@post("/blackbox/incidents/{incident_id:int}/resolve", guards=[requires(Permission.ACT_ON_INCIDENTS)],
      name="blackbox_incident_resolve")
async def blackbox_incident_resolve(
        request: Request, incident_id: FromPath[int],
        data: URLEncodedBody[ResolveForm]) -> Response:
    """Resolve an incident with a note (required)."""
    return await _act(request, incident_id, incidents.resolve, data.note, M_RESOLVED,
                      lambda message: {"resolve_error": message, "resolve_note": data.note[:2000],
                                       "open_form": "resolve"})


async def _export_data(request: Request, incident_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        incident = await _incident_or_404(conn, tenant_id, check_id(incident_id))
        timeline = await _timeline(conn, tenant_id, incident_id)
    return incident, timeline


@get("/blackbox/incidents/{incident_id:int}/export.csv", guards=[requires(Permission.VIEW_BLACKBOX)],
     name="blackbox_incident_csv")
async def blackbox_incident_csv(request: Request, incident_id: FromPath[int]) -> Response:
    """The incident timeline as a CSV file (payloads and actors only for roles with details)."""
    incident, timeline = await _export_data(request, incident_id)
    body = export.timeline_csv(timeline, details=sees_details(request))
    return Response(content=body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.csv"'})


@get("/blackbox/incidents/{incident_id:int}/export.json", guards=[requires(Permission.VIEW_BLACKBOX)],
     name="blackbox_incident_json")
async def blackbox_incident_json(request: Request, incident_id: FromPath[int]) -> Response:
    """The incident and its timeline as a JSON file (payloads and actors only for roles with details)."""
    incident, timeline = await _export_data(request, incident_id)
    body = export.timeline_json(incident, timeline, details=sees_details(request))
    return Response(content=json.dumps(body, default=_iso, ensure_ascii=False, indent=1).encode("utf-8"),
                    media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.json"'})


# ----------------------------------------------------------------------------- events


@get("/blackbox/events", guards=[requires(Permission.VIEW_BLACKBOX)], name="blackbox_events")
async def blackbox_events(request: Request) -> Response:
    """Event explorer: the event log, newest first, with filters."""
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        try:
            page = await listing.events(conn, tenant_id, request.query_params, EVENT_PAGE_SIZE)
        except NotInTenant as exc:
            raise _not_in_tenant(exc) from None
        rows = page.rows
        sites = await store.fetch_all(conn, store.SITES, {"tenant_id": tenant_id})
        assets = await store.fetch_all(conn, store.ASSET_OPTIONS, {"tenant_id": tenant_id, "limit": ASSET_OPTIONS})
        integrations = await store.fetch_all(conn, store.INTEGRATION_OPTIONS, {"tenant_id": tenant_id})
    _names(rows, assets, sites)
    _event_labels(rows)
    return render(request, "blackbox/events.html", breadcrumbs=[CRUMB, ("Event explorer", None)], events=rows,
                  filter=page.filter, notices=[gettext(n) for n in page.notices], sites=sites, assets=assets,
                  integrations=integrations, severities=SEVERITY_CHOICES, categories=CATEGORIES,
                  source_systems=SOURCE_SYSTEMS,
                  pager=pager(page.filter, page.total, EVENT_PAGE_SIZE, "/blackbox/events", capped=page.capped),
                  **_common(request))


@get("/blackbox/events/{event_id:int}", guards=[requires(Permission.VIEW_BLACKBOX)], name="blackbox_event")
async def blackbox_event(request: Request, event_id: FromPath[int]) -> Response:
    """One event and the incidents it belongs to."""
    tenant_id = tenant_of(request)
    check_id(event_id)
    async with db_of(request).tenant(tenant_id) as conn:
        event = await store.fetch_one(conn, store.EVENT, {"tenant_id": tenant_id, "event_id": event_id})
        if event is None:
            raise NotFoundException()
        linked = await store.fetch_all(conn, store.INCIDENTS_OF_EVENT, {"tenant_id": tenant_id, "event_id": event_id})
    _with_payload_text([event], sees_details(request))
    return render(request, "blackbox/event.html",
                  breadcrumbs=[CRUMB, ("Event explorer", "/blackbox/events"), (gettext("Event #%(id)s", id=event_id), None)],
                  event=event, linked=linked, **_common(request))


ROUTES = [blackbox_index, blackbox_incident, blackbox_incident_acknowledge, blackbox_incident_resolve,
          blackbox_incident_csv, blackbox_incident_json, blackbox_events, blackbox_event, *api.ROUTES]
