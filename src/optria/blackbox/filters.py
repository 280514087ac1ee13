"""Filters of the incident list and the event explorer, parsed once for pages and API.

Read with the UI kit's list filters (:mod:`optria.web.list_filters`): a value that is simply
invalid (an unknown status, a date that is not a date, page "x") is dropped with a notice:
pages show the notices, the API answers 400 with them. An asset, site or integration id that
is not in the signed-in user's tenant is "not found" (404): the page was asked about one
thing, and nothing about it — not even that it exists elsewhere — is revealed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.events import CATEGORIES, SOURCE_SYSTEMS
from optria.blackbox.models import INCIDENT_STATUS_FILTERS
from optria.blackbox.severity import SEVERITIES
from optria.db import Conn, like_pattern
from optria.web.list_filters import N_, ListFilter, Parsed, parse_id


class NotInTenant(LookupError):
    """An id in the query string that the tenant does not have."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class BlackboxFilter(ListFilter):
    def sql_params(self) -> tuple[dict[str, Any], list[str]]:
        """(parameters, names of the active filter fragments) for the store."""
        params: dict[str, Any] = {}
        active: list[str] = []
        for key, value in asdict(self).items():
            if key == "page" or value in (None, "", False):
                continue
            if key == "status" and value == "active":
                active.append("active")
                continue
            if key == "q":
                params["q_like"] = like_pattern(value)
            elif value is not True:
                params[key] = value
            active.append(key)
        return params, active


@dataclass
class IncidentFilter(BlackboxFilter):
    status: str | None = None
    severity: str | None = None
    asset_id: int | None = None
    site_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class EventFilter(BlackboxFilter):
    severity: str | None = None
    category: str | None = None
    source_system: str | None = None
    asset_id: int | None = None
    site_id: int | None = None
    integration_id: int | None = None
    alarm_key: str | None = None
    no_asset: bool = False
    flagged: bool = False
    q: str = ""
    start: datetime | None = None
    end: datetime | None = None


async def _ref(p: Parsed, conn: Conn, tenant_id: UUID, key: str, query: str, what: str, notice: str) -> int | None:
    """An id of the tenant's (``query`` finds it); not a number: dropped with ``notice``; another
    tenant's or none at all: NotInTenant."""
    raw = p.raw(key)
    if raw is None:
        return None
    ref = parse_id(raw)
    if ref is None:
        p.notices.append(notice)
        return None
    if await store.fetch_one(conn, query, {"tenant_id": tenant_id, key: ref}) is None:
        raise NotInTenant(what)
    return ref


BAD_ASSET = N_("The asset in the filter was not a valid id; the asset filter was ignored.")
BAD_SITE = N_("The site in the filter was not a valid id; the site filter was ignored.")
BAD_SEVERITY = N_("Unknown severity; the severity filter was ignored.")


async def incident_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str]) -> tuple[IncidentFilter, list[str]]:
    p = Parsed(params)
    start, end = p.time_range()
    f = IncidentFilter(
        status=p.choice("status", INCIDENT_STATUS_FILTERS, N_("Unknown incident status; the status filter was ignored.")),
        severity=p.choice("severity", SEVERITIES, BAD_SEVERITY),
        asset_id=await _ref(p, conn, tenant_id, "asset_id", store.ASSET, "asset", BAD_ASSET),
        site_id=await _ref(p, conn, tenant_id, "site_id", store.SITE, "site", BAD_SITE),
        start=start, end=end)
    f.page = p.page()
    return f, p.notices


async def event_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str]) -> tuple[EventFilter, list[str]]:
    p = Parsed(params)
    start, end = p.time_range()
    q = p.search("q")
    alarm_key = p.raw("alarm_key")
    if alarm_key is not None and len(alarm_key) > 300:
        p.notices.append(N_("The alarm in the filter was not valid; the alarm filter was ignored."))
        alarm_key = None
    f = EventFilter(
        severity=p.choice("severity", SEVERITIES, BAD_SEVERITY),
        category=p.choice("category", CATEGORIES, N_("Unknown category; the category filter was ignored.")),
        source_system=p.choice("source_system", SOURCE_SYSTEMS, N_("Unknown source; the source filter was ignored.")),
        asset_id=await _ref(p, conn, tenant_id, "asset_id", store.ASSET, "asset", BAD_ASSET),
        site_id=await _ref(p, conn, tenant_id, "site_id", store.SITE, "site", BAD_SITE),
        integration_id=await _ref(p, conn, tenant_id, "integration_id", store.INTEGRATION, "integration",
                                  N_("The integration in the filter was not a valid id; the integration filter was ignored.")),
        alarm_key=alarm_key, no_asset=p.flag("no_asset"), flagged=p.flag("flagged"), q=q, start=start, end=end)
    f.page = p.page()
    return f, p.notices
