"""What the assets pages may show the signed-in user: the permission flags their templates read."""

from __future__ import annotations

from litestar import Request

from optria.identity.guards import can
from optria.identity.rbac import Permission


def page_flags(request: Request) -> dict[str, bool]:
    """What the signed-in user may do here, for templates that show or hide buttons."""
    return {
        "can_edit": can(request, Permission.EDIT_ASSETS),
        "can_raise": can(request, Permission.RAISE_ALERTS),
        "can_view_twin": can(request, Permission.VIEW_TWIN),
        "can_view_blackbox": can(request, Permission.VIEW_BLACKBOX),
        "can_view_integrations": can(request, Permission.VIEW_INTEGRATIONS),
    }
