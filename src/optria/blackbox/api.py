"""JSON API of the Black Box under ``/api/blackbox/``: incidents (list, detail with timeline, acknowledge,
resolve), events (list, detail) and alarm health. Same rules as the pages: tenant-scoped, 404
for another tenant's ids, no payloads or actors without ``VIEW_BLACKBOX_DETAILS``; invalid
filters answer 400 with the reasons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, JSONBody

from optria.blackbox import incidents, listing, store
from optria.blackbox.filters import NotInTenant, incident_filter
from optria.blackbox.health import cached_alarm_health
from optria.blackbox.models import EventOut, IncidentDetailOut, IncidentOut, NoteIn, Page
from optria.blackbox.web import sees_details
from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.web.errors import ApiError
from optria.web.request_context import check_id, client_addr, db_of, tenant_of

PAGE_SIZE = 50

NOT_FOUND = {"incident": "Incident not found.", "event": "Event not found.", "asset": "Asset not found.",
             "site": "Site not found.", "integration": "Integration not found."}


def _bad_filters(notices: list[str]) -> None:
    if notices:
        raise ApiError(400, "invalid_filter", "Some filters are not valid.", extra={"notices": notices})


async def _list(request: Request, read: Callable[..., Awaitable[listing.Listing]]) -> listing.Listing:
    """A page of incidents or events (``read``: listing.incidents or listing.events) with the query's
    filters: 404 for an id of another tenant, 400 for a filter that is not valid."""
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        try:
            page = await read(conn, tenant_id, request.query_params, PAGE_SIZE)
        except NotInTenant as exc:
            raise ApiError(404, "not_found", NOT_FOUND[exc.what]) from None
    _bad_filters(page.notices)
    return page


def _incident_out(row: dict[str, Any]) -> IncidentOut:
    return IncidentOut(id=row["id"], title=row["title"], incident_type=row["incident_type"], severity=row["severity"],
                       status=row["status"], asset_id=row["asset_id"], asset_code=row["asset_code"],
                       started_at=row["started_at"], last_event_at=row["last_event_at"],
                       event_count=row["event_count"], resolved_at=row["resolved_at"])


def _event_out(row: dict[str, Any], details: bool) -> EventOut:
    return EventOut(id=row["id"], event_time=row["event_time"], ingest_time=row["ingest_time"],
                    source_system=row["source_system"], source_type=row["source_type"], severity=row["severity"],
                    event_category=row["event_category"], summary=row["summary"], asset_id=row["asset_id"],
                    site_id=row["site_id"], integration_id=row["integration_id"], signal_id=row["signal_id"],
                    correlation_id=row["correlation_id"], alarm_key=row["alarm_key"], time_flag=row["time_flag"],
                    repeat_count=row.get("repeat_count") or 1,
                    actor=row["actor"] if details else None, payload=row["payload"] if details else None)


def _timeline_item(row: dict[str, Any], details: bool) -> dict[str, Any]:
    item = {"event_id": row["id"], "relation": row["relation"], "count": row["count"], "event_time": row["event_time"],
            "last_event_time": row["last_event_time"], "source_system": row["source_system"],
            "source_type": row["source_type"], "severity": row["severity"], "event_category": row["event_category"],
            "summary": row["summary"], "signal_id": row["signal_id"], "integration_id": row["integration_id"],
            "time_flag": row["time_flag"]}
    if details:
        item["actor"] = row["actor"]
        item["payload"] = row["payload"]
    return item


async def _detail(request: Request, incident_id: int) -> IncidentDetailOut:
    tenant_id = tenant_of(request)
    details = sees_details(request)
    async with db_of(request).tenant(tenant_id) as conn:
        row = await store.fetch_one(conn, store.INCIDENT, {"tenant_id": tenant_id, "incident_id": incident_id})
        if row is None:
            raise ApiError(404, "not_found", NOT_FOUND["incident"])
        timeline = await store.fetch_all(conn, store.TIMELINE, {"tenant_id": tenant_id, "incident_id": incident_id,
                                                                "limit": 1000})
    base = _incident_out(row)
    return IncidentDetailOut(**{f: getattr(base, f) for f in IncidentOut.__struct_fields__},
                             site_id=row["site_id"], acknowledged_at=row["acknowledged_at"],
                             acknowledged_by=row["acknowledged_by_name"], resolved_by=row["resolved_by_name"],
                             summary=row["summary"], timeline=[_timeline_item(t, details) for t in timeline])


@get("/api/blackbox/incidents", guards=[requires(Permission.VIEW_BLACKBOX)], name="api_blackbox_incidents")
async def api_incidents(request: Request) -> Page:
    """Incidents, newest first, with the page's filters (status, severity, asset_id, site_id, from, to)."""
    page = await _list(request, listing.incidents)
    return Page(items=[_incident_out(r) for r in page.rows], total=page.total, page=page.filter.page,
                page_size=PAGE_SIZE, total_is_capped=page.capped)


@get("/api/blackbox/incidents/{incident_id:int}", guards=[requires(Permission.VIEW_BLACKBOX)],
     name="api_blackbox_incident")
async def api_incident(request: Request, incident_id: FromPath[int]) -> IncidentDetailOut:
    """One incident with its timeline."""
    return await _detail(request, check_id(incident_id))


async def _act(request: Request, incident_id: int, data: NoteIn, action) -> IncidentDetailOut:
    check_id(incident_id)
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await action(conn, tenant_id, incident_id, request.scope["user"], data.note, client_addr(request))
    except incidents.IncidentNotFound:
        raise ApiError(404, "not_found", NOT_FOUND["incident"]) from None
    except incidents.IncidentConflict as exc:
        raise ApiError(409, "conflict", exc.message) from None
    except incidents.NoteError as exc:
        raise ApiError(422, "invalid_note", exc.message) from None
    return await _detail(request, incident_id)


@post("/api/blackbox/incidents/{incident_id:int}/acknowledge", guards=[requires(Permission.ACT_ON_INCIDENTS)],
      name="api_blackbox_incident_acknowledge", status_code=200)
async def api_acknowledge(request: Request, incident_id: FromPath[int], data: JSONBody[NoteIn]) -> IncidentDetailOut:
    """Acknowledge an open incident (optional note)."""
    return await _act(request, incident_id, data, incidents.acknowledge)


@post("/api/blackbox/incidents/{incident_id:int}/resolve", guards=[requires(Permission.ACT_ON_INCIDENTS)],
      name="api_blackbox_incident_resolve", status_code=200)
async def api_resolve(request: Request, incident_id: FromPath[int], data: JSONBody[NoteIn]) -> IncidentDetailOut:
    """Resolve an incident with a note saying what was found and done."""
    return await _act(request, incident_id, data, incidents.resolve)


@get("/api/blackbox/events", guards=[requires(Permission.VIEW_BLACKBOX)], name="api_blackbox_events")
async def api_events(request: Request) -> Page:
    """Events, newest first, with the explorer's filters."""
    details = sees_details(request)
    page = await _list(request, listing.events)
    return Page(items=[_event_out(r, details) for r in page.rows], total=page.total, page=page.filter.page,
                page_size=PAGE_SIZE, total_is_capped=page.capped)


@get("/api/blackbox/events/{event_id:int}", guards=[requires(Permission.VIEW_BLACKBOX)], name="api_blackbox_event")
async def api_event(request: Request, event_id: FromPath[int]) -> EventOut:
    """One event."""
    tenant_id = tenant_of(request)
    check_id(event_id)
    async with db_of(request).tenant(tenant_id) as conn:
        row = await store.fetch_one(conn, store.EVENT, {"tenant_id": tenant_id, "event_id": event_id})
    if row is None:
        raise ApiError(404, "not_found", NOT_FOUND["event"])
    return _event_out(row, sees_details(request))


@get("/api/blackbox/alarm-health", guards=[requires(Permission.VIEW_BLACKBOX)], name="api_blackbox_alarm_health")
async def api_alarm_health(request: Request) -> dict[str, Any]:
    """ISA-18.2 alarm health of the tenant or one asset (``hours`` 24 or 168)."""
    tenant_id = tenant_of(request)
    raw_hours = request.query_params.get("hours", "24")
    if raw_hours not in ("24", "168"):
        raise ApiError(400, "invalid_filter", "hours must be 24 or 168.")
    async with db_of(request).tenant(tenant_id) as conn:
        try:
            f, notices = await incident_filter(conn, tenant_id, {"asset_id": request.query_params.get("asset_id", "")})
        except NotInTenant as exc:
            raise ApiError(404, "not_found", NOT_FOUND[exc.what]) from None
        _bad_filters(notices)
        h = await cached_alarm_health(conn, tenant_id, asset_id=f.asset_id, hours=int(raw_hours))

    def rows(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{k: r.get(k) for k in keys} for r in items]

    return {"hours": h.hours, "asset_id": f.asset_id, "computed_at": h.computed_at, "events_24h": h.events_24h,
            "total": h.total, "average_per_10_min": h.average_per_10_min,
            "peak_per_10_min": h.peak_per_10_min, "flood_intervals": h.flood_intervals, "intervals": h.intervals,
            "flood_share": round(h.flood_share, 4), "status": h.status, "target_per_10_min": h.target,
            "flood_above_per_10_min": h.flood_threshold,
            "chattering": rows(h.chattering, ("alarm_key", "summary", "asset_id", "max_per_minute", "occurrences")),
            "standing": rows(h.standing, ("alarm_key", "summary", "asset_id", "since", "hours")),
            "top": rows(h.top, ("alarm_key", "summary", "asset_id", "occurrences", "last_time", "severity"))}


ROUTES = [api_incidents, api_incident, api_acknowledge, api_resolve, api_events, api_event, api_alarm_health]
