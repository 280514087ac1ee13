"""The dashboard (``/``): open incidents, assets by health status, top at-risk assets, active alerts
and work orders.

Open incidents lead: a limit breach or a critical alarm opens an incident in the Black Box
without anyone raising an alert, so "0 active alerts" must never be all a user sees while an
incident is open.

Every figure links to the filtered list behind it. Platform owners have no tenant
dashboard and go to the platform console. The integrations panel is a partial
(``templates/dashboard/_integrations.html``) that the integrations work fills through
:func:`integrations_panel`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from optria.assets import store
from optria.assets.models import HEALTH_STATUSES, LABELS
from optria.assets.store import Conn
from optria.assets.web import page_flags
from optria.blackbox import store as blackbox_store
from optria.identity.guards import can, requires
from optria.identity.rbac import Permission
from optria.integrations import store as integrations_store
from optria.web.request_context import db_of
from optria.web.templating import render

AT_RISK_ROWS = 5
LATEST_ROWS = 5
INCIDENT_ROWS = 5


async def integrations_panel(conn: Conn, tenant_id: UUID) -> dict[str, Any]:
    """Context of the integrations panel: enabled integrations with their ingest state."""
    return await integrations_store.dashboard_integrations(conn, tenant_id)


async def dashboard_context(conn: Conn, tenant_id: UUID) -> dict[str, Any]:
    counts = await store.status_counts(conn, tenant_id)
    by_status = {status: counts.get(status, 0) for status in HEALTH_STATUSES}
    alerts, _ = await store.list_alerts(conn, tenant_id, status="active", page_size=LATEST_ROWS)
    work_orders, _ = await store.list_work_orders(conn, tenant_id, status="active", page_size=LATEST_ROWS)
    return {
        "incident_counts": await blackbox_store.incident_counters(conn, tenant_id, None),
        "open_incidents": await blackbox_store.open_incidents(conn, tenant_id, INCIDENT_ROWS),
        "asset_total": sum(by_status.values()),
        "by_status": by_status,
        "at_risk": await store.at_risk_assets(conn, tenant_id, AT_RISK_ROWS),
        "alert_counts": await store.alert_counts(conn, tenant_id),
        "latest_alerts": alerts,
        "wo_counts": await store.work_order_counts(conn, tenant_id),
        "latest_work_orders": work_orders,
        "site_count": len(await store.list_sites(conn, tenant_id)),
        "panel": await integrations_panel(conn, tenant_id),
    }


@get("/", guards=[requires(Permission.AUTHENTICATED)], name="home")
async def dashboard(request: Request) -> Response:
    user = request.scope["user"]
    if user.is_platform_owner:
        return Redirect("/platform")
    if not can(request, Permission.VIEW_DASHBOARD) or user.tenant_id is None:
        raise PermissionDeniedException("Your role does not allow this page.")
    async with db_of(request).tenant(user.tenant_id) as conn:
        context = await dashboard_context(conn, user.tenant_id)
    return render(request, "dashboard/index.html", breadcrumbs=[], labels=LABELS, statuses=HEALTH_STATUSES,
                  **context, **page_flags(request))


ROUTES = [dashboard]
