"""The sidebar: every area's page a user may open, in the sidebar's order, shown by permission.

It is the map of the application, so it lives in the shell; the kit's templating draws what
:func:`nav_for` gives it (registered in optria.shell.template_globals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optria.identity.rbac import Permission, has_permission


@dataclass(frozen=True)
class NavItem:
    label: str          # English msgid, translated at render time
    href: str
    permission: Permission
    icon: str
    section: str = "main"


# Order is the sidebar's order. Section "platform" shows only to platform owners.
NAV: tuple[NavItem, ...] = (
    NavItem("Dashboard", "/", Permission.VIEW_DASHBOARD, "grid"),
    NavItem("Digital Twin", "/digital-twin", Permission.VIEW_TWIN, "twin"),
    NavItem("Assets", "/assets", Permission.VIEW_ASSETS, "asset"),
    NavItem("Industrial Black Box", "/blackbox", Permission.VIEW_BLACKBOX, "box"),
    NavItem("Integrations", "/integrations", Permission.VIEW_INTEGRATIONS, "plug"),
    NavItem("Optimization", "/optimization", Permission.VIEW_OPTIMIZATION, "spark"),
    NavItem("Users", "/management/users", Permission.MANAGE_USERS, "users", "management"),
    NavItem("Audit log", "/management/audit", Permission.VIEW_AUDIT, "list", "management"),
    NavItem("Platform overview", "/platform", Permission.PLATFORM_CONSOLE, "shield", "platform"),
    NavItem("Tenants", "/platform/tenants", Permission.PLATFORM_CONSOLE, "building", "platform"),
    NavItem("All users", "/platform/users", Permission.PLATFORM_CONSOLE, "users", "platform"),
    NavItem("Ingestion", "/platform/ingestion", Permission.PLATFORM_CONSOLE, "pulse", "platform"),
    NavItem("Proof of concept", "/platform/poc", Permission.PLATFORM_CONSOLE, "check", "platform"),
)
NAV_SECTIONS = {"main": "", "management": "Management", "platform": "Platform"}


def nav_for(user: Any) -> list[dict[str, Any]]:
    if user is None:
        return []
    sections: dict[str, list[NavItem]] = {}
    for item in NAV:
        if has_permission(user.role, item.permission):
            sections.setdefault(item.section, []).append(item)
    return [{"key": key, "title": NAV_SECTIONS[key], "items": items} for key, items in sections.items()]
