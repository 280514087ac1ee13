"""Request plumbing shared by the Black Box pages and API: what the user may see and do, names."""

from __future__ import annotations

from typing import Any

from litestar import Request

from optria.identity.guards import can
from optria.identity.rbac import Permission


def sees_details(request: Request) -> bool:
    """Payloads and actors are for roles with black box details; viewers get the read-only summary."""
    return can(request, Permission.VIEW_BLACKBOX_DETAILS)


def page_flags(request: Request) -> dict[str, bool]:
    return {
        "can_details": sees_details(request),
        "can_act": can(request, Permission.ACT_ON_INCIDENTS),
        "can_view_twin": can(request, Permission.VIEW_TWIN),
        "can_view_assets": can(request, Permission.VIEW_ASSETS),
        "can_view_integrations": can(request, Permission.VIEW_INTEGRATIONS),
    }


def display_name(row: dict[str, Any], prefix: str, lang: str) -> str:
    name_ar = row.get(prefix + "name_ar")
    return name_ar if lang == "ar" and name_ar else (row.get(prefix + "name") or "")
