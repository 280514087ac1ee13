"""List filters of the assets, alerts and work-order lists, parsed once for the pages and the API.

Read with the UI kit's list filters (:mod:`optria.web.list_filters`). An invalid value
(unknown status, a site id that is not in the tenant, a page that is not a number) is dropped
and explained by a notice; pages show the notices above the list, the API answers 400 with
them. An id of another tenant is simply "not found": nothing about it is revealed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from optria.assets import store
from optria.assets.models import ALERT_STATUS_FILTERS, HEALTH_STATUSES, SEVERITIES, WO_PRIORITIES, WO_STATUS_FILTERS
from optria.db import Conn
from optria.web.list_filters import N_, ListFilter, Parsed, parse_id


@dataclass
class AssetFilter(ListFilter):
    q: str = ""
    site_id: int | None = None
    unit_id: int | None = None
    status: str | None = None


@dataclass
class AlertFilter(ListFilter):
    status: str | None = None
    severity: str | None = None
    asset_id: int | None = None
    site_id: int | None = None


@dataclass
class WorkOrderFilter(ListFilter):
    status: str | None = None
    priority: str | None = None
    asset_id: int | None = None
    site_id: int | None = None


SITE_NOT_FOUND = N_("The selected site was not found; the site filter was ignored.")


async def _asset_id(p: Parsed, conn: Conn, tenant_id: UUID) -> int | None:
    """The ``asset_id`` of an asset of the tenant; any other value is dropped with a notice."""
    raw = p.raw("asset_id")
    if raw is None:
        return None
    ref = parse_id(raw)
    if ref is None or await store.asset_exists(conn, tenant_id, ref) is None:
        p.notices.append(N_("The selected asset was not found; the asset filter was ignored."))
        return None
    return ref


def asset_filter(params: Mapping[str, str], sites: list[dict[str, Any]],
                 units: list[dict[str, Any]]) -> tuple[AssetFilter, list[str]]:
    p = Parsed(params)
    site_id = p.known_id("site_id", {s["id"] for s in sites}, SITE_NOT_FOUND)
    unit_site = {u["id"]: u["site_id"] for u in units}
    unit_id = p.known_id("unit_id", set(unit_site), N_("The selected unit was not found; the unit filter was ignored."))
    if unit_id is not None and site_id is not None and unit_site[unit_id] != site_id:
        p.notices.append(N_("The selected unit is not in the selected site; the unit filter was ignored."))
        unit_id = None
    status = p.choice("status", HEALTH_STATUSES, N_("Unknown health status; the status filter was ignored."))
    q = p.search("q")
    return AssetFilter(page=p.page(), q=q, site_id=site_id, unit_id=unit_id, status=status), p.notices


async def alert_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str],
                       sites: list[dict[str, Any]]) -> tuple[AlertFilter, list[str]]:
    p = Parsed(params)
    f = AlertFilter(
        status=p.choice("status", ALERT_STATUS_FILTERS, N_("Unknown alert status; the status filter was ignored.")),
        severity=p.choice("severity", SEVERITIES, N_("Unknown severity; the severity filter was ignored.")),
        asset_id=await _asset_id(p, conn, tenant_id),
        site_id=p.known_id("site_id", {s["id"] for s in sites}, SITE_NOT_FOUND),
    )
    f.page = p.page()
    return f, p.notices


async def work_order_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str],
                            sites: list[dict[str, Any]]) -> tuple[WorkOrderFilter, list[str]]:
    p = Parsed(params)
    f = WorkOrderFilter(
        status=p.choice("status", WO_STATUS_FILTERS, N_("Unknown work order status; the status filter was ignored.")),
        priority=p.choice("priority", WO_PRIORITIES, N_("Unknown priority; the priority filter was ignored.")),
        asset_id=await _asset_id(p, conn, tenant_id),
        site_id=p.known_id("site_id", {s["id"] for s in sites}, SITE_NOT_FOUND),
    )
    f.page = p.page()
    return f, p.notices
