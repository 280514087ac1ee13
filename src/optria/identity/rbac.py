"""The permission matrix: one table, read top to bottom like the product's access policy.

Routes name the permission they need (``guards=[requires(Permission.MANAGE_USERS)]``);
nothing checks a role by name outside this module. The matrix is tested cell by cell
and walked against every route.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM_OWNER = "platform_owner"
    TENANT_ADMIN = "tenant_admin"
    OPTIMIZATION_ENGINEER = "optimization_engineer"
    RELIABILITY_ENGINEER = "reliability_engineer"
    ENGINEER = "engineer"
    VIEWER = "viewer"


TENANT_ROLES = tuple(r for r in Role if r is not Role.PLATFORM_OWNER)


class Permission(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_TWIN = "view_twin"
    VIEW_ASSETS = "view_assets"
    EDIT_ASSETS = "edit_assets"
    RAISE_ALERTS = "raise_alerts"
    VIEW_INTEGRATIONS = "view_integrations"
    MANAGE_INTEGRATIONS = "manage_integrations"
    TEST_INTEGRATIONS = "test_integrations"
    EDIT_MAPPINGS = "edit_mappings"
    VIEW_BLACKBOX = "view_blackbox"
    VIEW_BLACKBOX_DETAILS = "view_blackbox_details"
    ACT_ON_INCIDENTS = "act_on_incidents"
    VIEW_OPTIMIZATION = "view_optimization"
    RUN_OPTIMIZATION = "run_optimization"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    PLATFORM_CONSOLE = "platform_console"
    AUTHENTICATED = "authenticated"  # any signed-in user (own profile, password change, logout)


P = Permission
_ALL_TENANT_READ = {P.VIEW_DASHBOARD, P.VIEW_TWIN, P.VIEW_ASSETS, P.VIEW_INTEGRATIONS, P.VIEW_BLACKBOX,
                    P.VIEW_OPTIMIZATION, P.AUTHENTICATED}

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_OWNER: frozenset({P.PLATFORM_CONSOLE, P.AUTHENTICATED}),
    Role.TENANT_ADMIN: frozenset(_ALL_TENANT_READ | {
        P.EDIT_ASSETS, P.RAISE_ALERTS, P.MANAGE_INTEGRATIONS, P.TEST_INTEGRATIONS, P.EDIT_MAPPINGS,
        P.VIEW_BLACKBOX_DETAILS, P.ACT_ON_INCIDENTS, P.RUN_OPTIMIZATION, P.MANAGE_USERS, P.VIEW_AUDIT}),
    Role.OPTIMIZATION_ENGINEER: frozenset(_ALL_TENANT_READ | {
        P.EDIT_ASSETS, P.RAISE_ALERTS, P.TEST_INTEGRATIONS, P.VIEW_BLACKBOX_DETAILS, P.RUN_OPTIMIZATION}),
    Role.RELIABILITY_ENGINEER: frozenset(_ALL_TENANT_READ | {
        P.EDIT_ASSETS, P.RAISE_ALERTS, P.TEST_INTEGRATIONS, P.VIEW_BLACKBOX_DETAILS, P.ACT_ON_INCIDENTS}),
    Role.ENGINEER: frozenset(_ALL_TENANT_READ | {
        P.EDIT_ASSETS, P.RAISE_ALERTS, P.TEST_INTEGRATIONS, P.VIEW_BLACKBOX_DETAILS}),
    Role.VIEWER: frozenset(_ALL_TENANT_READ),
}


def has_permission(role: str | Role, permission: Permission) -> bool:
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False


ROLE_LABELS = {
    Role.PLATFORM_OWNER: "Platform owner",
    Role.TENANT_ADMIN: "Tenant admin",
    Role.OPTIMIZATION_ENGINEER: "Optimization engineer",
    Role.RELIABILITY_ENGINEER: "Reliability engineer",
    Role.ENGINEER: "Engineer",
    Role.VIEWER: "Viewer",
}
